"""fp16 ONNX for TensorRT: TensorRT 11 builds strongly typed networks only (no BuilderFlag.FP16),
so half precision must come from the ONNX file itself.

``to_fp16_model`` re-exports the model in half precision (weights, activations, graph I/O all
float16; the SPP lowering follows its input's dtype), which keeps the integer bin arithmetic exact.
``export_onnx_fp16`` writes it atomically after a parity check against the float32 PyTorch model
with fp16 tolerances.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Mapping, Sequence

import onnx
import torch

from ..errors import ParityError, UserError
from .onnx_export import DEFAULT_OPSET, DYNAMIC_AXES, ExportResult, find_spp_layers, trace_to_onnx, write_atomic

PRECISIONS = ("fp32", "fp16")
FP16_RTOL = 1e-2  # relative to the reference's largest magnitude
FP16_ATOL = 1e-3


def to_fp16_model(model: torch.nn.Module, example: torch.Tensor, dynamic: Sequence[str] = DYNAMIC_AXES,
                  opset: int = DEFAULT_OPSET, spp_impl: str = "standard", recognize: bool = True,
                  sppf: bool = True, spp_layers: Mapping[str, object] | None = None) -> onnx.ModelProto:
    """The model traced in float16 (a copy: the caller's model keeps its dtype). User SPP layers
    are made canonical first, as ``export_onnx`` does."""
    half = copy.deepcopy(model).eval().half()
    x = example.detach().to(torch.float16)
    return trace_to_onnx(half, x, dynamic, opset, spp_impl, recognize, sppf, spp_layers)[0]


def is_fp16(model: onnx.ModelProto) -> bool:
    return any(vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for vi in model.graph.input)


def export_onnx_fp16(
    model: torch.nn.Module,
    example_inputs: torch.Tensor | tuple,
    path: str | os.PathLike,
    *,
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
    check_parity: bool = True,
    sizes: Sequence[tuple[int, int, int]] | None = None,
    rtol: float = FP16_RTOL,
    atol: float = FP16_ATOL,
    recognize: bool = True,
    sppf: bool = True,
    spp_layers: Mapping[str, object] | None = None,
) -> ExportResult:
    """Like ``export_onnx`` but float16 throughout; parity: ORT CPU (fp16) vs PyTorch float32."""
    example = example_inputs[0] if isinstance(example_inputs, (tuple, list)) else example_inputs
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        raise UserError("example input must be one [B, C, H, W] tensor")
    proto = to_fp16_model(model, example, dynamic, opset, spp_impl, recognize, sppf, spp_layers)
    result = ExportResult(Path(path), len(find_spp_layers(model)))

    def verify(tmp: Path) -> None:
        if not check_parity:
            return
        from ..runtime.compare import SizeReport, parity_sizes, source_error
        from ..runtime.validate import ValidateConfig, run_validation

        C = int(example.shape[1])
        if sizes is None:
            shapes, skipped = parity_sizes(model, example, count=4)
        else:
            shapes = [(b, C, h, w) for b, h, w in sizes]
            skipped = [(s, why) for s in shapes if (why := source_error(model, s))]
            shapes = [s for s in shapes if s not in {k for k, _ in skipped}]
        cfg = ValidateConfig(shapes=shapes, backends=["ort-cpu"], onnx=tmp, rtol={"*": rtol}, atol={"*": atol})
        report = run_validation(model, cfg)
        result.parity = [SizeReport(tuple(s), None, why) for s, why in skipped]
        for rec in report.records:
            if rec.comparison is not None:
                result.parity.append(SizeReport(tuple(rec.shape), rec.comparison))
        bad = report.failed()
        if bad:
            r = bad[0]
            c = r.comparison
            raise ParityError(
                f"fp16 ONNX Runtime output differs from PyTorch at input {'x'.join(map(str, r.shape))}: "
                f"max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g} (limits {atol:g} / {rtol:g}); file not written"
            )

    write_atomic(proto, Path(path), verify)
    return result
