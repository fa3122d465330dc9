"""The Python API's argument forms made canonical, so that what the command line accepts
(``--sizes 64x64``, ``--dynamic batch``, ``--opset 20``) works from Python too, and anything else
is one ``UserError`` naming the argument instead of a TypeError deep inside. Light: no torch."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from .constants import DYNAMIC_AXES, MAX_OPSET, MIN_OPSET
from .errors import UserError


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def parse_dynamic(value: str | Sequence[str]) -> list[str]:
    """'batch,height,width' (any of them), 'none', or a sequence of axis names -> list of axes."""
    if isinstance(value, str):
        if value.strip() == "none":
            return []
        axes = [d.strip() for d in value.split(",")]
        if not all(axes):
            raise UserError(f"bad dynamic axes {value!r}: expected a comma list of {', '.join(DYNAMIC_AXES)}, or none",
                            option="dynamic")
    else:
        try:
            axes = list(value)
        except TypeError:
            raise UserError(f"expected axis names ({', '.join(DYNAMIC_AXES)}), got {value!r}",
                            option="dynamic") from None
    unknown = [a for a in axes if a not in DYNAMIC_AXES]
    if unknown:
        raise UserError(f"unknown dynamic axis {unknown[0]!r} (known: {', '.join(DYNAMIC_AXES)}; or none)",
                        option="dynamic")
    return axes


def opset_number(value: Any) -> int:
    """An int, or a string of digits ('20'), in MIN_OPSET..MAX_OPSET."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not _whole(value) or not MIN_OPSET <= value <= MAX_OPSET:
        raise UserError(f"opset {value!r} is not supported (use {MIN_OPSET}..{MAX_OPSET})", option="opset")
    return int(value)


def parity_sizes(value: Any) -> list[tuple[int, int, int]] | None:
    """Parity sizes as (batch, height, width): each (H, W), (B, H, W) or (None, H, W) (batch 1),
    or the command line's '64x64,2x131x517'."""
    if value is None:
        return None
    if isinstance(value, str):
        from .shapes import parse_sizes

        value = parse_sizes(value)
    out = []
    for item in value:
        dims = tuple(item) if isinstance(item, (tuple, list)) else (item,)
        if len(dims) == 3 and dims[0] is None:
            dims = (1, *dims[1:])
        dims = (1, *dims) if len(dims) == 2 else dims
        if len(dims) != 3 or not all(_whole(d) and d >= 1 for d in dims):
            raise UserError(f"bad size {item!r}: expected (H, W) or (B, H, W) with whole numbers >= 1",
                            option="sizes")
        out.append(tuple(int(d) for d in dims))
    return out


def tabulate_limit(value: Any) -> int | None:
    """None (the default) or a whole number >= 0."""
    if value is not None and (not _whole(value) or value < 0):
        raise UserError(f"expected a whole number >= 0 (0: off), got {value!r}", option="tabulate_limit")
    return value


def module_or_error(model: Any, option: str = "model"):
    """``model`` when it is a ``torch.nn.Module``; a plain function is refused with the fix."""
    import torch

    if not isinstance(model, torch.nn.Module):
        what = getattr(model, "__name__", type(model).__name__)
        raise UserError(f"expected a torch.nn.Module, got {type(model).__name__} {what!r} (a function: call it "
                        "from the forward of an nn.Module)", option=option)
    return model


def example_tensor(example_inputs: Any):
    """The one [B, C, H, W] floating-point example tensor (alone, or first in a tuple/list)."""
    import torch

    example = example_inputs[0] if isinstance(example_inputs, (tuple, list)) and example_inputs else example_inputs
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        raise UserError("example input must be one [B, C, H, W] tensor")
    if not example.is_floating_point():
        raise UserError(f"example input must be a floating-point tensor (got {example.dtype}): the model is "
                        "exported for float inputs", option="example_inputs")
    return example
