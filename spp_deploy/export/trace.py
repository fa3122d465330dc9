"""PyTorch model -> checked ONNX model in memory: the one trace function (``to_onnx_model``) for
every op and graph signature (one image input, or a detection head's maps and windows), and the
route fallback around it (``trace_routes``).

The user's SPP layers (seed code, adaptive pyramids, declared layers, tabulated layers) are
swapped for canonical ops only while tracing (``spp_deploy.recognize.canonicalize``). Writing the
file and the parity check against the user's restored model are the caller's
(``spp_deploy.checked_export.export_onnx``): this package imports nothing from ``runtime``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import onnx
import torch

from ..util.constants import DEFAULT_OPSET, DYNAMIC_AXES, MAX_OPSET, MIN_OPSET, SPP_IMPLS  # noqa: F401 (re-exported)
from ..util.errors import ParityError, UserError, first_line, raise_if_interrupted
from ..ops.pyramid import SpatialPyramidPool
from ..contract import SPP_DOMAIN
from .names import name_outputs
from .passes import run_pass
from .nearest import exact_nearest
from .scopes import node_scopes, restore_scopes

INPUT_NAME = "input"
OUTPUT_NAME = "output"
MAPS_NAME = "features"
WINDOWS_NAME = "windows"
# Each graph input the exporter writes -> {axis: the dim's name}; a name is dynamic when asked for.
INPUT_AXES = {INPUT_NAME: dict(zip((0, 2, 3), DYNAMIC_AXES)),
              MAPS_NAME: {0: "maps", 2: "height", 3: "width"}, WINDOWS_NAME: {0: "num_windows"}}
WINDOW_AXES = ("maps", "height", "width", "num_windows")  # a detection head's dynamic dims


@contextlib.contextmanager
def _quiet():
    """torch.onnx prints progress and warnings on every export (and, when one capture strategy
    fails before another succeeds, the partial graph on stderr); keep the CLI's output ours."""
    loggers = [logging.getLogger(n) for n in (
        "torch.onnx", "torch.export", "torch._dynamo", "torch.fx.experimental.symbolic_shapes", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)  # torch.export logs its failures at ERROR too ("... is unsupported.")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


ROUTES = ("dynamo", "torchscript")  # the exporters tried, in this order (checked_export.export_onnx)
ROUTE_KEY = "spp_deploy.export_route"  # metadata_props key naming the exporter that made the file
TORCHSCRIPT_MAX_OPSET = 20


def _dims(example: Mapping[str, torch.Tensor], dynamic: Sequence[str]) -> dict[str, dict[int, str]]:
    """Each graph input's dynamic axes: {input name: {axis: dim name}}."""
    return {k: {i: name for i, name in INPUT_AXES[k].items() if name in dynamic} for k in example}


def _dynamo_route(model: torch.nn.Module, example: Mapping[str, torch.Tensor], dynamic: Sequence[str],
                  opset: int) -> onnx.ModelProto:
    """torch.export + the dynamo ONNX exporter; our custom ops through the registry's translation table."""
    from .registry import translation_table

    dims = [{i: torch.export.Dim.DYNAMIC for i in axes} for axes in _dims(example, dynamic).values()]
    program = torch.onnx.export(
        model,
        tuple(example.values()),
        dynamo=True,
        input_names=list(example),
        output_names=[OUTPUT_NAME],
        dynamic_shapes=tuple(dims),
        opset_version=opset,
        custom_translation_table=translation_table(),
        optimize=True,
        verify=False,
    )
    return program.model_proto


def _torchscript_route(model: torch.nn.Module, example: Mapping[str, torch.Tensor], dynamic: Sequence[str],
                       opset: int) -> onnx.ModelProto:
    """The TorchScript exporter with ``dynamic_axes``: traces Python once, so it gets past what
    torch.export's shape reasoning cannot; our custom ops through TorchScript symbolics that
    emit the same nodes as the dynamo route (the parity check catches what the trace baked in)."""
    if opset > TORCHSCRIPT_MAX_OPSET:
        raise UserError(f"the TorchScript exporter writes opset <= {TORCHSCRIPT_MAX_OPSET}, not {opset}", option="opset")
    from .torchscript import register_symbolics

    register_symbolics(opset)
    axes = _dims(example, dynamic)
    last = list(axes.values())[-1]  # the output's rows follow the last input's (batch, or windows)
    buf = io.BytesIO()
    with _native_output_silenced():
        torch.onnx.export(
            model,
            tuple(example.values()),
            buf,
            dynamo=False,
            input_names=list(example),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**axes, OUTPUT_NAME: {0: last[0]} if 0 in last else {}},
            opset_version=opset,
            custom_opsets={SPP_DOMAIN: 1},
            do_constant_folding=True,
        )
    return onnx.load_model_from_string(buf.getvalue())


@contextlib.contextmanager
def _native_output_silenced():
    """The TorchScript exporter prints its whole graph from C++ on a failure (torch turns its
    ONNX log on inside export): keep the process's stdout and stderr ours."""
    saved = []
    try:
        for stream in (sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):  # no real stream (embedded, closed)
                continue
            saved.append((fd, os.dup(fd)))
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


_ROUTE_FUNCTIONS = {"dynamo": _dynamo_route, "torchscript": _torchscript_route}


def to_onnx_model(
    model: torch.nn.Module,
    example: torch.Tensor | Mapping[str, torch.Tensor],
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
    route: str = "dynamo",
) -> onnx.ModelProto:
    """Export ``model`` by ``route`` (one of ``ROUTES``) and return the lowered or plugin-wrapped,
    checked ONNX model (in memory), its route recorded in ``metadata_props``.

    Args:
        example: one image tensor (graph input ``input``), or {graph input name: tensor} in the
            model's argument order (a detection head: ``features`` and ``windows``, ``INPUT_AXES``).
        dynamic: the dim names (``INPUT_AXES``) left dynamic.
    Returns:
        The model proto; every custom node lowered (``standard``) or a plugin node (``plugin``).
    """
    feed = dict(example) if isinstance(example, Mapping) else {INPUT_NAME: example}
    check_args(dynamic, opset, spp_impl, (route,), _known_axes(feed))
    model = model.eval()
    names = _output_names(model, feed)
    try:
        with _quiet(), torch.no_grad(), exact_nearest():  # nearest upsampling as PyTorch picks pixels
            proto = _ROUTE_FUNCTIONS[route](model, feed, dynamic, opset)
    except UserError:
        raise
    except Exception as e:  # torch's own message is long and wrapped: say the cause in one line
        raise_if_interrupted(e)
        from .causes import describe

        raise UserError(f"torch.onnx.export ({route}) failed: {describe(e, model)}") from e
    name_outputs(proto, names)  # after the export: torch.onnx's renaming can give a name twice
    _name_dynamic_dims(proto, dynamic)
    scopes = node_scopes(proto)
    proto = run_pass(proto, spp_impl)
    restore_scopes(proto, scopes)  # the pass drops node metadata: which module each node came from
    check_model(proto)
    set_route(proto, route)
    return proto


def _known_axes(feed: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for k in feed for name in INPUT_AXES.get(k, {}).values()))


def _output_names(model: torch.nn.Module, feed: Mapping[str, torch.Tensor]) -> list[str]:
    """One name per output tensor, in torch.onnx's flattening order: ``output`` for one tensor,
    paths for tuples, lists and dicts (``spp_deploy.outputs``); non-tensor leaves are refused."""
    from ..sources.outputs import model_output_names, output_names

    if len(feed) == 1:
        return model_output_names(model, next(iter(feed.values())))
    with torch.no_grad():
        return output_names(model(*feed.values()))


def check_args(dynamic: Sequence[str], opset: int, spp_impl: str, routes: Sequence[str],
               known: Sequence[str] = DYNAMIC_AXES) -> None:
    """The export arguments every route shares, checked once (``known``: the graph's dim names)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET})")
    if spp_impl not in SPP_IMPLS:
        raise UserError(f"unknown SPP implementation {spp_impl!r} (known: {', '.join(SPP_IMPLS)})")
    bad = [r for r in routes if r not in _ROUTE_FUNCTIONS]
    if bad or not routes:
        raise UserError(f"unknown export route {(bad or [''])[0]!r} (known: {', '.join(ROUTES)})", option="routes")
    unknown = set(dynamic) - set(known)
    if unknown:
        raise UserError(f"unknown dynamic axis {sorted(unknown)[0]!r} (known: {', '.join(known)})")


def set_route(proto: onnx.ModelProto, route: str) -> None:
    """Record the exporter that made ``proto`` in its ``metadata_props`` (``ROUTE_KEY``)."""
    keep = [p for p in proto.metadata_props if p.key != ROUTE_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    proto.metadata_props.add(key=ROUTE_KEY, value=route)


def get_route(proto: onnx.ModelProto) -> str | None:
    """The exporter recorded in ``proto`` (None for files written before routes were recorded)."""
    return next((p.value for p in proto.metadata_props if p.key == ROUTE_KEY), None)


def _name_dynamic_dims(proto: onnx.ModelProto, dynamic: Sequence[str]) -> None:
    """Give the graph inputs' and outputs' dynamic dims readable names (``INPUT_AXES``)."""
    rename = {}
    for vi in proto.graph.input:
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            name = INPUT_AXES.get(vi.name, {}).get(i)
            if name in dynamic and d.dim_param:
                rename[d.dim_param] = name
                d.dim_param = name
    for vi in list(proto.graph.output) + list(proto.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]
    # Intermediate shapes carry torch's symbol expressions; shape inference re-derives them.
    del proto.graph.value_info[:]


def check_model(proto: onnx.ModelProto) -> None:
    """onnx's full checker and strict shape inference, with one-line failures."""
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        raise UserError(f"exported ONNX failed the checker: {first_line(e)}") from e


def find_spp_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    from ..ops.table_pyramid import TabulatedPyramidPool

    kinds = (SpatialPyramidPool, TabulatedPyramidPool)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


@dataclass
class Traced:
    """What ``trace_routes`` made: the model of the first route that traced, and why the routes
    before it could not."""

    proto: onnx.ModelProto
    count: int  # SPP layers in the file
    reports: list  # spp_deploy.recognize.LayerReport
    route: str
    failures: list[tuple[str, UserError]] = field(default_factory=list)


def trace_routes(
    model: torch.nn.Module,
    example: torch.Tensor,
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
    recognize: bool = True,
    sppf: bool = True,
    spp_layers: Mapping[str, object] | Sequence[str] | None = None,
    tabulate_limit: int | None = None,
    routes: Sequence[str] = ROUTES,
) -> Traced:
    """In-memory ONNX of ``model`` by the first of ``routes`` that traces, with its SPP layers
    made canonical for the trace (and restored afterwards). Ultralytics heads are traced in
    their dynamic ONNX export mode (``spp_deploy.recognize.export_mode``). When no route
    traces: the SPP layer export had to leave as it is (``refusal``), else every route's cause."""
    from ..recognize import canonicalize, export_mode
    from ..recognize.table_probe import DEFAULT_LIMIT

    check_args(dynamic, opset, spp_impl, routes)
    if recognize:
        limit = DEFAULT_LIMIT if tabulate_limit is None else tabulate_limit
        logging.getLogger(__name__).info("recognising SPP layers")
        rewrite = canonicalize(model, example, spp_layers, sppf, tabulate_limit=limit)
    else:
        rewrite = contextlib.nullcontext((model, []))
    failures: list[tuple[str, UserError]] = []
    with export_mode(model), rewrite as (traced, reports):
        count = len(find_spp_layers(traced))
        for route in routes:
            logging.getLogger(__name__).info("tracing (%s route)", route)
            try:
                proto = to_onnx_model(traced, example, dynamic, opset, spp_impl, route)
                break
            except UserError as e:
                failures.append((route, e))
        else:
            why = refusal(reports) or routes_failed(failures)
            why.route_failures = failures
            raise why from failures[-1][1]
    count += sum(1 for r in reports if (r.site is not None or r.op_site is not None) and r.rewrites)
    return Traced(proto, count, list(reports), route, failures)


def routes_failed(failures: Sequence[tuple[str, UserError]], error: type[UserError] = UserError) -> UserError:
    """One error saying why each route failed (the first route's cause first)."""
    def one(route: str, e: UserError) -> str:
        return f"the {route} route's file: {e}" if isinstance(e, ParityError) else str(e)

    if len(failures) == 1:
        return error(one(*failures[0]))
    return error("cannot export with dynamic H/W: " + "; ".join(one(route, e) for route, e in failures))


def trace_to_onnx(model: torch.nn.Module, example: torch.Tensor, *args, **kwargs) -> tuple[onnx.ModelProto, int, list]:
    """(model proto, number of SPP layers, recognition reports) of ``trace_routes`` (same
    arguments): the first route that traces, unchecked against PyTorch (``checked_export`` checks)."""
    t = trace_routes(model, example, *args, **kwargs)
    return t.proto, t.count, t.reports


def refusal(reports: Sequence, error: type[UserError] = UserError, after: str = "") -> UserError | None:
    """One line naming the SPP layers export had to leave as they are, what probing found, and
    what to do (declare it); None when every SPP-like layer was handled (the failure is elsewhere).
    ``after``: what failed, told before the remedy."""
    from ..recognize.config import DECLARATION_FORM

    left = [r for r in reports if r.status in ("none", "ambiguous") and not r.rewrites]
    if not left:
        return None
    r = left[0]
    more = f" (and {len(left) - 1} more SPP-like layer(s))" if len(left) > 1 else ""
    if r.op_site is not None:  # one pooling call: nothing to declare, its arguments must follow its input
        return error(f"cannot export the pooling call {r.path!r}{more} with dynamic H/W: {r.reason}{after}; "
                     "compute its kernel, stride and padding from the H and W of its own input")
    path = r.path.split(".forward ->")[0] if r.site is not None else r.path
    return error(f"cannot export SPP layer {r.path!r} ({r.kind}){more} with dynamic H/W: {r.reason or r.status}"
                 f"{after}; if you know what it computes, declare it",
                 option="spp_layers", example=DECLARATION_FORM.replace("PATH", path or "PATH", 1))
