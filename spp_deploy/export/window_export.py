"""``export_window_model``: a PyTorch module ``(maps [S, C, H, W], windows [R, 5]) -> [R, ...]``
(a window pyramid, or a detection head built on one) -> checked, parity-verified ONNX with
dynamic S, H, W and R.

Parity before the file appears: ONNX Runtime CPU against the eager module over several map
sizes and window sets holding every degenerate case (R = 0 and 1, tiny windows that invert
after projection, windows partly and wholly outside the map, x2 < x1, thousands of windows).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch

from ..constants import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, SPP_IMPLS
from ..errors import ParityError, UserError, first_line

MAPS_NAME = "features"
WINDOWS_NAME = "windows"
OUTPUT_NAME = "output"
# (S, H, W, R) of the default parity check: odd and even maps, one cell, R = 0, 1 and thousands.
PARITY_CASES = ((1, 13, 17, 64), (2, 1, 1, 16), (1, 41, 55, 2000), (3, 7, 30, 200), (1, 20, 9, 0),
                (1, 9, 9, 1), (2, 64, 3, 300))


@dataclass
class WindowParity:
    shape: tuple[int, int, int, int]  # S, H, W, R
    max_abs_diff: float
    bit_identical: bool


@dataclass
class WindowExportResult:
    path: Path
    parity: list[WindowParity] = field(default_factory=list)


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
    pyramids (and any whole-image pyramids); check the result."""
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
    except Exception as e:
        raise UserError(f"torch.onnx.export failed: {first_line(e)}") from e
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


def check_window_parity(model: torch.nn.Module, onnx_path: str | os.PathLike, channels: int, stride: float,
                        cases: Sequence[tuple[int, int, int, int]] = PARITY_CASES, rtol: float = 1e-5,
                        seed: int = 0, exact: bool = False) -> list[WindowParity]:
    """ONNX Runtime CPU vs the eager module; ``ParityError`` naming the first mismatching case.
    ``exact``: demand bit-identical output (a bare window pyramid); otherwise within ``rtol`` of
    the reference's largest magnitude (layers after the pyramid may sum in another order)."""
    from ..runtime.ort_runner import OrtRunner

    rng = np.random.default_rng(seed)
    reports = []
    with OrtRunner(onnx_path, "cpu") as runner:
        specs = runner.input_specs()
        w_dtype = np.float64 if specs[WINDOWS_NAME][0] == "tensor(double)" else np.float32
        for S, H, W, R in cases:
            # post-ReLU maps (what the pyramid sees in a detector) with some exact zeros
            x = np.maximum(rng.standard_normal((S, channels, H, W), dtype=np.float32), 0)
            win = parity_windows(rng, R, S, H, W, stride).astype(w_dtype)
            with torch.no_grad():
                ref = model(torch.from_numpy(x), torch.from_numpy(win)).numpy()
            try:
                got = runner.infer({MAPS_NAME: x, WINDOWS_NAME: win})[OUTPUT_NAME]
            except UserError:
                raise
            except Exception as e:
                raise ParityError(f"ONNX Runtime failed at maps {S}x{channels}x{H}x{W}, {R} windows: "
                                  f"{first_line(e)}") from None
            if got.shape != ref.shape:
                raise ParityError(f"parity: output shape {got.shape} != PyTorch {ref.shape} "
                                  f"(maps {S}x{channels}x{H}x{W}, {R} windows)")
            diff = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
            same = bool(np.array_equal(got, ref))
            scale = float(np.abs(ref).max()) if ref.size else 0.0
            if (exact and not same) or diff > rtol * max(scale, 1e-30):
                raise ParityError(f"parity: ONNX Runtime differs from PyTorch by {diff:.3g} at maps "
                                  f"{S}x{channels}x{H}x{W} with {R} windows")
            reports.append(WindowParity((S, H, W, R), diff, same))
    return reports


def export_window_model(model: torch.nn.Module, path: str | os.PathLike, *, channels: int, stride: float,
                        opset: int = DEFAULT_OPSET, spp_impl: str = "standard", check_parity: bool = True,
                        exact: bool = False, cases: Sequence[tuple[int, int, int, int]] = PARITY_CASES
                        ) -> WindowExportResult:
    """Export ``model(maps, windows)`` to ``path``; the parity check runs on the temporary file
    and nothing is written when it fails."""
    from .onnx_export import write_atomic

    g = torch.Generator().manual_seed(0)
    example = (torch.rand(2, channels, 13, 17, generator=g),
               torch.from_numpy(parity_windows(np.random.default_rng(0), 8, 2, 13, 17, stride)))
    proto = to_onnx_window_model(model, example, opset, spp_impl)
    result = WindowExportResult(Path(path))

    def verify(tmp: Path) -> None:
        if check_parity:
            result.parity = check_window_parity(model, tmp, channels, stride, cases, exact=exact)

    write_atomic(proto, Path(path), verify)
    return result
