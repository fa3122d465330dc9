"""An ONNX file checked against PyTorch before it appears: trace (``export``) -> temporary file ->
parity check (``runtime.parity``) -> rename, composed here the way Polygraphy's tools compose
its loaders, for whole-image models (``export_onnx``) and window pyramids (``export_window_model``).

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
from .util.errors import ParityError, UserError
from .util.fileio import atomic_write, check_output
from .export.trace import MAPS_NAME, ROUTES, WINDOW_AXES, WINDOWS_NAME, to_onnx_model
from .sources.modelstate import keeps_model
from .options import ExportOptions, takes_options
from .sources.outputs import model_output_names
from .runtime.compare import source_error
from .runtime.parity import WindowParity, check_export_parity, check_window_parity  # noqa: F401 (re-exported)
from .ops.window_pyramid import PARITY_CASES, parity_windows, windows_torch_dtype


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
    parity: list = field(default_factory=list)  # spp_deploy.runtime.parity.SizeReport
    layers: list = field(default_factory=list)  # spp_deploy.recognize.LayerReport
    route: str = "dynamo"  # the exporter that made the file (spp_deploy.export.ROUTES)
    failures: list = field(default_factory=list)  # [(route, UserError)]: routes tried before it, and why not


def _canonical_arguments(model, example_inputs, dynamic, opset, sizes, tabulate_limit) -> tuple:
    """The forms the command line takes (sizes (H, W), dynamic 'batch', opset '20') made
    canonical; anything else one ``UserError`` naming the argument (``spp_deploy.arguments``)."""
    from .util import arguments

    arguments.module_or_error(model)
    return (arguments.example_tensor(example_inputs), arguments.parse_dynamic(dynamic), arguments.opset_number(opset),
            arguments.parity_sizes(sizes), arguments.tabulate_limit(tabulate_limit))


@keeps_model
@takes_options(ExportOptions)
def export_onnx(
    model: torch.nn.Module,
    example_inputs: torch.Tensor | tuple,
    path: str | os.PathLike,
    options: ExportOptions | None = None,
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

    ``options``: an ``ExportOptions`` holding the keywords below (each documented there); a
    keyword fills a field ``options`` leaves at its default, and one given both ways is a ``UserError``.

    ``precision="fp16"`` traces a float16 copy (weights, activations and I/O in half, which
    TensorRT 11's strongly typed builds need) and checks it against the float32 model with fp16
    tolerances.

    Before the file appears, ONNX Runtime CPU is compared with PyTorch at 8+ sizes (or
    ``sizes``: (batch, height, width)); on a mismatch ``ParityError`` is raised and nothing is
    written. ``recognize`` rewrites known/identified SPP layers (``spp_layers``: explicit
    declarations, {module path: SppConfig or 'levels:4,2,1;rule=RULE;...'} or
    ['PATH=levels:4,2,1;rule=RULE;...', ...] as the command line takes them); ``sppf`` turns ultralytics SPP into SPPF.
    A model returning a tuple, list or dict of tensors gets one output per tensor, each checked
    (order and names: ``spp_deploy.outputs``); a leaf that is not a tensor is a ``UserError``.

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

        verify = _parity_check(model, example, sizes, progress, (rtol, atol), result) if check_parity else None
        try:
            save_onnx(t.proto, Path(path), verify)
            return result
        except ParityError as e:
            failures.append((t.route, e))
            remaining = remaining[remaining.index(t.route) + 1:]
            if not remaining:
                raise _all_failed(t.reports, failures) from e


def _parity_check(model: torch.nn.Module, example: torch.Tensor, sizes, progress, tolerances: tuple[float, float],
                  result: ExportResult) -> Callable[[Path], None]:
    """The check run on the temporary file: ONNX Runtime vs ``model`` (``result.parity``); a
    mismatch says which module differs first, unless a layer export had to leave is the news."""
    rtol, atol = tolerances

    def verify(tmp: Path) -> None:
        logging.getLogger(__name__).info("checking parity (%s route) with ONNX Runtime CPU", result.route)
        try:
            result.parity = check_export_parity(model, tmp, example, sizes=sizes, progress=progress, rtol=rtol,
                                                atol=atol)
        except ParityError as e:
            if _export.refusal(result.layers) is not None:  # a layer export had to leave: that is the news
                raise
            from .runtime.localize import parity_failure_note

            where = parity_failure_note(model, tmp, getattr(e, "shape", None), rtol, atol)
            if where is None:
                raise
            raise ParityError(f"{e}; {where}") from e

    return verify


def _all_failed(reports: list, failures: list[tuple[str, UserError]]) -> ParityError:
    """Every route failed, at least one on the parity check: the SPP layer export had to leave
    as it is, when there is one, else one line with each route's cause."""
    parity = [e for _, e in failures if isinstance(e, ParityError)]
    return (_export.refusal(reports, ParityError, f"; parity check: {parity[-1]}")
            or _export.routes_failed(failures, ParityError))


# ---- window pyramids (SPP-net detection heads): two inputs, maps and windows ----

@dataclass
class WindowExportResult:
    path: Path
    parity: list[WindowParity] = field(default_factory=list)


@keeps_model
@takes_options(ExportOptions, applies=("opset", "spp_impl", "check_parity", "force"))
def export_window_model(model: torch.nn.Module, path: str | os.PathLike, options: ExportOptions | None = None, *,
                        channels: int, stride: float,
                        opset: int = DEFAULT_OPSET, spp_impl: str = "standard", check_parity: bool = True,
                        exact: bool = False, cases: Sequence[tuple[int, int, int, int]] = PARITY_CASES,
                        windows_dtype: str = DEFAULT_WINDOWS_DTYPE, force: bool = False) -> WindowExportResult:
    """Export ``model(maps, windows)`` to ``path``; the parity check runs on the temporary file
    and nothing is written when it fails. ``windows_dtype``: the ``windows`` input's dtype,
    float64 or float32 (for TensorRT, which has no float64). An existing ``path`` is replaced
    only with ``force`` (the policy of ``export_onnx`` and every command). ``options``: an
    ``ExportOptions`` giving ``opset``, ``spp_impl``, ``check_parity`` and ``force`` (its other fields
    do not apply to a window model)."""
    path = check_output(path, "output", force)
    w_dtype = windows_torch_dtype(windows_dtype)
    g = torch.Generator().manual_seed(0)
    example = (torch.rand(2, channels, 13, 17, generator=g),
               torch.from_numpy(parity_windows(np.random.default_rng(0), 8, 2, 13, 17, stride)).to(w_dtype))
    feed = {MAPS_NAME: example[0], WINDOWS_NAME: example[1]}
    proto = to_onnx_model(model, feed, WINDOW_AXES, opset, spp_impl)
    result = WindowExportResult(Path(path))

    def verify(tmp: Path) -> None:
        if check_parity:
            result.parity = check_window_parity(model, tmp, channels, stride, cases, exact=exact)

    save_onnx(proto, Path(path), verify)
    return result
