"""Plugin-mode vs standard-mode ONNX files in ONNX Runtime CPU, measured side by side.

A plugin-mode file keeps each pyramid as one ``spp_deploy.SpatialPyramidPool`` node (for the
TensorRT plugin) with a model-local function holding the standard-op body, which ONNX Runtime
inlines. This script checks what that costs in ORT CPU: the same model exported both ways, the
same inputs, median latency of each, their ratio, and that the outputs are identical.

    python benchmarks/plugin_vs_standard_ort.py [--iterations 20] [--threads N] [--quick]

Expectation: plugin/standard within +-15% (the function is inlined at session creation).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from _common import Table, export, parse, parser, session, shape_text
from spp_deploy import SpatialPyramidPool
from spp_deploy.sources import zoo
from spp_deploy.runtime.compare import source_error
from spp_deploy.runtime.timing import measure

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
    ("zoo:sppnet-pytorch", lambda: zoo.create("sppnet-pytorch"), (1, 512, 16, 16),
     [(1, 512, 16, 16), (1, 512, 30, 20)]),
    ("zoo:keras-spp", lambda: zoo.create("keras-spp"), (1, 3, 64, 64), [(1, 3, 64, 64), (8, 3, 320, 480)]),
]


def main() -> int:
    ap = parser(__doc__, iterations=20, warmup=3)
    ap.add_argument("--quick", action="store_true", help="5 iterations, 1 warm-up, first two shapes per case")
    args = parse(ap)
    if args.quick:
        args.iterations, args.warmup = 5, 1
    print(f"ONNX Runtime {ort.__version__} CPU, torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.iterations} (warm-up {args.warmup})")
    table = Table(f"{'model':<32} {'shape':<16} {'standard ms':>12} {'plugin ms':>10} {'plugin/std':>11} "
                  f"{'max |diff|':>11}  verdict")
    for label, factory, example, shapes in CASES:
        model = factory().eval()
        ex = torch.randn(*example)
        std = session(export(model, ex, "standard"), args.threads)
        plug = session(export(model, ex, "plugin"), args.threads)
        name = std.get_inputs()[0].name
        for shape in shapes[:2] if args.quick else shapes:
            why = source_error(model, (1, *shape[1:]))
            if why:
                print(f"{label:<32} {shape_text(shape):<16} skipped: {why}")
                continue
            x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            feed = {name: x}
            diff = float(np.abs(std.run(None, feed)[0] - plug.run(None, feed)[0]).max())
            t_std = measure(lambda: std.run(None, feed), args.warmup, args.iterations).median
            t_plug = measure(lambda: plug.run(None, feed), args.warmup, args.iterations).median
            ratio = t_plug / t_std
            table.row(f"{label:<32} {shape_text(shape):<16} {t_std:12.3f} {t_plug:10.3f} {ratio:10.2f}x {diff:11.2e}  ",
                      1 / SAME_WITHIN <= ratio <= SAME_WITHIN and diff == 0.0, met="same",
                      missed="OUTPUT DIFFERS" if diff else "DIFFERENT SPEED")
    return table.finish(f"{table.missed} case(s) outside plugin/standard within {SAME_WITHIN:g}x "
                        "with identical outputs")


if __name__ == "__main__":
    raise SystemExit(main())
