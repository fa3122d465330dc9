"""PyTorch model -> checked ONNX model in memory (``trace_to_onnx``, ``to_onnx_model``).

The user's SPP layers (seed code, adaptive pyramids, declared layers, tabulated layers) are
swapped for canonical ops only while tracing (``spp_deploy.recognize.canonicalize``). Writing the
file and the parity check against the user's restored model are the caller's
(``spp_deploy.deploy.export_onnx``): this package imports nothing from ``runtime``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Mapping, Sequence

import onnx
import torch

from ..constants import DEFAULT_OPSET, DYNAMIC_AXES, MAX_OPSET, MIN_OPSET, SPP_IMPLS  # noqa: F401 (re-exported)
from ..errors import UserError, first_line, raise_if_interrupted
from ..op import SpatialPyramidPool
from . import graph as _graph
from .names import name_outputs
from .scopes import node_scopes, restore_scopes

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def _spp_schema_op():
    """An onnxscript Op for our custom node: the exporter needs a schema to emit it."""
    import onnxscript
    from onnx.defs import OpSchema

    A = OpSchema.AttrType
    schema = OpSchema(
        _graph.SPP_OP,
        _graph.SPP_DOMAIN,
        1,
        inputs=[OpSchema.FormalParameter("X", "T")],
        outputs=[OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "")],
        attributes=[
            OpSchema.Attribute("levels", A.INTS, "pyramid levels n (n x n bins)"),
            OpSchema.Attribute("mode", A.STRING, "max or avg"),
            OpSchema.Attribute(_graph.RULE_ATTR, A.STRING, "bin rule"),
            OpSchema.Attribute("order", A.STRING, "channel_major or bin_major"),
        ],
    )
    return onnxscript.values.Op(onnxscript.values.Opset(_graph.SPP_DOMAIN, 1), _graph.SPP_OP, schema)


def _tab_schema_op():
    """The tabulated pyramid's node: its tables stay in this process, keyed by ``key``."""
    import onnxscript
    from onnx.defs import OpSchema

    schema = OpSchema(
        _graph.TAB_OP, _graph.SPP_DOMAIN, 1,
        inputs=[OpSchema.FormalParameter("X", "T")],
        outputs=[OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "")],
        attributes=[OpSchema.Attribute("key", OpSchema.AttrType.STRING, "spp_deploy.tabulated registry key")],
    )
    return onnxscript.values.Op(onnxscript.values.Opset(_graph.SPP_DOMAIN, 1), _graph.TAB_OP, schema)


def _translation_table() -> dict:
    from .. import tabulated  # noqa: F401  (registers the custom op)

    spp, tab = _spp_schema_op(), _tab_schema_op()

    def translate(x, levels, mode, rule, order):
        return spp(x, levels=list(levels), mode=mode, order=order, **{_graph.RULE_ATTR: rule})

    def translate_tab(x, key):
        return tab(x, key=key)

    return {torch.ops.spp_deploy.spatial_pyramid_pool.default: translate,
            torch.ops.spp_deploy.tabulated_pyramid_pool.default: translate_tab}


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


def to_onnx_model(
    model: torch.nn.Module,
    example: torch.Tensor,
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
) -> onnx.ModelProto:
    """Trace ``model`` with torch.export and return the lowered, checked ONNX model (in memory)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET})")
    if spp_impl not in SPP_IMPLS:
        raise UserError(f"unknown SPP implementation {spp_impl!r} (known: {', '.join(SPP_IMPLS)})")
    unknown = set(dynamic) - set(DYNAMIC_AXES)
    if unknown:
        raise UserError(f"unknown dynamic axis {sorted(unknown)[0]!r} (known: {', '.join(DYNAMIC_AXES)})")
    dims = {i: torch.export.Dim.DYNAMIC for i, name in zip((0, 2, 3), DYNAMIC_AXES) if name in dynamic}
    model = model.eval()
    names = _output_names(model, example)
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=(dims,),
                opset_version=opset,
                custom_translation_table=_translation_table(),
                optimize=True,
                verify=False,
            )
    except Exception as e:  # torch's own message is long; keep its first line
        raise_if_interrupted(e)
        first = first_line(e)
        raise UserError(f"torch.onnx.export failed: {first}") from e
    proto = program.model_proto
    name_outputs(proto, names)  # after the export: torch.onnx's renaming can give a name twice
    _name_dynamic_dims(proto, dynamic)
    scopes = node_scopes(proto)
    if spp_impl == "standard":
        proto = _graph.lower_standard(proto)
    else:
        proto = _graph.to_plugin_mode(proto)
    restore_scopes(proto, scopes)  # the passes drop node metadata: which module each node came from
    check_model(proto)
    return proto


def _output_names(model: torch.nn.Module, example: torch.Tensor) -> list[str]:
    """One name per output tensor, in torch.onnx's flattening order: ``output`` for one tensor,
    paths for tuples, lists and dicts (``spp_deploy.outputs``); non-tensor leaves are refused."""
    from ..outputs import model_output_names

    return model_output_names(model, example)


def _name_dynamic_dims(proto: onnx.ModelProto, dynamic: Sequence[str]) -> None:
    """Give the graph input and output dims readable names (batch, height, width)."""
    names = dict(zip((0, 2, 3), DYNAMIC_AXES))
    inp = proto.graph.input[0].type.tensor_type.shape.dim
    rename = {}
    for i, d in enumerate(inp):
        if i in names and names[i] in dynamic and d.dim_param:
            rename[d.dim_param] = names[i]
            d.dim_param = names[i]
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
    from ..tabulated import TabulatedPyramidPool

    kinds = (SpatialPyramidPool, TabulatedPyramidPool)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def trace_to_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    dynamic: Sequence[str] = DYNAMIC_AXES,
    opset: int = DEFAULT_OPSET,
    spp_impl: str = "standard",
    recognize: bool = True,
    sppf: bool = True,
    spp_layers: Mapping[str, object] | Sequence[str] | None = None,
    tabulate_limit: int | None = None,
) -> tuple[onnx.ModelProto, int, list]:
    """In-memory ONNX of ``model`` with its SPP layers made canonical for the trace (and restored
    afterwards): (model proto, number of SPP layers, recognition reports). Ultralytics heads are
    traced in their dynamic ONNX export mode (``spp_deploy.recognize.export_mode``)."""
    from ..recognize import canonicalize, export_mode
    from ..recognize.tabulate import DEFAULT_LIMIT

    if recognize:
        limit = DEFAULT_LIMIT if tabulate_limit is None else tabulate_limit
        rewrite = canonicalize(model, example, spp_layers, sppf, tabulate_limit=limit)
    else:
        rewrite = contextlib.nullcontext((model, []))
    with export_mode(model), rewrite as (traced, reports):
        count = len(find_spp_layers(traced))
        try:
            proto = to_onnx_model(traced, example, dynamic, opset, spp_impl)
        except UserError as e:
            why = refusal(reports)
            if why is None:
                raise
            raise why from e
    count += sum(1 for r in reports if r.site is not None and r.rewrites)
    return proto, count, list(reports)


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
    path = r.path.split(".forward ->")[0] if r.site is not None else r.path
    return error(f"cannot export SPP layer {r.path!r} ({r.kind}){more} with dynamic H/W: {r.reason or r.status}"
                 f"{after}; if you know what it computes, declare it",
                 option="spp_layers", example=DECLARATION_FORM.replace("PATH", path or "PATH", 1))
