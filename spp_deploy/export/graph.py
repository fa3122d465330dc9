"""Post-export graph pass: replace each ``spp_deploy.SpatialPyramidPool`` node emitted by the
torch exporter with its standard-op lowering (``spp_impl="standard"``) or keep it as one
plugin node backed by a model-local function (``spp_impl="plugin"``)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .lowering import SppConfig, build_pyramid
from .symbolic import GraphBuilder, Sym

SPP_DOMAIN = "spp_deploy"
SPP_OP = "SpatialPyramidPool"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""


def node_config(node: gs.Node) -> SppConfig:
    a = node.attrs
    return SppConfig(tuple(int(v) for v in a["levels"]), str(a["mode"]), str(a["bins"]), str(a["order"]))


def spp_nodes(graph: gs.Graph) -> list[gs.Node]:
    return [n for n in graph.nodes if n.domain == SPP_DOMAIN and n.op == SPP_OP]


def lower_standard(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline every SPP node as standard ONNX ops."""
    graph = _import_typed(model)
    for i, node in enumerate(spp_nodes(graph)):
        x, y = node.inputs[0], node.outputs[0]
        b = GraphBuilder(f"spp{i}")
        out = build_pyramid(b, Sym(b, x, np.dtype(x.dtype)), node_config(node))
        node.outputs.clear()
        # Re-point the pyramid's last node at the original output tensor, so consumers keep it.
        last = b.nodes[-1]
        assert last.outputs[0] is out.tensor
        last.outputs.clear()
        last.outputs.append(y)
        graph.nodes.extend(b.nodes)
    graph.cleanup().toposort()
    proto = gs.export_onnx(graph)
    return _strip_domain(proto)


def _import_typed(model: onnx.ModelProto) -> gs.Graph:
    """gs graph with every SPP input typed (the lowering follows the input's dtype)."""
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    for node in spp_nodes(graph):
        if node.inputs[0].dtype is None:
            raise ValueError(f"SPP node {node.name}: input type unknown after shape inference")
    return graph


def _strip_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(n.domain == SPP_DOMAIN for n in model.graph.node) and not model.functions:
        keep = [o for o in model.opset_import if o.domain != SPP_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(keep)
    return model
