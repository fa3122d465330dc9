"""Memory traffic of the CUDA kernels as a profiler would count it, measured by the SIMT emulator.

    python benchmarks/kernel_traffic.py [--cases SUBSTRING ...] [--json PATH] [--levels 6 3 2 1]

No GPU: each case runs the real kernel source under the emulator (plugins/simt) with its traffic
counters on (spp_deploy.native.traffic): global load/store requests per warp instruction, sectors
per request, load/store efficiency (bytes requested / bytes in the sectors fetched) and sectors
fetched over the ideal (every touched sector moved once). Cases: the whole-image kernel at
(64,512,64,64), (64,256,13,13) and (1,256,13,13) for each bin rule and mode in fp32 and fp16; the
window kernel on 2,000 windows (``--windows``) of a 256x42x56 map (ZF-5 projection) in fp32 and fp16.
``--cases`` keeps the cases whose name contains any of the given strings (the largest whole-image
size runs 134 M loads through the emulator, far too long for CI; on the 2-core CPU machine
1x256x13x13 takes ~1 s a case, 64x256x13x13 about a minute, and the window kernel ~3 s per 10
windows). ``--json PATH``: one record per case.
FP64 operations are not counted yet (``fp64_ops_per_window`` is null).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr
from spp_deploy.ops import bins as B
from spp_deploy.ops.projection import ZF5

SIZES = [(64, 512, 64, 64), (64, 256, 13, 13), (1, 256, 13, 13)]
DTYPES = {"fp32": np.float32, "fp16": np.float16}
WINDOW_MAP = (1, 256, 42, 56)


def cases(levels: list[int], windows: int, batch: int | None = None) -> list[tuple[str, str, dict]]:
    """(kernel, case name, arguments) of every case, in table order; ``batch`` replaces the sizes' B."""
    out = []
    for size in dict.fromkeys(SIZES if batch is None else [(batch, *s[1:]) for s in SIZES]):
        for rule in B.RULES:
            for mode in B.MODES:
                for dt in DTYPES:
                    name = f"{'x'.join(map(str, size))} {rule} {mode} {dt}"
                    out.append(("whole_image", name, {"size": size, "rule": rule, "mode": mode, "dtype": dt}))
    for dt in DTYPES:
        out.append(("window", f"{windows} windows {'x'.join(map(str, WINDOW_MAP[1:]))} {dt}",
                    {"dtype": dt, "windows": windows}))
    return out


def _windows(rng: np.random.Generator, R: int, H: int, W: int) -> np.ndarray:
    """R ordinary boxes inside the image a ZF-5 map of H x W comes from (stride 16)."""
    x1, y1 = rng.uniform(0, 16 * W * 0.8, R), rng.uniform(0, 16 * H * 0.8, R)
    w, h = rng.uniform(16, 16 * W / 2, R), rng.uniform(16, 16 * H / 2, R)
    return np.stack([np.zeros(R), x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)


def run_case(kernel: str, args: dict, levels: list[int], libs: dict) -> tuple[str, tr.Traffic | None]:
    """Status ('ok' or why the case did not run) and the counted traffic."""
    rng = np.random.default_rng(0)
    dt = DTYPES[args["dtype"]]
    if kernel == "whole_image":
        b, c, h, w = args["size"]
        why = B.size_error(args["rule"], h, w, levels)
        if why:
            return f"illegal size: {why}", None
        x = tr.aligned_copy(rng.standard_normal((b, c, h, w)).astype(dt))
        out = tr.aligned_empty((b, c * sum(n * n for n in levels)), dt)
        lib = emu.open_kernel_emulator(libs["whole_image"])
        run, t = tr.counted(lib, lambda: emu.emulated_pyramid(libs["whole_image"], x, levels, args["mode"],
                                                               args["rule"], "channel_major", out=out))
    else:
        _, c, h, w = WINDOW_MAP
        x = tr.aligned_copy(rng.standard_normal(WINDOW_MAP).astype(dt))
        win = tr.aligned_copy(_windows(rng, args["windows"], h, w).astype(dt))
        out = tr.aligned_empty((args["windows"], c * sum(n * n for n in levels)), dt)
        lib = emu.open_window_emulator(libs["window"])
        run, t = tr.counted(lib, lambda: emu.emulated_window_pyramid(libs["window"], x, win, levels, ZF5.as_list(),
                                                                      out=out))
    if run.status != 0:
        return f"status {run.status} {run.fault}".strip(), None
    return "ok", t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=None, help="keep cases whose name contains one of these")
    ap.add_argument("--json", type=Path, default=None, help="write one record per case here")
    ap.add_argument("--levels", type=int, nargs="+", default=[6, 3, 2, 1])
    ap.add_argument("--batch", type=int, default=None,
                    help="B of every whole-image size (planes are independent blocks: the ratios do not depend on it)")
    ap.add_argument("--windows", type=int, default=2000,
                    help="windows of the window cases (the ratios are per request: fewer windows run faster)")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    reason = emu.unavailable_reason()
    if reason:
        print(f"kernel_traffic: the emulator cannot be built here: {reason}", file=sys.stderr)
        return 2
    build = Path(tempfile.mkdtemp(prefix="kernel_traffic_"))
    libs = {"whole_image": emu.build_kernel_emulator(build), "window": emu.build_window_emulator(build)}
    todo = [c for c in cases(a.levels, a.windows, a.batch) if a.cases is None or any(s in c[1] for s in a.cases)]
    print(f"levels {a.levels}; whole image: channel_major; window: ZF-5; sectors of 32 bytes")
    print(f"{'kernel':<12} {'case':<34} {'ld sect/req':>11} {'ld eff':>7} {'rd/ideal':>8} "
          f"{'st sect/req':>11} {'st eff':>7} {'wr/ideal':>8} {'s':>7}")
    records = []
    for kernel, name, args in todo:
        t0 = time.perf_counter()
        status, t = run_case(kernel, args, a.levels, libs)
        secs = time.perf_counter() - t0
        if t is None:
            print(f"{kernel:<12} {name:<34} {status}")
            records.append({"kernel": kernel, "case": name, "status": status})
            continue
        print(f"{kernel:<12} {name:<34} {t.sectors_per_load:11.2f} {t.load_efficiency:7.1%} "
              f"{t.sectors_read_over_ideal:8.2f} {t.sectors_per_store:11.2f} {t.store_efficiency:7.1%} "
              f"{t.sectors_written_over_ideal:8.2f} {secs:7.1f}")
        records.append({"kernel": kernel, "case": name, "status": status, "load_efficiency": t.load_efficiency,
                        "store_efficiency": t.store_efficiency, "sectors_read_over_ideal": t.sectors_read_over_ideal,
                        "sectors_written_over_ideal": t.sectors_written_over_ideal, "fp64_ops_per_window": None,
                        "counters": t._asdict(), "emulator_seconds": round(secs, 2)})
    if a.json:
        a.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
