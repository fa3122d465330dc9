"""Cost of op-level recognition: recording and fitting the pooling calls of segmentation heads
(PSPNet's pyramid pooling module, an UPerNet PPM: 3-4 routed call sites each, plus the 1x1 level
the exporter keeps), and the whole export with its parity check, at the default limits.

    python benchmarks/oplevel_probe.py [--threads N]

Target (issue 21): recording and replacing the pools of a segmentation head costs < 10 s of probing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import parse, parser
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


def main() -> None:
    parse(parser(__doc__, iterations=1, warmup=0))
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
        probes = len(sites[0].calls) if sites else 0
        ok = "ok" if t_record < TARGET_S else "MISSED"
        print(f"{name:58} {routed:5d} {probes:4d}/{len(probe_shapes(shape))} {t_record:8.2f} {t_scan:7.2f} "
              f"{t_export:8.2f}  < {TARGET_S:.0f} s: {ok}")


if __name__ == "__main__":
    main()
