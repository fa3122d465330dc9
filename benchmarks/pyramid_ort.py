"""Pyramid alone in ONNX Runtime CPU: standard-op lowering vs one global ReduceMax (the one-pass
floor) vs PyTorch eager (torch's adaptive_max_pool2d pyramid), measured side by side.

    python benchmarks/pyramid_ort.py [--iterations 30] [--warmup 5] [--threads N]

Targets (core issue): pyramid <= 4x the floor at the three larger shapes, <= 15x at 1x256x13x13.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from _common import Table, parse, parser, session, shape_text
from spp_deploy import SpatialPyramidPool
from spp_deploy.export import to_onnx_model
from spp_deploy.runtime.timing import measure

SHAPES = [(1, 256, 13, 13), (8, 256, 31, 23), (1, 512, 64, 64), (16, 256, 50, 61)]
LEVELS = [(4, 2, 1), (6, 3, 2, 1)]
TARGET = {(1, 256, 13, 13): 15.0}
DEFAULT_TARGET = 4.0


def floor_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", "c", "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    node = helper.make_node("ReduceMax", ["input"], ["output"], keepdims=0)
    graph = helper.make_graph([node], "floor", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def main() -> int:
    args = parse(parser(__doc__, iterations=30, warmup=5))
    floor = session(floor_model(), args.threads)
    print(f"ONNX Runtime {ort.__version__}, torch {torch.__version__}, {args.threads} threads, median of {args.iterations}")
    table = Table(f"{'levels':<10} {'shape':<16} {'floor ms':>9} {'pyramid ms':>11} {'torch ms':>9} {'pyr/floor':>10} "
                  f"{'torch/pyr':>10}  target")
    for levels in LEVELS:
        op = SpatialPyramidPool(levels, "max", "adaptive")
        sessions = {}  # the channel count is static in the exported graph
        for shape in SHAPES:
            C = shape[1]
            if C not in sessions:
                sessions[C] = session(to_onnx_model(op, torch.randn(1, C, 16, 16)), args.threads)
            pyr = sessions[C]
            x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
            xt = torch.from_numpy(x)
            t_floor = measure(lambda: floor.run(None, {"input": x}), args.warmup, args.iterations).median
            t_pyr = measure(lambda: pyr.run(None, {"input": x}), args.warmup, args.iterations).median
            with torch.no_grad():
                t_torch = measure(lambda: torch.cat([F.adaptive_max_pool2d(xt, n).flatten(1) for n in levels], 1),
                                  args.warmup, args.iterations).median
            ratio, target = t_pyr / t_floor, TARGET.get(shape, DEFAULT_TARGET)
            table.row(f"{str(list(levels)):<10} {shape_text(shape):<16} {t_floor:9.3f} {t_pyr:11.3f} {t_torch:9.3f} "
                      f"{ratio:9.2f}x {t_torch / t_pyr:9.2f}x  <= {target:g}x ", ratio <= target)
    return table.finish(f"{table.missed} target(s) missed")


if __name__ == "__main__":
    raise SystemExit(main())
