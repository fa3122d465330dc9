"""Give an exported graph's outputs their names (``spp_deploy.sources.outputs``) after the export.

torch.onnx's own ``output_names`` renames an output without looking at the graph's other
values, so a dict key such as ``conv2d`` or ``fc.weight`` (a node's or a weight's name too)
gives two values one name and a broken graph. Here every other value holding a wanted name is
renamed first, all at once, so swaps and clashes cannot occur."""

from __future__ import annotations

from typing import Iterator, Sequence

import onnx

from ..util.errors import UserError


def _subgraphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                yield from attr.graphs


def _value_names(graph: onnx.GraphProto) -> set[str]:
    """Every value name in ``graph`` and its subgraphs."""
    names = {v.name for v in [*graph.input, *graph.output, *graph.initializer, *graph.value_info]}
    for node in graph.node:
        names.update(n for n in [*node.input, *node.output] if n)
    for sub in _subgraphs(graph):
        names |= _value_names(sub)
    return names


def _rename(graph: onnx.GraphProto, mapping: dict[str, str]) -> None:
    for v in [*graph.input, *graph.output, *graph.initializer, *graph.value_info]:
        v.name = mapping.get(v.name, v.name)
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for sub in _subgraphs(graph):  # outer-scope values are read by name inside If/Loop bodies
        _rename(sub, mapping)


def name_outputs(model: onnx.ModelProto, names: Sequence[str]) -> None:
    """Name ``model``'s graph outputs ``names`` (in place); other values that hold one of the
    names get a fresh one."""
    graph = model.graph
    current = [o.name for o in graph.output]
    if current == list(names):
        return
    if len(current) != len(names):
        raise UserError(f"torch.onnx made {len(current)} output(s) of the model's {len(names)} tensor(s)")
    values = _value_names(graph)
    taken = values | set(names)
    mapping = dict(zip(current, names))
    for name in sorted(values & (set(names) - set(current))):  # a weight's or a node's value: out of the way
        i = 1
        while f"{name}_{i}" in taken:
            i += 1
        mapping[name] = f"{name}_{i}"
        taken.add(mapping[name])
    _rename(graph, mapping)
