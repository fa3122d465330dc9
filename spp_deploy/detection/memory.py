"""How much memory the trunk needs at a scale, estimated before anything is allocated: a large
``scales`` value (6880 on a small image) would otherwise die in the allocator mid-run.

The estimate is the input plus twice the largest activation (one layer's input and output alive
at once), measured at a reference size without allocating (PyTorch: the meta device; ONNX: shape
inference) and scaled by the number of pixels, as convolution trunks scale."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

REFERENCE_HW = (224, 224)


def torch_largest_activation(module, shape: Sequence[int]) -> int:
    """Bytes of the largest tensor any submodule returns at input ``shape`` (run on the meta device)."""
    import itertools

    import torch

    sizes = [0]

    def hook(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            sizes.append(out.numel() * out.element_size())

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    params = {k: torch.empty_like(v, device="meta")
              for k, v in itertools.chain(module.named_parameters(), module.named_buffers())}
    try:
        with torch.no_grad():
            torch.func.functional_call(module, params, (torch.empty(tuple(shape), device="meta"),))
    finally:
        for h in handles:
            h.remove()
    return max(sizes)


def onnx_largest_activation(path: str | os.PathLike, shape: Sequence[int]) -> int:
    """Bytes of the largest tensor in the ONNX graph at input ``shape`` (shape inference only)."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    model = onnx.load(str(path), load_external_data=False)
    for d, v in zip(model.graph.input[0].type.tensor_type.shape.dim, shape):
        d.dim_value = int(v)
    inferred = onnx.shape_inference.infer_shapes(model)
    best = 0
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim]
        if dims and all(v > 0 for v in dims) and t.elem_type:
            best = max(best, int(np.prod(dims)) * tensor_dtype_to_np_dtype(t.elem_type).itemsize)
    return best


def trunk_bytes(largest_at_reference: int, height: int, width: int) -> int:
    """The trunk's estimated peak at a height x width float32 RGB input."""
    pixels = height * width
    scale = pixels / (REFERENCE_HW[0] * REFERENCE_HW[1])
    return int(3 * pixels * 4 + 2 * largest_at_reference * scale)
