"""Models whose output is not one tensor: a tuple, list, dict or namedtuple, nested at will.

The exporter, the runners and the comparisons must agree on the order and the names of the
outputs, so both come from here. The order is torch.onnx's own (``torch.utils._pytree``
flattening: sequences in index order, dicts in insertion order, depth first). Names:

- one tensor: ``output`` (as every file written so far);
- otherwise the leaf's path, its dict keys / namedtuple fields and sequence indices joined by
  ``.``, with ``output`` in front when the output itself is a tuple or list (not a namedtuple):
  ``(logits, feat)`` -> ``output.0``, ``output.1``; ``{"logits": a, "feat": b}`` and
  ``Pair(logits=a, feat=b)`` -> ``logits``, ``feat``; ``{"a": (x, y), "b": z}`` -> ``a.0``,
  ``a.1``, ``b``.

A leaf that is not a tensor (an int, a string, None) has no place in an ONNX graph and is
refused in one line naming its path (``output['meta']``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..util.errors import UserError, first_line

OUTPUT_NAME = "output"
INPUT_NAME = "input"  # an output may not take the input's name (ONNX values are named once)


def _part(key) -> str:
    from torch.utils import _pytree as pytree

    if isinstance(key, pytree.SequenceKey):
        return str(key.idx)
    if isinstance(key, pytree.MappingKey):
        return str(key.key)
    if isinstance(key, pytree.GetAttrKey):
        return key.name
    return str(key)  # pragma: no cover - the three key kinds above are all pytree has


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def flatten(output: Any) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for each leaf of ``output``, in torch.onnx's order; ``UserError`` naming the
    first leaf that is not a tensor, or when names collide."""
    from torch.utils import _pytree as pytree

    if isinstance(output, torch.Tensor):
        return [(OUTPUT_NAME, output)]
    # None is an empty node to pytree (torch.onnx would drop it silently): make it a leaf to refuse
    leaves, _ = pytree.tree_flatten_with_path(output, is_leaf=lambda v: v is None)
    if not leaves:
        raise UserError(f"the model returns {_kind(output)} without a tensor in it: nothing to export")
    named: dict[str, str] = {}
    out = []
    for path, leaf in leaves:
        where = OUTPUT_NAME + pytree.keystr(path)
        if not isinstance(leaf, torch.Tensor):
            raise UserError(f"the model's {where} is {_kind(leaf)}, not a tensor: an exported graph outputs "
                            "tensors only (return tensors, in a tuple, list or dict)")
        prefix = [OUTPUT_NAME] if isinstance(path[0], pytree.SequenceKey) else []  # a bare index is no name
        name = ".".join(prefix + [_part(k) for k in path])
        if name == INPUT_NAME or name in named or not name:
            clash = "the input's name" if name == INPUT_NAME else (
                f"the name of {named[name]}" if name in named else "empty")
            raise UserError(f"the model's {where} would be output {name!r}, which is {clash}: "
                            "rename the key so each output has its own name")
        named[name] = where
        out.append((name, leaf))
    return out


def output_names(output: Any) -> list[str]:
    """The ONNX output names for a model output (see the module docstring)."""
    return [name for name, _ in flatten(output)]


def to_numpy(output: Any) -> dict[str, np.ndarray]:
    """Output name -> array, in order: what a runner returns for the model's output."""
    return {name: t.detach().cpu().numpy() for name, t in flatten(output)}


def to_host(output: Any) -> Any:
    """``output`` with each tensor copied to the CPU, its structure kept (a one-tensor output too)."""
    from torch.utils import _pytree as pytree

    return pytree.tree_map(lambda v: v.cpu() if isinstance(v, torch.Tensor) else v, output)


def model_output_names(model: torch.nn.Module, example: torch.Tensor) -> list[str]:
    """Run ``model`` once at ``example`` as it is traced (no grad, ultralytics heads in export
    mode) and name its outputs; a non-tensor leaf is refused before any export work."""
    from .heads import export_mode

    try:
        with torch.no_grad(), export_mode(model):
            out = model(example)
    except Exception as e:  # the model's own failure, in one line
        raise UserError(f"the model cannot run at input shape {'x'.join(map(str, example.shape))}: "
                        f"{first_line(e)}") from e
    return output_names(out)
