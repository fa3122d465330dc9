"""Tampering with an exported file where a module's nodes are (the localization tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import onnx
from onnx import numpy_helper


def scoped_nodes(model: onnx.ModelProto, module: str) -> list:
    """The nodes whose recorded PyTorch scopes name ``module``."""
    found = []
    for n in model.graph.node:
        for p in n.metadata_props:
            if p.key == "pkg.torch.onnx.name_scopes" and module in ast.literal_eval(p.value):
                found.append(n)
    return found


def tamper_weight(src: Path, dst: Path, module: str) -> None:
    """Add 0.5 to one element of the weight of ``module``'s node."""
    m = onnx.load(src)
    (node,) = scoped_nodes(m, module)
    init = next(i for i in m.graph.initializer if i.name == node.input[1])
    w = numpy_helper.to_array(init).copy()
    w.flat[w.size // 2] += 0.5
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, dst)
