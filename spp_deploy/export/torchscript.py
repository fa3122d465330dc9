"""TorchScript-exporter symbolics for our custom ops: the registry's entries that serve this route
emit the same ``spp_deploy`` nodes (names, attributes) as the dynamo route's translation table,
so the graph pass works on either route's model unchanged."""

from __future__ import annotations

import torch

from .registry import specs

_registered: set[tuple[int, str]] = set()


def register_symbolics(opset: int) -> None:
    """Register each registered op's symbolic for ``opset`` (once per op and opset)."""
    for spec in specs():
        if spec.symbolic is None or (opset, spec.torch_op) in _registered:
            continue
        spec.torch_overload()  # its module imported: the torch op exists
        torch.onnx.register_custom_op_symbolic(spec.torch_op, spec.symbolic, opset)
        _registered.add((opset, spec.torch_op))
