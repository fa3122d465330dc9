"""Orchestration above ``export`` and ``runtime``: trace -> temporary file -> parity check ->
rename, composed here the way Polygraphy's tools compose its loaders.

``export`` produces a checked ONNX model in memory and knows nothing of runtimes; ``runtime``
runs files and compares outputs and knows nothing of exporting. ``export_onnx`` is the one place
that joins them: the file appears only after ONNX Runtime agrees with the user's own model.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

import onnx
import torch

from . import export as _export
from .util.constants import DEFAULT_OPSET, DEFAULT_WINDOWS_DTYPE, DYNAMIC_AXES, PRECISION_TOLERANCES
from .util.errors import ParityError, UserError, first_line
from .util.fileio import atomic_write, check_output
from .export.onnx_export import ROUTES
from .sources.modelstate import keeps_model
from .sources.outputs import model_output_names
from .export.window_export import (MAPS_NAME, OUTPUT_NAME, PARITY_CASES, WINDOWS_NAME, parity_windows,
                                   to_onnx_window_model)
from .runtime.compare import check_export_parity, source_error
from .runtime.ort_runner import OrtRunner
from .ops.window_pyramid import windows_torch_dtype


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
    route: str = "dynamo"  # the exporter that made the file (spp_deploy.export.ROUTES)
    failures: list = field(default_factory=list)  # [(route, UserError)]: routes tried before it, and why not


def _canonical_arguments(model, example_inputs, dynamic, opset, sizes, tabulate_limit) -> tuple:
    """The forms the command line takes (sizes (H, W), dynamic 'batch', opset '20') made
    canonical; anything else one ``UserError`` naming the argument (``spp_deploy.util.arguments``)."""
    from .util import arguments

    arguments.module_or_error(model)
    return (arguments.example_tensor(example_inputs), arguments.parse_dynamic(dynamic), arguments.opset_number(opset),
            arguments.parity_sizes(sizes), arguments.tabulate_limit(tabulate_limit))


@keeps_model
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
    routes: Sequence[str] = ROUTES,
) -> ExportResult:
    """Export ``model`` to ONNX at ``path`` with dynamic batch/height/width.

    ``precision="fp16"`` traces a float16 copy (weights, activations and I/O in half, which
    TensorRT 11's strongly typed builds need) and checks it against the float32 model with fp16
    tolerances.

    Before the file appears, ONNX Runtime CPU is compared with PyTorch at 8+ sizes (or
    ``sizes``: (batch, height, width)); on a mismatch ``ParityError`` is raised and nothing is
    written. ``recognize`` rewrites known/identified SPP layers (``spp_layers``: explicit
    declarations, {module path: SppConfig or 'levels:4,2,1;rule=RULE;...'} or
    ['PATH=levels:4,2,1;rule=RULE;...', ...] as the command line takes them); ``sppf`` turns ultralytics SPP into SPPF.
    A model returning a tuple, list or dict of tensors gets one output per tensor, each checked
    (order and names: ``spp_deploy.sources.outputs``); a leaf that is not a tensor is a ``UserError``.

    ``routes``: the exporters to try, in order (torch.export/dynamo, then the TorchScript
    exporter): the first whose file passes the parity check is kept, and named in
    ``ExportResult.route`` and the file's ``metadata_props``.
    """
    example, dynamic, opset, sizes, tabulate_limit = _canonical_arguments(model, example_inputs, dynamic, opset, sizes,
                                                                          tabulate_limit)
    path = check_output(path, "output", force)
    why = source_error(model, tuple(example.shape))
    if why:
        why = (explain(model, example, spp_layers) if recognize else None) or why
        raise UserError(f"the model cannot run at input shape {'x'.join(map(str, example.shape))}: {why}")
    model_output_names(model, example)  # a non-tensor output is refused before recognition and tracing
    if precision not in PRECISION_TOLERANCES:
        raise UserError(f"unknown precision {precision!r} (known: {', '.join(PRECISION_TOLERANCES)})")
    traced, x = (copy.deepcopy(model).eval().half(), example.detach().half()) if precision == "fp16" else (model, example)
    rtol, atol = PRECISION_TOLERANCES[precision]
    failures: list[tuple[str, UserError]] = []
    remaining = list(routes)
    while True:
        try:
            t = _export.trace_routes(traced, x, dynamic, opset, spp_impl, recognize, sppf, spp_layers, tabulate_limit,
                                     remaining)
        except UserError as e:
            if not failures:
                raise
            raise _all_failed(t.reports, failures + getattr(e, "route_failures", [])) from e
        failures += t.failures
        result = ExportResult(Path(path), t.count, layers=list(t.reports), route=t.route, failures=list(failures))

        def verify(tmp: Path, result: ExportResult = result, reports: list = t.reports, route: str = t.route) -> None:
            if not check_parity:
                return
            logging.getLogger(__name__).info("checking parity (%s route) with ONNX Runtime CPU", route)
            try:
                result.parity = check_export_parity(model, tmp, example, sizes=sizes, progress=progress, rtol=rtol,
                                                    atol=atol)
            except ParityError as e:
                if _export.refusal(reports) is not None:  # a layer export had to leave: that is the news
                    raise
                from .runtime.localize import parity_failure_note

                where = parity_failure_note(model, tmp, getattr(e, "shape", None), rtol, atol)
                if where is None:
                    raise
                raise ParityError(f"{e}; {where}") from e

        try:
            save_onnx(t.proto, Path(path), verify)
            return result
        except ParityError as e:
            failures.append((t.route, e))
            remaining = remaining[remaining.index(t.route) + 1:]
            if not remaining:
                raise _all_failed(t.reports, failures) from e


def _all_failed(reports: list, failures: list[tuple[str, UserError]]) -> ParityError:
    """Every route failed, at least one on the parity check: the SPP layer export had to leave
    as it is, when there is one, else one line with each route's cause."""
    parity = [e for _, e in failures if isinstance(e, ParityError)]
    return (_export.refusal(reports, ParityError, f"; parity check: {parity[-1]}")
            or _export.routes_failed(failures, ParityError))


# ---- window pyramids (SPP-net detection heads): two inputs, maps and windows ----

@dataclass
class WindowParity:
    shape: tuple[int, int, int, int]  # S, H, W, R
    max_abs_diff: float
    bit_identical: bool


@dataclass
class WindowExportResult:
    path: Path
    parity: list[WindowParity] = field(default_factory=list)


def check_window_parity(model: torch.nn.Module, onnx_path: str | os.PathLike, channels: int, stride: float,
                        cases: Sequence[tuple[int, int, int, int]] = PARITY_CASES, rtol: float = 1e-5,
                        seed: int = 0, exact: bool = False) -> list[WindowParity]:
    """ONNX Runtime CPU vs the eager module, both given the same windows in the file's windows
    dtype (float32 windows: the same float32 values, so max pooling must match bit for bit);
    ``ParityError`` naming the first mismatching case.
    ``exact``: demand bit-identical output (a bare window pyramid); otherwise within ``rtol`` of
    the reference's largest magnitude (layers after the pyramid may sum in another order)."""
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


@keeps_model
def export_window_model(model: torch.nn.Module, path: str | os.PathLike, *, channels: int, stride: float,
                        opset: int = DEFAULT_OPSET, spp_impl: str = "standard", check_parity: bool = True,
                        exact: bool = False, cases: Sequence[tuple[int, int, int, int]] = PARITY_CASES,
                        windows_dtype: str = DEFAULT_WINDOWS_DTYPE, force: bool = False) -> WindowExportResult:
    """Export ``model(maps, windows)`` to ``path``; the parity check runs on the temporary file
    and nothing is written when it fails. ``windows_dtype``: the ``windows`` input's dtype,
    float64 or float32 (for TensorRT, which has no float64). An existing ``path`` is replaced
    only with ``force`` (the policy of ``export_onnx`` and every command)."""
    path = check_output(path, "output", force)
    w_dtype = windows_torch_dtype(windows_dtype)
    g = torch.Generator().manual_seed(0)
    example = (torch.rand(2, channels, 13, 17, generator=g),
               torch.from_numpy(parity_windows(np.random.default_rng(0), 8, 2, 13, 17, stride)).to(w_dtype))
    proto = to_onnx_window_model(model, example, opset, spp_impl)
    result = WindowExportResult(Path(path))

    def verify(tmp: Path) -> None:
        if check_parity:
            result.parity = check_window_parity(model, tmp, channels, stride, cases, exact=exact)

    save_onnx(proto, Path(path), verify)
    return result
