"""Input shapes for ``bench``: explicit BxCxHxW shapes, or a size sweep times batch sizes, and
which of them the model can take."""

from __future__ import annotations

from typing import Sequence

from ..errors import UserError, first_line
from ..loading import parse_input_shape, parse_shape

Shape = tuple[int, int, int, int]


def parse_shapes(text: str) -> list[Shape]:
    """'1x3x224x224,8x3x480x320' -> [(1, 3, 224, 224), (8, 3, 480, 320)]."""
    items = [s for s in (text or "").split(",") if s.strip()]
    if not items:
        raise UserError("--shapes is empty: expected BxCxHxW[,BxCxHxW...], e.g. 1x3x224x224")
    return [parse_input_shape(s.strip()) for s in items]


def parse_batches(text: str | None) -> list[int] | None:
    if not text:
        return None
    out = []
    for item in text.split(","):
        dims = parse_shape(item.strip())
        if len(dims) != 1:
            raise UserError(f"bad batch size {item!r} in --batch: expected positive integers, e.g. 1,8")
        out.append(dims[0])
    return list(dict.fromkeys(out))


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'224x224,480x320' -> [(224, 224), (480, 320)] as (height, width)."""
    out = []
    for item in [s for s in (text or "").split(",") if s.strip()]:
        dims = parse_shape(item.strip())
        if len(dims) != 2:
            raise UserError(f"bad size {item!r} in --sizes: expected HxW, e.g. 480x320")
        out.append(dims)
    if not out:
        raise UserError("--sizes is empty: expected HxW[,HxW...], e.g. 224x224,480x320")
    return out


def parse_size_range(text: str) -> list[tuple[int, int]]:
    """'START:STOP[:COUNT]' -> COUNT (default 5) square sizes evenly spaced from START to STOP."""
    parts = (text or "").split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (2, 3) or any(n < 1 for n in nums):
        raise UserError(f"bad --size-range {text!r}: expected START:STOP[:COUNT] with positive integers, e.g. 128:1024:8")
    start, stop, count = nums[0], nums[1], nums[2] if len(nums) == 3 else 5
    if stop < start:
        raise UserError(f"bad --size-range {text!r}: STOP ({stop}) is smaller than START ({start})")
    if count == 1 or start == stop:
        return [(start, start)]
    sizes = [round(start + (stop - start) * i / (count - 1)) for i in range(count)]
    return [(s, s) for s in dict.fromkeys(sizes)]


def build_shapes(shapes: Sequence[Shape] | None, sizes: Sequence[tuple[int, int]] | None,
                 batches: Sequence[int] | None, channels: int | None, default: Shape | None) -> list[Shape]:
    """Explicit shapes (with ``batches`` replacing their batch when given), or sizes x batches."""
    if shapes and sizes:
        raise UserError("give either --shapes or a size sweep (--sizes / --size-range), not both")
    if shapes:
        out = [(b, c, h, w) for (b0, c, h, w) in shapes for b in (batches or [b0])]
    elif sizes:
        if channels is None:
            raise UserError("cannot tell the input channel count: give --shapes BxCxHxW instead of a size sweep")
        out = [(b, channels, h, w) for b in (batches or [1]) for (h, w) in sizes]
    elif default is not None:
        out = [(b, *default[1:]) for b in (batches or [default[0]])]
    else:
        raise UserError("no input shapes: give --shapes BxCxHxW,... or --sizes HxW,... / --size-range START:STOP[:COUNT]")
    return list(dict.fromkeys(out))


def onnx_input_channels(path) -> tuple[int | None, str]:
    """(static channel count or None, input name) of an ONNX file's first input."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise UserError(f"cannot read ONNX file {path}: {first_line(e)}") from e
    inp = proto.graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    channels = dims[1].dim_value if len(dims) == 4 and dims[1].dim_value > 0 else None
    return channels, inp.name


def static_dims(path) -> list[int | None]:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.dim_value > 0 else None for d in dims]


def shape_error(shape: Shape, model=None, onnx_dims: Sequence[int | None] | None = None, cache: dict | None = None) -> str | None:
    """Why the model cannot take ``shape`` (None if it can): the ONNX file's fixed dims, then the
    PyTorch model's own failure at batch 1 (cached per C, H, W)."""
    if onnx_dims is not None:
        if len(onnx_dims) != len(shape):
            return f"the ONNX input has {len(onnx_dims)} dims, not 4"
        for axis, (want, got) in enumerate(zip(onnx_dims, shape)):
            if want is not None and want != got:
                name = ("batch", "channels", "height", "width")[axis]
                return f"the ONNX input has a fixed {name} of {want}, not {got}"
    if model is not None:
        from ..runtime.compare import source_error

        key = shape[1:]
        if cache is not None and key in cache:
            return cache[key]
        why = source_error(model, (1, *shape[1:]))
        if cache is not None:
            cache[key] = why
        return why
    return None
