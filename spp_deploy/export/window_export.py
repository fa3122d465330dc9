"""``to_onnx_window_model``: a PyTorch module ``(maps [S, C, H, W], windows [R, 5]) -> [R, ...]``
(a window pyramid, or a detection head built on one) -> a checked ONNX model in memory with
dynamic S, H, W and R; ``parity_windows``: window sets holding every degenerate case.

The file and its parity check (``spp_deploy.deploy.export_window_model``) are above this package.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch

from ..util.constants import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, SPP_IMPLS
from ..util.errors import UserError, first_line, raise_if_interrupted

MAPS_NAME = "features"
WINDOWS_NAME = "windows"
OUTPUT_NAME = "output"
# (S, H, W, R) of the default parity check: odd and even maps, one cell, R = 0, 1 and thousands.
PARITY_CASES = ((1, 13, 17, 64), (2, 1, 1, 16), (1, 41, 55, 2000), (3, 7, 30, 200), (1, 20, 9, 0),
                (1, 9, 9, 1), (2, 64, 3, 300))


def parity_windows(rng: np.random.Generator, R: int, S: int, H: int, W: int, stride: float) -> np.ndarray:
    """[R, 5] float64 windows over an H x W map's image (about stride * size pixels): ordinary,
    tiny (inverted after projection), huge, partly and wholly outside, and x2 < x1."""
    iw, ih = stride * W + 2 * stride, stride * H + 2 * stride
    kind = rng.integers(0, 4, R)
    x1, y1 = rng.uniform(-0.3 * iw, 1.3 * iw, R), rng.uniform(-0.3 * ih, 1.3 * ih, R)
    scale = np.choose(kind, [np.full(R, 0.5), rng.uniform(0, 1, R), np.full(R, 2.0), np.full(R, -0.05)])
    tiny = kind == 0
    dw = np.where(tiny, rng.uniform(0, 14, R), scale * rng.uniform(0, iw, R))
    dh = np.where(tiny, rng.uniform(0, 14, R), scale * rng.uniform(0, ih, R))
    return np.stack([rng.integers(0, S, R).astype(np.float64), x1, y1, x1 + dw, y1 + dh], axis=1)


def to_onnx_window_model(model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor],
                         opset: int = DEFAULT_OPSET, spp_impl: str = "standard") -> onnx.ModelProto:
    """Trace ``model(maps, windows)`` with dynamic S, H, W, R; lower or plugin-wrap its window
    pyramids (and any whole-image pyramids); check the result. The ``windows`` input takes the
    example windows' dtype (float64 or float32)."""
    from . import graph as _graph
    from .onnx_export import _quiet, _translation_table, check_model
    from .window import lower_windows_standard, translation_entry, windows_to_plugin_mode

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET})")
    if spp_impl not in SPP_IMPLS:
        raise UserError(f"unknown SPP implementation {spp_impl!r} (known: {', '.join(SPP_IMPLS)})")
    D = torch.export.Dim.DYNAMIC
    table = {**_translation_table(), **translation_entry()}
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                model.eval(), tuple(example), dynamo=True, input_names=[MAPS_NAME, WINDOWS_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=({0: D, 2: D, 3: D}, {0: D}),
                opset_version=opset, custom_translation_table=table, optimize=True, verify=False)
    except Exception as e:  # torch's message is long and wrapped: its cause in one line
        raise_if_interrupted(e)
        from .causes import describe

        raise UserError(f"torch.onnx.export failed: {describe(e, model)}") from e
    proto = program.model_proto
    _name_dims(proto)
    if spp_impl == "standard":
        proto = lower_windows_standard(_graph.lower_standard(proto))
    else:
        proto = windows_to_plugin_mode(_graph.to_plugin_mode(proto))
    check_model(proto)
    return proto


def _name_dims(proto: onnx.ModelProto) -> None:
    """Readable dim names: maps (maps, channels, height, width), windows (windows, 5)."""
    names = {MAPS_NAME: {0: "maps", 2: "height", 3: "width"}, WINDOWS_NAME: {0: "num_windows"}}
    rename = {}
    for vi in proto.graph.input:
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            new = names.get(vi.name, {}).get(i)
            if new and d.dim_param:
                rename[d.dim_param] = new
                d.dim_param = new
    for vi in proto.graph.output:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    del proto.graph.value_info[:]
