"""Input shapes for ``bench``: explicit BxCxHxW shapes, or a size sweep times batch sizes, and
which of them the model can take."""

from __future__ import annotations

from typing import Sequence

from ..util.errors import UserError, first_line
from ..util.shapes import SizeRange
from ..util.shapes import parse_size_range as _parse_size_range

Shape = tuple[int, int, int, int]
DEFAULT_RANGE_COUNT = 5  # sizes in a size range without COUNT


def parse_size_range(text: str) -> list[tuple[int, int]]:
    """'START:STOP[:COUNT]' -> COUNT (default 5) square sizes evenly spaced from START to STOP."""
    return size_range_squares(_parse_size_range(text))


def size_range_squares(r: SizeRange) -> list[tuple[int, int]]:
    start, stop, count = r.start, r.stop, r.count or DEFAULT_RANGE_COUNT
    if count == 1 or start == stop:
        return [(start, start)]
    sizes = [round(start + (stop - start) * i / (count - 1)) for i in range(count)]
    return [(s, s) for s in dict.fromkeys(sizes)]


def build_shapes(shapes: Sequence[Shape] | None, sizes: Sequence[tuple] | None,
                 batches: Sequence[int] | None, channels: int | None, default: Shape | None) -> list[Shape]:
    """Explicit shapes (with ``batches`` replacing their batch when given), or sizes x batches:
    sizes are (H, W) or (B or None, H, W); an explicit B is kept, the others take each batch size."""
    if shapes and sizes:
        raise UserError("give either shapes or a size sweep, not both")
    if shapes:
        out = [(b, c, h, w) for (b0, c, h, w) in shapes for b in (batches or [b0])]
    elif sizes:
        if channels is None:
            raise UserError("cannot tell the input channel count for a size sweep: give full BxCxHxW shapes")
        full = [s if len(s) == 3 else (None, *s) for s in sizes]
        out = [(bb, channels, h, w) for bb in (batches or [1]) for (b, h, w) in full if b is None]
        out += [(b, channels, h, w) for (b, h, w) in full if b is not None]
    elif default is not None:
        out = [(b, *default[1:]) for b in (batches or [default[0]])]
    else:
        raise UserError("no input shapes: give shapes (BxCxHxW) or a size sweep")
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
