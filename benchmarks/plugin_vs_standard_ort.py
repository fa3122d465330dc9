"""Plugin-mode vs standard-mode ONNX files in ONNX Runtime CPU, measured side by side.

A plugin-mode file keeps each pyramid as one ``spp_deploy.SpatialPyramidPool`` node (for the
TensorRT plugin) with a model-local function holding the standard-op body, which ONNX Runtime
inlines. This script checks what that costs in ORT CPU: the same model exported both ways, the
same inputs, median latency of each, their ratio, and that the outputs are identical.

    python benchmarks/plugin_vs_standard_ort.py [--iterations 20] [--threads N] [--quick]

Expectation: plugin/standard within +-15% (the function is inlined at session creation).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx  # noqa: F401  (type of the sessions built below)
import onnxruntime as ort
import torch

from spp_deploy import SpatialPyramidPool, zoo
from spp_deploy.export import trace_to_onnx
from spp_deploy.runtime.compare import source_error
from spp_deploy.runtime.timing import measure


def export(model: torch.nn.Module, example: torch.Tensor, spp_impl: str = "standard"):
    """In-memory ONNX, with seed SPP layers made canonical first (as ``export_onnx`` does)."""
    return trace_to_onnx(model, example, spp_impl=spp_impl)[0]

SAME_WITHIN = 1.15

# (label, model factory, example shape, benchmark shapes)
CASES = [
    ("pyramid adaptive max [6,3,2,1]", lambda: SpatialPyramidPool([6, 3, 2, 1], "max", "adaptive"),
     (1, 256, 16, 16), [(1, 256, 13, 13), (8, 256, 31, 23), (1, 512, 64, 64)]),
    ("pyramid ceil_pad max [4,2,1]", lambda: SpatialPyramidPool([4, 2, 1], "max", "ceil_pad"),
     (1, 256, 16, 16), [(1, 256, 13, 13), (8, 256, 31, 23), (1, 512, 64, 64)]),
    ("pyramid rounded avg [3,2,1]", lambda: SpatialPyramidPool([3, 2, 1], "avg", "rounded"),
     (1, 256, 16, 16), [(1, 256, 13, 13), (8, 256, 31, 23)]),
    ("zoo:sppnet-zf5", lambda: zoo.create("sppnet-zf5"), (1, 3, 224, 224), [(1, 3, 224, 224), (1, 3, 600, 1000)]),
    ("zoo:spp-net-seed000", lambda: zoo.create("spp-net-seed000"), (1, 512, 16, 16),
     [(1, 512, 16, 16), (1, 512, 30, 20)]),
    ("zoo:keras-spp", lambda: zoo.create("keras-spp"), (1, 3, 64, 64), [(1, 3, 64, 64), (8, 3, 320, 480)]),
]


def session(proto: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--quick", action="store_true", help="5 iterations, 1 warm-up, first two shapes per case")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured
    if args.quick:
        args.iterations, args.warmup = 5, 1
    torch.set_num_threads(args.threads)
    print(f"ONNX Runtime {ort.__version__} CPU, torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.iterations} (warm-up {args.warmup})")
    print(f"{'model':<32} {'shape':<16} {'standard ms':>12} {'plugin ms':>10} {'plugin/std':>11} {'max |diff|':>11}  verdict")
    off = 0
    for label, factory, example, shapes in CASES:
        model = factory().eval()
        ex = torch.randn(*example)
        std = session(export(model, ex, "standard"), args.threads)
        plug = session(export(model, ex, "plugin"), args.threads)
        name = std.get_inputs()[0].name
        for shape in shapes[:2] if args.quick else shapes:
            why = source_error(model, (1, *shape[1:]))
            if why:
                print(f"{label:<32} {'x'.join(map(str, shape)):<16} skipped: {why}")
                continue
            x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            feed = {name: x}
            diff = float(np.abs(std.run(None, feed)[0] - plug.run(None, feed)[0]).max())
            t_std = measure(lambda: std.run(None, feed), args.warmup, args.iterations).median
            t_plug = measure(lambda: plug.run(None, feed), args.warmup, args.iterations).median
            ratio = t_plug / t_std
            ok = 1 / SAME_WITHIN <= ratio <= SAME_WITHIN and diff == 0.0
            off += not ok
            verdict = "same" if ok else ("OUTPUT DIFFERS" if diff else "DIFFERENT SPEED")
            print(f"{label:<32} {'x'.join(map(str, shape)):<16} {t_std:12.3f} {t_plug:10.3f} {ratio:10.2f}x "
                  f"{diff:11.2e}  {verdict}")
    print(f"{off} case(s) outside plugin/standard within {SAME_WITHIN:g}x with identical outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
