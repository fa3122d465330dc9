"""Orchestration above ``export`` and ``runtime``: trace -> temporary file -> parity check ->
rename, composed here the way Polygraphy's tools compose its loaders.

``export`` produces a checked ONNX model in memory and knows nothing of runtimes; ``runtime``
runs files and compares outputs and knows nothing of exporting. ``export_onnx`` is the one place
that joins them: the file appears only after ONNX Runtime agrees with the user's own model.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import onnx
import torch

from . import export as _export
from .constants import DEFAULT_OPSET, DYNAMIC_AXES, PRECISION_TOLERANCES
from .errors import ParityError, UserError
from .fileio import atomic_write, check_output
from .runtime.compare import check_export_parity, source_error


def save_onnx(proto: onnx.ModelProto, path: Path, verify: Callable[[Path], None] | None = None) -> None:
    """Write to a temp file beside ``path``, run ``verify(temp_path)``, then rename into place."""
    atomic_write(path, lambda tmp: onnx.save_model(proto, tmp), verify)


def explain(model: torch.nn.Module, example: torch.Tensor, spp_layers=None) -> str | None:
    """Name the bin rule and size when a recognized SPP layer is what breaks at the example's
    shape (the canonical op says which rule and level), else None."""
    from .recognize import canonicalize

    shape = tuple(example.shape)
    with canonicalize(model, torch.zeros(shape), spp_layers, sppf=False) as (traced, _):
        why = source_error(traced, shape)
    return why if why and "bin rule" in why else None


@dataclass
class ExportResult:
    path: Path
    spp_layers: int  # SPP layers in the file (canonical, tabulated, patched functions)
    parity: list = field(default_factory=list)  # spp_deploy.runtime.compare.SizeReport
    layers: list = field(default_factory=list)  # spp_deploy.recognize.LayerReport


def export_onnx(
    model: torch.nn.Module,
    example_inputs: torch.Tensor | tuple,
    path: str | os.PathLike,
    *,
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
    check_parity: bool = True,
    sizes: Sequence[tuple[int, int, int]] | None = None,
    progress=None,
    recognize: bool = True,
    sppf: bool = True,
    spp_layers: Mapping[str, object] | Sequence[str] | None = None,
    precision: str = "fp32",
    tabulate_limit: int | None = None,
    force: bool = False,
) -> ExportResult:
    """Export ``model`` to ONNX at ``path`` with dynamic batch/height/width.

    ``precision="fp16"`` traces a float16 copy (weights, activations and I/O in half, which
    TensorRT 11's strongly typed builds need) and checks it against the float32 model with fp16
    tolerances.

    Before the file appears, ONNX Runtime CPU is compared with PyTorch at 8+ sizes (or
    ``sizes``: (batch, height, width)); on a mismatch ``ParityError`` is raised and nothing is
    written. ``recognize`` rewrites known/identified SPP layers (``spp_layers``: explicit
    declarations, {module path: SppConfig or 'levels:4,2,1;bins=RULE;...'} or
    ['PATH=levels:4,2,1;bins=RULE;...', ...] as the command line takes them); ``sppf`` turns ultralytics SPP into SPPF.
    """
    example = example_inputs[0] if isinstance(example_inputs, (tuple, list)) else example_inputs
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        raise UserError("example input must be one [B, C, H, W] tensor")
    path = check_output(path, "output", force)
    why = source_error(model, tuple(example.shape))
    if why:
        why = (explain(model, example, spp_layers) if recognize else None) or why
        raise UserError(f"the model cannot run at input shape {'x'.join(map(str, example.shape))}: {why}")
    if precision not in PRECISION_TOLERANCES:
        raise UserError(f"unknown precision {precision!r} (known: {', '.join(PRECISION_TOLERANCES)})")
    traced, x = (copy.deepcopy(model).eval().half(), example.detach().half()) if precision == "fp16" else (model, example)
    proto, count, reports = _export.trace_to_onnx(traced, x, dynamic, opset, spp_impl, recognize, sppf, spp_layers,
                                          tabulate_limit)
    result = ExportResult(Path(path), count, layers=list(reports))
    rtol, atol = PRECISION_TOLERANCES[precision]

    def verify(tmp: Path) -> None:
        if not check_parity:
            return
        try:
            result.parity = check_export_parity(model, tmp, example, sizes=sizes, progress=progress, rtol=rtol,
                                                atol=atol)
        except ParityError as e:
            why = _export.refusal(reports, ParityError, f"; parity check: {e}")
            if why is None:
                raise
            raise why from e

    save_onnx(proto, Path(path), verify)
    return result
