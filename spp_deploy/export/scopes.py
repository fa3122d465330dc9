"""Keep the exporter's module scopes on the nodes after the graph passes.

``torch.onnx.export(dynamo=True)`` records on each node the PyTorch module it came from
(``pkg.torch.onnx.name_scopes``, ``pkg.torch.onnx.class_hierarchy``); the SPP passes rebuild the
graph through onnx-graphsurgeon, which drops node metadata. ``validate --localize`` and export's
parity-failure message read these scopes to say which module's output first differs, so they
are copied back by output name (the passes keep every other node's outputs). Stack traces and
FX dumps are not kept: they hold the user's file paths and grow the file.
"""

from __future__ import annotations

import onnx

KEPT = ("pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy")


def node_scopes(model: onnx.ModelProto) -> dict[str, list[tuple[str, str]]]:
    """{first output name: [(key, value), ...]} of the kept metadata of every node that has it."""
    out = {}
    for node in model.graph.node:
        props = [(p.key, p.value) for p in node.metadata_props if p.key in KEPT]
        if props and node.output:
            out[node.output[0]] = props
    return out


def restore_scopes(model: onnx.ModelProto, scopes: dict[str, list[tuple[str, str]]]) -> None:
    """Put ``scopes`` back on the nodes of ``model`` that produce the same first output."""
    for node in model.graph.node:
        props = scopes.get(node.output[0]) if node.output else None
        if props and not any(p.key in KEPT for p in node.metadata_props):
            for key, value in props:
                node.metadata_props.add(key=key, value=value)
