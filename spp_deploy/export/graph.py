"""Post-export graph pass: replace each ``spp_deploy.SpatialPyramidPool`` node emitted by the
torch exporter with its standard-op lowering (``spp_impl="standard"``) or keep it as one
plugin node backed by a model-local function (``spp_impl="plugin"``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..contract import (  # noqa: F401
    CONFIG_ATTRS, PLUGIN_ATTRS, RULE_ATTR, PLUGIN_NAMESPACE, PLUGIN_VERSION, POOL_OP, SPP_DOMAIN, SPP_OP, TAB_OP, SppConfig,
    is_spp_node,
)
from .lowering import build_pyramid, build_tabulated
from .size_pool import build_size_pool
from .symbolic import GraphBuilder, Sym


def node_config(node: gs.Node) -> SppConfig:
    return SppConfig.from_attrs(node.attrs)


def spp_nodes(graph: gs.Graph) -> list[gs.Node]:
    return [n for n in graph.nodes if is_spp_node(n)]


def tab_nodes(graph: gs.Graph, op: str = TAB_OP) -> list[gs.Node]:
    """Nodes of one of our inline-only ops (tabulated pyramids, size-dependent pools)."""
    return [n for n in graph.nodes if n.domain == SPP_DOMAIN and n.op == op]


def _inline(graph: gs.Graph, nodes: list[gs.Node], build, prefix: str) -> None:
    """Replace each node by the subgraph ``build(builder, x, node)`` writes, keeping its output."""
    for i, node in enumerate(nodes):
        x = node.inputs[0]
        b = GraphBuilder(f"{prefix}{i}")
        splice(graph, node, b, build(b, Sym(b, x, np.dtype(x.dtype)), node))


def splice(graph: gs.Graph, node: gs.Node, b: GraphBuilder, out: Sym) -> None:
    """Put the subgraph ``b`` built (ending in ``out``) in place of ``node``: its last node is
    re-pointed at the node's output tensor, so consumers keep it; ``node`` is left dangling."""
    y = node.outputs[0]
    node.outputs.clear()
    last = b.nodes[-1]
    assert last.outputs[0] is out.tensor
    last.outputs.clear()
    last.outputs.append(y)
    graph.nodes.extend(b.nodes)


def _inline_tabulated(graph: gs.Graph) -> None:
    """Tabulated pyramids and size-dependent pools: standard ops in either mode (no plugin)."""
    from ..ops.size_dependent_pool import get_spec as pool_spec
    from ..ops.table_pyramid import get_spec

    _inline(graph, tab_nodes(graph), lambda b, x, n: build_tabulated(b, x, get_spec(str(n.attrs["key"]))), "tab")
    _inline(graph, tab_nodes(graph, POOL_OP), lambda b, x, n: build_size_pool(b, x, pool_spec(str(n.attrs["key"]))),
            "pool")


def lower_standard(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline every SPP node as standard ONNX ops."""
    graph = _import_typed(model)
    _inline(graph, spp_nodes(graph), lambda b, x, n: build_pyramid(b, x, node_config(n)), "spp")
    _inline_tabulated(graph)
    graph.cleanup().toposort()
    proto = gs.export_onnx(graph)
    return _strip_domain(proto)


def _import_typed(model: onnx.ModelProto) -> gs.Graph:
    """gs graph with every SPP input typed (the lowering follows the input's dtype)."""
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    for node in spp_nodes(graph) + tab_nodes(graph) + tab_nodes(graph, POOL_OP):
        if node.inputs[0].dtype is None:
            raise ValueError(f"SPP node {node.name}: input type unknown after shape inference")
    return graph


def _strip_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(n.domain == SPP_DOMAIN for n in model.graph.node) and not model.functions:
        keep = [o for o in model.opset_import if o.domain != SPP_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(keep)
    return model


def _function_body(cfg: SppConfig, dtype: np.dtype, opset: int, overload: str | None) -> gs.Function:
    """The standard-op pyramid as a model-local function named like the plugin node."""
    x = gs.Variable("X", dtype=dtype)
    b = GraphBuilder("body")
    out = build_pyramid(b, Sym(b, x, dtype), cfg)
    y = out.tensor
    y.name = "Y"
    fn = gs.Function(
        SPP_OP, domain=SPP_DOMAIN, nodes=b.nodes, inputs=[x], outputs=[y],
        import_domains=[onnx.helper.make_opsetid("", opset)],
        attrs={name: None for name in CONFIG_ATTRS + PLUGIN_ATTRS},
    )
    fn.overload = overload
    return fn


def to_plugin_mode(model: onnx.ModelProto) -> onnx.ModelProto:
    """One ``spp_deploy.SpatialPyramidPool`` node per pyramid, for the TensorRT plugin.

    The node carries ``plugin_version``/``plugin_namespace`` (read by onnx-tensorrt's plugin
    fallback) and a model-local function with the standard-op body, so ONNX Runtime and any
    other runtime still execute the file. Distinct configurations get distinct overloads (which
    TensorRT's parser cannot tell apart: ``spp-deploy build`` strips the bodies).
    """
    graph = _import_typed(model)
    _inline_tabulated(graph)  # no plugin serves measured tables or single pools: standard ops
    graph.cleanup().toposort()
    opset = graph.opset
    bodies: dict[tuple, str | None] = {}
    for node in spp_nodes(graph):
        cfg = node_config(node)
        key = (cfg, np.dtype(node.inputs[0].dtype))
        if key not in bodies:
            bodies[key] = None if not bodies else f"cfg{len(bodies)}"
            graph.functions.append(_function_body(cfg, key[1], opset, bodies[key]))
        node.attrs["plugin_version"] = PLUGIN_VERSION
        node.attrs["plugin_namespace"] = PLUGIN_NAMESPACE
        node.overload = bodies[key]
    proto = gs.export_onnx(graph)
    overloads = {n.name: o for n in spp_nodes(graph) if (o := n.overload)}
    for fn_proto, fn in zip(proto.functions, graph.functions):
        if fn.overload:
            fn_proto.overload = fn.overload
    for n in proto.graph.node:
        if n.name in overloads:
            n.overload = overloads[n.name]
    return proto
