"""fp16 ONNX for TensorRT: TensorRT 11 builds strongly typed networks only (no BuilderFlag.FP16),
so half precision must come from the ONNX file itself: ``export_onnx(..., precision="fp16")``
re-exports a float16 copy of the model (the SPP lowering follows its input's dtype, and the
integer bin arithmetic stays exact).
"""

from __future__ import annotations

import onnx

from .onnx_export import PRECISION_TOLERANCES, export_onnx

PRECISIONS = tuple(PRECISION_TOLERANCES)


def is_fp16(model: onnx.ModelProto) -> bool:
    return any(vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for vi in model.graph.input)


def export_onnx_fp16(*args, **kwargs):
    """``export_onnx`` in float16 throughout; parity: ORT CPU (fp16) vs PyTorch float32."""
    return export_onnx(*args, precision="fp16", **kwargs)
