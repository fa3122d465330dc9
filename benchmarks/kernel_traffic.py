"""Memory traffic of the CUDA kernels as a profiler would count it, measured by the SIMT emulator.

    python benchmarks/kernel_traffic.py [--cases SUBSTRING ...] [--json PATH] [--levels 6 3 2 1] [--roofline]

No GPU: each case runs the real kernel source under the emulator (plugins/simt) with its traffic
counters on (spp_deploy.native.traffic): global load/store requests per warp instruction, sectors
per request, load/store efficiency (bytes requested / bytes in the sectors fetched) and sectors
fetched over the ideal (every touched sector moved once).

Shared memory: bank conflicts per shared-memory request (extra bank passes, 32 banks of 4 bytes;
the accesses through the kernel's SIMT_DYNAMIC_SHARED buffer). Roofline: the time the case's
DRAM traffic takes at each GPU's peak bandwidth (``traffic.PEAK_DRAM_GBPS``), between the floor
(each distinct sector read or written once: ``bytes_unique``, ``roofline_floor_us``) and no cache
reuse (every request's sectors: ``bytes_moved``, ``roofline_us``); ``--roofline`` prints that
table, ``--json`` always holds it.

Cases: the whole-image kernel at
(64,512,64,64), (64,256,13,13) and (1,256,13,13) for each bin rule and mode in fp32 and fp16; the
window kernel on 2,000 windows (``--windows``) of a 256x42x56 map (ZF-5 projection) in fp32 and fp16.
``--cases`` keeps the cases whose name contains any of the given strings (the largest whole-image
size runs 134 M loads through the emulator, far too long for CI; on the 2-core CPU machine
1x256x13x13 takes ~1 s a case, 64x256x13x13 about a minute, and the window kernel ~4 s per 100
windows). ``--json PATH``: one record per case. ``fp64/win``: float64 operations per window (the
window kernel's ``simt::f64`` arithmetic, one per PTX instruction; null for the whole-image kernel).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spp_deploy.ops import bins as B
from spp_deploy.commands.common import finite
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr
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


def run_case(kernel: str, args: dict, levels: list[int], libs: dict
             ) -> tuple[str, tr.Traffic | None, tr.BankConflicts | None]:
    """Status ('ok' or why the case did not run), the counted traffic and shared-memory bank conflicts."""
    rng = np.random.default_rng(0)
    dt = DTYPES[args["dtype"]]
    if kernel == "whole_image":
        b, c, h, w = args["size"]
        why = B.size_error(args["rule"], h, w, levels)
        if why:
            return f"illegal size: {why}", None, None
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
        return f"status {run.status} {run.fault}".strip(), None, None
    return "ok", t, tr.last_bank_conflicts(lib)


def record(kernel: str, name: str, args: dict, levels: list[int], t: tr.Traffic, banks: tr.BankConflicts,
           secs: float) -> dict:
    """The --json record of one case that ran (with the case's arguments, for gpu_check.py's join)."""
    moved, unique = tr.moved_bytes(t), tr.unique_bytes(t)
    case = {**args, "levels": list(levels)} if kernel == "whole_image" else {**args, "levels": list(levels),
                                                                              "map": list(WINDOW_MAP)}
    return {"kernel": kernel, "case": name, "status": "ok", **case, "load_efficiency": t.load_efficiency,
            "store_efficiency": t.store_efficiency, "sectors_read_over_ideal": t.sectors_read_over_ideal,
            "sectors_written_over_ideal": t.sectors_written_over_ideal,
            "fp64_ops_per_window": t.fp64_ops / args["windows"] if kernel == "window" else None,
            "shared_requests": banks.requests, "shared_bank_conflicts_per_request": banks.conflicts_per_request,
            "bytes_moved": moved, "bytes_unique": unique, "roofline_us": tr.roofline_us(moved),
            "roofline_floor_us": tr.roofline_us(unique),
            "counters": t._asdict(), "shared_counters": banks._asdict(), "emulator_seconds": round(secs, 2)}


def print_roofline(records: list[dict]) -> None:
    """The roofline table: each case's bytes moved and its time at every GPU's peak DRAM bandwidth."""
    gpus = list(tr.PEAK_DRAM_GBPS)
    print(f"\nroofline: microseconds at peak DRAM bandwidth "
          f"({', '.join(f'{g} {v:g} GB/s' for g, v in tr.PEAK_DRAM_GBPS.items())}), from each distinct "
          f"sector once .. every request's sectors (no cache reuse)")
    print(f"{'kernel':<12} {'case':<34} {'MB':>15} " + " ".join(f"{g:>15}" for g in gpus))
    for r in records:
        if r["status"] == "ok":
            span = lambda lo, hi, f: f"{f(lo)}..{f(hi)}"
            print(f"{r['kernel']:<12} {r['case']:<34} "
                  f"{span(r['bytes_unique'] / 1e6, r['bytes_moved'] / 1e6, lambda v: f'{v:.2f}'):>15} "
                  + " ".join(f"{span(r['roofline_floor_us'][g], r['roofline_us'][g], lambda v: f'{v:.2f}'):>15}"
                             for g in gpus))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=None, help="keep cases whose name contains one of these")
    ap.add_argument("--json", type=Path, default=None, help="write one record per case here")
    ap.add_argument("--levels", type=int, nargs="+", default=[6, 3, 2, 1])
    ap.add_argument("--batch", type=int, default=None,
                    help="B of every whole-image size (planes are independent blocks: the ratios do not depend on it)")
    ap.add_argument("--windows", type=int, default=2000,
                    help="windows of the window cases (the ratios are per request: fewer windows run faster)")
    ap.add_argument("--roofline", action="store_true",
                    help="also print each case's time at peak DRAM bandwidth on H100, A100, L4 and T4")
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
          f"{'st sect/req':>11} {'st eff':>7} {'wr/ideal':>8} {'bank cf/req':>11} {'fp64/win':>9} {'s':>7}")
    records = []
    for kernel, name, args in todo:
        t0 = time.perf_counter()
        status, t, banks = run_case(kernel, args, a.levels, libs)
        secs = time.perf_counter() - t0
        if t is None or banks is None:
            print(f"{kernel:<12} {name:<34} {status}")
            records.append({"kernel": kernel, "case": name, "status": status})
            continue
        fp64 = t.fp64_ops / args["windows"] if kernel == "window" else None
        print(f"{kernel:<12} {name:<34} {t.sectors_per_load:11.2f} {t.load_efficiency:7.1%} "
              f"{t.sectors_read_over_ideal:8.2f} {t.sectors_per_store:11.2f} {t.store_efficiency:7.1%} "
              f"{t.sectors_written_over_ideal:8.2f} {banks.conflicts_per_request:11.2f} "
              f"{'-' if fp64 is None else f'{fp64:.1f}':>9} {secs:7.1f}")
        records.append(record(kernel, name, args, a.levels, t, banks, secs))
    if a.roofline:
        print_roofline(records)
    if a.json:
        a.json.write_text(json.dumps(finite(records), indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
