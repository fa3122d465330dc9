"""Input shapes in trtexec syntax and the one optimisation profile an engine is built with; checked
against the ONNX file's inputs here so that bad shapes fail before TensorRT is imported."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import onnx

from ...util.errors import UserError


def parse_shape_spec(text: str, flag: str = "shape", min_dim: int = 1) -> dict[str, tuple[int, ...]]:
    """trtexec syntax: ``name:1x3x64x64[,other:2x8]`` -> {name: dims}. Names may contain ':'
    (the last ':' splits); dims are integers >= ``min_dim`` joined by 'x' (0 in a min shape: an
    empty tensor such as R = 0 windows, which TensorRT runs)."""
    if not text or not text.strip():
        raise UserError(f"{flag}: empty shape spec (expected name:1x3x64x64)")
    out: dict[str, tuple[int, ...]] = {}
    for item in text.split(","):
        item = item.strip()
        name, sep, dims = item.rpartition(":")
        name = name.strip().strip("'\"")
        if not sep or not name:
            raise UserError(f"{flag}: bad shape {item!r}: expected name:dims, e.g. input:1x3x224x224")
        if not re.fullmatch(r"\d+(x\d+)*", dims.strip()):
            raise UserError(f"{flag}: bad dims {dims!r} for {name!r}: expected integers >= {min_dim} joined by 'x'")
        shape = tuple(int(d) for d in dims.strip().split("x"))
        if any(d < min_dim for d in shape):
            raise UserError(f"{flag}: every dimension of {name!r} must be >= {min_dim}, got {dims}")
        if name in out:
            raise UserError(f"{flag}: input {name!r} given twice")
        out[name] = shape
    return out


def fmt_shape(shape: Sequence[int]) -> str:
    """(1, 3, 64, 64) -> '1x3x64x64' (trtexec syntax, as users type it)."""
    return "x".join(str(int(d)) for d in shape)


@dataclass
class Profile:
    """One optimization profile: input name -> (min, opt, max)."""

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

    def as_json(self) -> dict:
        return {n: [list(a), list(b), list(c)] for n, (a, b, c) in sorted(self.shapes.items())}


def onnx_inputs(model: onnx.ModelProto) -> dict[str, tuple]:
    """Graph inputs (not initializers) -> dims (int, or the dim_param string / None)."""
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in vi.type.tensor_type.shape.dim)
        out[vi.name] = dims
    return out


def make_profile(model: onnx.ModelProto, min_s: str | None, opt_s: str | None, max_s: str | None) -> Profile:
    """Profile from min/opt/max shape specs (trtexec syntax), checked against the ONNX inputs.

    Static inputs may be omitted (their shape is used); dynamic ones need all three (or opt only,
    giving a fixed profile). Errors name the input and the dimension, not the CLI's flags."""
    inputs = onnx_inputs(model)
    given = {k: (parse_shape_spec(v, f"{k} shape", 0 if k == "min" else 1) if v else {})
             for k, v in (("min", min_s), ("opt", opt_s), ("max", max_s))}
    for kind, spec in given.items():
        for name in spec:
            if name not in inputs:
                raise UserError(f"the {kind} shape names input {name!r}, but the model's inputs are: {', '.join(inputs)}")
    shapes = {}
    for name, dims in inputs.items():
        mn, op, mx = (given[k].get(name) for k in ("min", "opt", "max"))
        if mn is None and op is None and mx is None:
            if all(isinstance(d, int) and d > 0 for d in dims):
                s = tuple(dims)
                shapes[name] = (s, s, s)
                continue
            raise UserError(f"input {name!r} has dynamic dims {fmt_dims(dims)}: give min/opt/max shapes {name}:...")
        if op is not None and mn is None and mx is None:
            mn = mx = op
        if None in (mn, op, mx):
            op = op or mn or mx
            if mn is None or mx is None:
                raise UserError(f"input {name!r}: give both a min and a max shape (and an opt shape)")
        for label, s in (("min", mn), ("opt", op), ("max", mx)):
            if len(s) != len(dims):
                raise UserError(f"{label} shape {name}:{fmt_shape(s)} has rank {len(s)}, the model's input has rank {len(dims)} ({fmt_dims(dims)})")
            for i, (v, d) in enumerate(zip(s, dims)):
                if isinstance(d, int) and d > 0 and v != d:
                    raise UserError(f"{label} shape {name}:{fmt_shape(s)}: dim {i} is fixed to {d} in the model")
        for i in range(len(dims)):
            if not mn[i] <= op[i] <= mx[i]:
                raise UserError(f"input {name!r} dim {i}: need min <= opt <= max, got {mn[i]} / {op[i]} / {mx[i]}")
        shapes[name] = (tuple(mn), tuple(op), tuple(mx))
    return Profile(shapes)


def fmt_dims(dims: Sequence) -> str:
    """ONNX dims with '?' for a dynamic one: (None, 3, 'h', 64) -> '?x3xhx64'."""
    return "x".join(str(d) if d not in (None, "") else "?" for d in dims)


def shape_outside_profile(name: str, shape: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> str | None:
    """Why ``shape`` cannot run on a profile [lo, hi] (None if it can)."""
    if len(shape) != len(lo):
        return f"input {name!r} has rank {len(shape)}, the engine expects rank {len(lo)}"
    for i, (v, a, b) in enumerate(zip(shape, lo, hi)):
        if not a <= v <= b:
            return (f"input {name!r} shape {fmt_shape(shape)} is outside the engine's profile "
                    f"[{fmt_shape(lo)} .. {fmt_shape(hi)}] (dim {i}: {v} not in {a}..{b}); rebuild with wider min/max shapes")
    return None
