"""Cost of op-level recognition: recording and fitting the pooling calls of segmentation heads
(PSPNet's pyramid pooling module, an UPerNet PPM: 3-4 routed call sites each, plus the 1x1 level
the exporter keeps), and the whole export with its parity check, at the default limits.

    python benchmarks/oplevel_probe.py [--threads N] [--iterations 10]

Target: recording and replacing the pools of a segmentation head costs < 10 s of probing.
Also timed: the exported heads in ONNX Runtime CPU against PyTorch eager (median of --iterations).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import onnx
import torch

from _common import parse, parser, session
from spp_deploy import export_onnx
from spp_deploy.recognize import scan
from spp_deploy.recognize.oplevel import probe_shapes, record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
import public_pyramids as P  # noqa: E402  (the tests' public-style heads)

TARGET_S = 10.0
HEADS = {
    "PSPNet PPM 2048->4x512, map 1x2048x60x60": (lambda: P._randomize_bn(P.PSPModule(2048, 512)), (1, 2048, 60, 60)),
    "UPerNet PPM 2048->4x512 + bottleneck, map 1x2048x16x16":
        (lambda: P.UPerHeadPSP(2048, 512), (1, 2048, 16, 16)),
    "PSPNet head (stem, PPM, classifier), image 1x3x256x256": (lambda: P.PSPNetHead(), (1, 3, 256, 256)),
}


def _median_ms(fn, iterations: int) -> float:
    fn()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    args = parse(parser(__doc__, iterations=10, warmup=1))
    latency = []
    print(f"{'head':58} {'sites':>5} {'probes':>6} {'record s':>8} {'scan s':>7} {'export s':>8}  target")
    for name, (factory, shape) in HEADS.items():
        model = factory().eval()
        t0 = time.perf_counter()
        sites = record(model, shape)
        t_record = time.perf_counter() - t0
        t0 = time.perf_counter()
        reports = scan(model, torch.randn(shape))
        t_scan = time.perf_counter() - t0
        routed = sum(1 for r in reports if r.op_site is not None and r.rewrites)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            export_onnx(model, torch.randn(shape), Path(d) / "m.onnx")
            t_export = time.perf_counter() - t0
            sess = session(onnx.load(str(Path(d) / "m.onnx")), args.threads)
            x = torch.randn(shape)
            with torch.no_grad():
                latency.append((name, _median_ms(lambda: sess.run(None, {"input": x.numpy()}), args.iterations),
                                _median_ms(lambda: model(x), args.iterations)))
        probes = len(sites[0].calls) if sites else 0
        ok = "ok" if t_record < TARGET_S else "MISSED"
        print(f"{name:58} {routed:5d} {probes:4d}/{len(probe_shapes(shape))} {t_record:8.2f} {t_scan:7.2f} "
              f"{t_export:8.2f}  < {TARGET_S:.0f} s: {ok}")
    print(f"\n{'head':58} {'ORT ms':>8} {'torch ms':>9}")
    for name, ort_ms, torch_ms in latency:
        print(f"{name:58} {ort_ms:8.1f} {torch_ms:9.1f}")


if __name__ == "__main__":
    main()
