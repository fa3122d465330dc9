"""The shape grammars every command shares, parsed in one place (one grammar per concept):

- shape ``BxCxHxW`` (``1x3x224x224``); a list of them is comma separated;
- size ``[B]xHxW`` (``64x64``, ``2x131x517``): without B the caller's batch sizes apply;
- size range ``START:STOP[:COUNT]`` (``32:1024:6``): COUNT sizes from START to STOP;
- batch list ``1,8``.

Messages name the value, never a command-line flag: the CLI says which flag it came from.
Nothing heavy is imported here.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple, Sequence

from .errors import UserError
from .limits import physical_memory

Size = tuple  # (batch or None, height, width)


class SizeRange(NamedTuple):
    start: int
    stop: int
    count: int | None  # None: the command's default


def _items(text: str | None, what: str, example: str) -> list[str]:
    items = [s.strip() for s in (text or "").split(",")]
    if not any(items):
        raise UserError(f"no {what} given: expected e.g. {example}")
    if not all(items):
        raise UserError(f"empty item in {what} {text!r}: expected e.g. {example}")
    return items


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224); one-line error on anything else."""
    if not re.fullmatch(r"\s*\d+(\s*x\s*\d+)*\s*", text or ""):
        raise UserError(f"bad shape {text!r}: expected positive integers joined by 'x', e.g. 1x3x224x224")
    dims = tuple(int(v) for v in text.replace(" ", "").split("x"))
    if any(d <= 0 for d in dims):
        raise UserError(f"bad shape {text!r}: every dimension must be >= 1")
    check_fits_memory(dims, text)
    return dims


def check_fits_memory(dims: Sequence[int], text: str | None = None) -> None:
    """Refuse a shape whose float32 tensor alone is larger than this machine's memory: trying
    would only end in an allocator failure (or the OOM killer) after the model has loaded."""
    elements = math.prod(dims)
    total = physical_memory()
    if total and elements * 4 > total:
        raise UserError(f"shape {text or 'x'.join(map(str, dims))} is too large: {elements:.3g} elements "
                        f"({elements * 4 / 2**30:.3g} GiB as float32) exceed this machine's memory "
                        f"({total / 2**30:.3g} GiB)")


def parse_input_shape(text: str) -> tuple[int, int, int, int]:
    """One ``BxCxHxW`` shape."""
    if not (text or "").strip():
        raise UserError("empty shape: expected BxCxHxW, e.g. 1x3x224x224")
    dims = parse_shape(text)
    if len(dims) != 4:
        raise UserError(f"bad input shape {text!r}: expected 4 dims BxCxHxW, got {len(dims)}")
    return dims  # type: ignore[return-value]


class Shapes(list):
    """Parsed shapes, and the input they were named for (trtexec's ``input:1x3x224x224``) or None."""

    input_name: str | None = None


def parse_shapes(text: str) -> Shapes:
    """'1x3x224x224,8x3x480x320' -> [(1, 3, 224, 224), (8, 3, 480, 320)]; each item may name the
    input as trtexec does ('input:1x3x224x224'), one name for all (the model has one input)."""
    names, shapes = [], []
    for item in _items(text, "shapes", "1x3x224x224,8x3x480x320"):
        name, sep, dims = item.rpartition(":")
        if sep and not name.strip():
            raise UserError(f"bad shape {item!r}: empty input name before ':'")
        names.append(name.strip() if sep else None)
        shapes.append(parse_input_shape(dims if sep else item))
    named = {n for n in names if n is not None}
    if len(named) > 1:
        raise UserError(f"shapes for several inputs ({', '.join(sorted(named))}): the model takes one input")
    out = Shapes(dict.fromkeys(shapes))
    out.input_name = named.pop() if named else None
    return out


def parse_sizes(text: str) -> list[Size]:
    """'64x64,2x131x517' -> [(None, 64, 64), (2, 131, 517)]: (batch or None, height, width)."""
    out = []
    for item in _items(text, "sizes", "64x64,2x131x517"):
        dims = parse_shape(item)
        if len(dims) not in (2, 3):
            raise UserError(f"bad size {item!r}: expected HxW or BxHxW, e.g. 480x320 or 2x480x320")
        out.append((None, *dims) if len(dims) == 2 else dims)
    return list(dict.fromkeys(out))


def parse_size_range(text: str) -> SizeRange:
    """'START:STOP[:COUNT]' with 1 <= START <= STOP and COUNT >= 1."""
    parts = (text or "").split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (2, 3) or any(n < 1 for n in nums):
        raise UserError(f"bad size range {text!r}: expected START:STOP[:COUNT] with positive integers, e.g. 32:1024:6")
    start, stop = nums[:2]
    if stop < start:
        raise UserError(f"bad size range {text!r}: STOP ({stop}) is smaller than START ({start})")
    return SizeRange(start, stop, nums[2] if len(nums) == 3 else None)


def parse_batches(text: str) -> list[int]:
    """'1,8' -> [1, 8] (positive, repeats dropped)."""
    out = []
    for item in _items(text, "batch sizes", "1,8"):
        if not re.fullmatch(r"\d+", item) or int(item) < 1:
            raise UserError(f"bad batch size {item!r}: expected positive integers, e.g. 1,8 (batch sizes must be >= 1)")
        out.append(int(item))
    return list(dict.fromkeys(out))
