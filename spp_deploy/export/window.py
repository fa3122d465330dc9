"""ONNX for the window pyramid (SPP-net detection pooling): the custom node the exporter emits,
its standard-op lowering, and plugin mode.

Standard lowering (``docs/window-spp.md`` section 4): the projection runs in-graph
in float64 (``spp_deploy.projection.project_span`` evaluated on graph tensors, so the formula is
written once); the map is zero-clamped (the original max starts at 0; ``MaxRoiPool`` starts at
-FLT_MAX) and each level is one ``MaxRoiPool(pooled_shape=[n, n], spatial_scale=1)`` on the
integer cell windows, whose float32 bin edges equal the adaptive rule for the supported levels
(``spp_deploy.window.EXACT_LEVELS``). A level that divides a finer one is a k x k ``MaxPool`` of
that level's grid (its bins are exact unions of the finer bins), so the window is scanned once.
Plugin mode keeps one ``spp_deploy.WindowSpatialPyramidPool`` node with ``plugin_version``/``plugin_namespace`` and that lowering as a model-local function body.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..projection import WindowProjection, project_span
from ..window import level_sources
from .graph import SPP_DOMAIN, WINDOW_OP, WINDOW_PLUGIN_NAMESPACE, WINDOW_PLUGIN_VERSION
from .symbolic import GraphBuilder, Sym, gs_dtype

_F64 = np.float64
_F32 = np.float32
_INT = np.int64
WINDOW_ATTRS = ("levels", "projection", "plugin_version", "plugin_namespace")


class _GraphOps:
    """``project_span``'s ops backend on float64 graph tensors."""

    def __init__(self, b: GraphBuilder) -> None:
        self.b = b

    def _u(self, op: str, x: Sym) -> Sym:
        return self.b.op(op, [x.tensor], _F64)

    def floor(self, x: Sym) -> Sym:
        return self._u("Floor", x)

    def ceil(self, x: Sym) -> Sym:
        return self._u("Ceil", x)

    def trunc(self, x: Sym) -> Sym:  # ONNX has no Trunc: ceil below zero, floor above
        return self.where(x < 0, self.ceil(x), self.floor(x))

    def greater(self, a: Sym, c: Sym) -> Sym:
        return self.b.op("Greater", [a.tensor, c.tensor], np.bool_)

    def where(self, c: Sym, a: Sym, d: Sym) -> Sym:
        return self.b.op("Where", [c.tensor, a.tensor, d.tensor], _F64)

    def clamp(self, x: Sym, lo: float, hi: Sym) -> Sym:
        low = self.b.op("Max", [x.tensor, self.b.const(lo, _F64).tensor], _F64)
        return self.b.op("Min", [low.tensor, hi.tensor], _F64)


def _cast(b: GraphBuilder, x: Sym, dtype) -> Sym:
    if x.dtype == np.dtype(dtype):
        return x
    return b.op("Cast", [x.tensor], dtype, to=int(gs_dtype(dtype)))


def _column(b: GraphBuilder, w: Sym, i: int) -> Sym:
    ints = lambda v: b.const([v], _INT).tensor  # noqa: E731
    return b.op("Slice", [w.tensor, ints(i), ints(i + 1), ints(1)], w.dtype)


def _map_dim(b: GraphBuilder, shape: Sym, i: int) -> Sym:
    d = b.op("Gather", [shape.tensor, b.const(i, _INT).tensor], _INT, axis=0)
    return _cast(b, d, _F64)


def build_window_pyramid(b: GraphBuilder, x: Sym, windows: Sym, levels, proj: WindowProjection) -> Sym:
    """[S, C, H, W] maps + [R, 5] windows -> [R, C * sum(n^2)] in x's dtype, standard ops only."""
    ops = _GraphOps(b)
    shape = b.op("Shape", [x.tensor], _INT)
    H, W = _map_dim(b, shape, 2), _map_dim(b, shape, 3)
    w = _cast(b, windows, _F64)
    idx, x0, y0, x1, y1 = (_column(b, w, i) for i in range(5))
    left, right = project_span(x0, x1, W, proj, ops)
    top, bottom = project_span(y0, y1, H, proj, ops)
    corners = [idx] + [v - 1.0 for v in (left, top, right, bottom)]  # 0-based cells for MaxRoiPool
    rois = _cast(b, b.op("Concat", [v.tensor for v in corners], _F64, axis=1), _F32)
    x32 = _cast(b, x, _F32)  # MaxRoiPool's bin edges are exact in float32 arithmetic only
    zero = b.const(0, _F32)
    xz = b.op("Where", [b.op("Greater", [x32.tensor, zero.tensor], np.bool_).tensor, x32.tensor, zero.tensor], _F32)
    grids: dict[int, Sym] = {}
    src = level_sources(levels)
    for n in sorted(set(levels), reverse=True):  # finest first; coarser levels pool its grid
        if src[n] == n:
            grids[n] = b.op("MaxRoiPool", [xz.tensor, rois.tensor], _F32, pooled_shape=[n, n], spatial_scale=1.0)
        else:
            k = src[n] // n
            grids[n] = b.op("MaxPool", [grids[src[n]].tensor], _F32, kernel_shape=[k, k], strides=[k, k])
    flat = [b.op("Flatten", [grids[n].tensor], _F32, axis=1).tensor for n in levels]
    y = b.op("Concat", flat, _F32, axis=1)
    return _cast(b, y, x.dtype)


def window_nodes(graph: gs.Graph) -> list[gs.Node]:
    return [n for n in graph.nodes if n.domain == SPP_DOMAIN and n.op == WINDOW_OP]


def _node_config(node: gs.Node) -> tuple[tuple[int, ...], WindowProjection]:
    levels = tuple(int(v) for v in node.attrs["levels"])
    return levels, WindowProjection(*(float(v) for v in node.attrs["projection"]))


def _typed(model: onnx.ModelProto) -> gs.Graph:
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    for node in window_nodes(graph):
        if node.inputs[0].dtype is None or node.inputs[1].dtype is None:
            raise ValueError(f"window SPP node {node.name}: input type unknown after shape inference")
    return graph


def lower_windows_standard(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline every window SPP node as standard ONNX ops."""
    graph = _typed(model)
    for i, node in enumerate(window_nodes(graph)):
        x, win = node.inputs[0], node.inputs[1]
        b = GraphBuilder(f"wspp{i}")
        levels, proj = _node_config(node)
        out = build_window_pyramid(b, Sym(b, x, np.dtype(x.dtype)), Sym(b, win, np.dtype(win.dtype)), levels, proj)
        y = node.outputs[0]
        node.outputs.clear()
        last = b.nodes[-1]
        assert last.outputs[0] is out.tensor
        last.outputs.clear()
        last.outputs.append(y)
        graph.nodes.extend(b.nodes)
    graph.cleanup().toposort()
    proto = gs.export_onnx(graph)
    if not any(n.domain == SPP_DOMAIN for n in proto.graph.node) and not proto.functions:
        keep = [o for o in proto.opset_import if o.domain != SPP_DOMAIN]
        del proto.opset_import[:]
        proto.opset_import.extend(keep)
    return proto


def _function_body(levels, proj, x_dtype, w_dtype, opset: int, overload: str | None) -> gs.Function:
    x = gs.Variable("X", dtype=x_dtype)
    win = gs.Variable("ROIS", dtype=w_dtype)
    b = GraphBuilder("body")
    y = build_window_pyramid(b, Sym(b, x, np.dtype(x_dtype)), Sym(b, win, np.dtype(w_dtype)), levels, proj).tensor
    y.name = "Y"
    fn = gs.Function(WINDOW_OP, domain=SPP_DOMAIN, nodes=b.nodes, inputs=[x, win], outputs=[y],
                     import_domains=[onnx.helper.make_opsetid("", opset)],
                     attrs={name: None for name in WINDOW_ATTRS})
    fn.overload = overload
    return fn


def windows_to_plugin_mode(model: onnx.ModelProto) -> onnx.ModelProto:
    """One ``spp_deploy.WindowSpatialPyramidPool`` node per window pyramid, with the plugin
    attributes and a model-local function body (distinct configurations: distinct overloads)."""
    graph = _typed(model)
    opset = graph.opset
    bodies: dict[tuple, str | None] = {}
    for node in window_nodes(graph):
        levels, proj = _node_config(node)
        key = (levels, proj, np.dtype(node.inputs[0].dtype), np.dtype(node.inputs[1].dtype))
        if key not in bodies:
            bodies[key] = None if not bodies else f"win{len(bodies)}"
            graph.functions.append(_function_body(levels, proj, key[2], key[3], opset, bodies[key]))
        node.attrs["plugin_version"] = WINDOW_PLUGIN_VERSION
        node.attrs["plugin_namespace"] = WINDOW_PLUGIN_NAMESPACE
        node.overload = bodies[key]
    proto = gs.export_onnx(graph)
    for fn_proto, fn in zip(proto.functions, graph.functions):
        if getattr(fn, "overload", None):
            fn_proto.overload = fn.overload
    overloads = {n.name: o for n in window_nodes(graph) if (o := n.overload)}
    for n in proto.graph.node:
        if n.name in overloads:
            n.overload = overloads[n.name]
    return proto


def schema_op():
    """An onnxscript Op for the custom node: the torch exporter needs a schema to emit it."""
    import onnxscript
    from onnx.defs import OpSchema

    A = OpSchema.AttrType
    schema = OpSchema(
        WINDOW_OP, SPP_DOMAIN, 1,
        inputs=[OpSchema.FormalParameter("X", "T"), OpSchema.FormalParameter("ROIS", "T2")],
        outputs=[OpSchema.FormalParameter("Y", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], ""),
                          ("T2", ["tensor(float)", "tensor(double)", "tensor(float16)"], "")],
        attributes=[OpSchema.Attribute("levels", A.INTS, "pyramid levels n (n x n bins)"),
                    OpSchema.Attribute("projection", A.FLOATS, "stride, offset0, offset")],
    )
    return onnxscript.values.Op(onnxscript.values.Opset(SPP_DOMAIN, 1), WINDOW_OP, schema)


def translation_entry() -> dict:
    import torch

    from .. import window as _window  # registers the custom op

    assert _window.window_spatial_pyramid_pool is not None

    op = schema_op()

    def translate(x, windows, levels, projection):
        return op(x, windows, levels=list(levels), projection=[float(v) for v in projection])

    return {torch.ops.spp_deploy.window_spatial_pyramid_pool.default: translate}
