"""The one post-export graph pass: every custom node the registry names is inlined as its
standard-op lowering (``spp_impl="standard"``, and ops without a plugin in either mode) or kept
as one plugin node backed by a model-local function (``spp_impl="plugin"``).

The graph is imported into onnx-graphsurgeon once, rewritten for every op, and exported once.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .registry import OpSpec, specs
from .symbolic import GraphBuilder, Sym


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


def _import_typed(model: onnx.ModelProto, ops: tuple[OpSpec, ...]) -> gs.Graph:
    """gs graph with every custom node's inputs typed (the lowerings follow the input dtypes)."""
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    for spec in ops:
        for node in spec.nodes(graph):
            if any(t.dtype is None for t in node.inputs):
                raise ValueError(f"{spec.op} node {node.name}: input type unknown after shape inference")
    return graph


def _inline(graph: gs.Graph, spec: OpSpec) -> None:
    """Replace each of ``spec``'s nodes by its standard-op lowering, keeping its output."""
    for i, node in enumerate(spec.nodes(graph)):
        b = GraphBuilder(f"{spec.prefix}{i}")
        inputs = [Sym(b, t, np.dtype(t.dtype)) for t in node.inputs]
        splice(graph, node, b, spec.lower(b, inputs, spec.config(node.attrs)))


def _wrap(graph: gs.Graph, spec: OpSpec) -> None:
    """Keep ``spec``'s nodes as plugin nodes, each backed by a function body; distinct
    configurations get distinct overloads (TensorRT's parser cannot tell them apart:
    ``spp-deploy build`` strips the bodies)."""
    bodies: dict[tuple, str | None] = {}
    for node in spec.nodes(graph):
        config = spec.config(node.attrs)
        dtypes = tuple(np.dtype(t.dtype) for t in node.inputs)
        key = (config, dtypes)
        if key not in bodies:
            bodies[key] = None if not bodies else f"{spec.plugin.overload_prefix}{len(bodies)}"
            graph.functions.append(spec.function_body(config, dtypes, graph.opset, bodies[key]))
        spec.plugin.mark(node)
        node.overload = bodies[key]


def _keep_overloads(proto: onnx.ModelProto, graph: gs.Graph) -> None:
    """onnx-graphsurgeon drops overloads on export: put them back on functions and nodes."""
    for fn_proto, fn in zip(proto.functions, graph.functions):
        if getattr(fn, "overload", None):
            fn_proto.overload = fn.overload
    overloads = {n.name: o for n in graph.nodes if (o := getattr(n, "overload", None))}
    for n in proto.graph.node:
        if n.name in overloads:
            n.overload = overloads[n.name]


def _strip_domains(model: onnx.ModelProto, ops: tuple[OpSpec, ...]) -> onnx.ModelProto:
    """Drop the opset imports of custom domains no node uses any more."""
    used = {n.domain for n in model.graph.node} | {f.domain for f in model.functions}
    gone = {spec.domain for spec in ops} - used
    keep = [o for o in model.opset_import if o.domain not in gone]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model


def run_pass(model: onnx.ModelProto, spp_impl: str = "standard") -> onnx.ModelProto:
    """Lower (``standard``) or plugin-wrap (``plugin``) every registered custom node of ``model``."""
    ops = specs()
    graph = _import_typed(model, ops)
    wrap = [spec for spec in ops if spp_impl == "plugin" and spec.plugin is not None]
    for spec in ops:
        if spec not in wrap:
            _inline(graph, spec)
    graph.cleanup().toposort()
    for spec in wrap:
        _wrap(graph, spec)
    proto = gs.export_onnx(graph)
    _keep_overloads(proto, graph)
    return proto if wrap else _strip_domains(proto, ops)
