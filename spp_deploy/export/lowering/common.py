"""What the pyramid, tabulated and size-dependent lowerings share: each bin's indices padded to the
widest bin, column gathers, masked sums, and the If that restores PyTorch's NaN where ONNX
Runtime's ReduceMax skips it. Written once so the three lowerings pool bins the same way."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import onnx_graphsurgeon as gs

from ...ops import bins as _bins
from ..symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype

_INT = np.int64


def axes_const(b: GraphBuilder, axes: Sequence[int]) -> gs.Constant:
    return b.const(list(axes), _INT).tensor


class Index(NamedTuple):
    idx: Sym  # [n, K] indices along the axis
    t: Sym  # [K] offsets within a bin
    width: Sym  # [n, 1] bin widths


def bin_index(b: GraphBuilder, ab: _bins.AxisBins, size: Sym, clamp: bool) -> Index:
    """Each bin's indices padded to the widest bin K by repeating its last index.

    idx[i, t] = min(start_i + t, max(end_i - 1, start_i)). ``clamp`` is for rules whose bins can
    be empty or out of range at illegal sizes; adaptive bins are never empty (end - 1 >= start).
    """
    ops = OnnxOps(b)
    width = ab.end - ab.start
    k = b.op("ReduceMax", [width.tensor, axes_const(b, [0, 1])], _INT, keepdims=0)
    last = ab.end - 1
    if clamp:
        k = ops.maximum(k, 1)
        last = ops.maximum(last, ab.start)
    t = b.op("Range", [b.const(0, _INT).tensor, k.tensor, b.const(1, _INT).tensor], _INT)
    idx = ops.minimum(ab.start + t, last)
    if clamp:  # only rules with illegal sizes can produce indices outside [0, size)
        idx = ops.minimum(ops.maximum(idx, 0), size - 1)
    return Index(idx, t, width)


def reduce(b: GraphBuilder, op: str, x: Sym, axes: Sequence[int], keepdims: int = 0) -> Sym:
    return b.op(op, [x.tensor, axes_const(b, axes)], x.dtype, keepdims=keepdims)


class ColumnGather:
    """Gathers the column bins of [B, C, n, W] tensors into [B, C, n, n_cols, K] (GatherElements)."""

    def __init__(self, b: GraphBuilder, x: Sym, ic: Index, n: int, n_cols: int | None = None) -> None:
        n_cols = n if n_cols is None else n_cols  # rows of the input [B, C, n, W], column bins
        # int32 indices: the expanded index tensor is as large as the gathered one, halve its bytes
        i32 = b.op("Cast", [ic.idx.tensor], np.int32, to=gs_dtype(np.int32))
        flat = b.op("Reshape", [i32.tensor, b.const([1, 1, 1, -1], _INT).tensor], np.int32)
        bc = b.op("Shape", [x.tensor], _INT, start=0, end=2)
        shape = b.op("Concat", [bc.tensor, b.const([n, 1], _INT).tensor], _INT, axis=0)
        self.b, self.n = b, n_cols
        self.idx = b.op("Expand", [flat.tensor, shape.tensor], np.int32)  # [B, C, n, n * K]

    def __call__(self, y: Sym, b: GraphBuilder | None = None) -> Sym:
        b = b or self.b
        g = b.op("GatherElements", [y.tensor, self.idx.tensor], y.dtype, axis=3)
        return b.op("Reshape", [g.tensor, b.const([0, 0, 0, self.n, -1], _INT).tensor], y.dtype)


def masked_sum(b: GraphBuilder, g: Sym, dim: int, ix: Index) -> Sym:
    """Sum over the padded bin axis dim+1, counting each real element once."""
    mask = b.op("Less", [ix.t.tensor, ix.width.tensor], np.bool_)  # [n, K]
    if dim == 2:  # [n, K] -> [n, K, 1] to broadcast over W
        mask = b.op("Unsqueeze", [mask.tensor, axes_const(b, [2])], np.bool_)
    g = b.op("Where", [mask.tensor, g.tensor, b.const(0, g.dtype).tensor], g.dtype)
    return reduce(b, "ReduceSum", g, [dim + 1])


def if_x_has_nan(b: GraphBuilder, x: Sym, out: Sym, t: GraphBuilder, witness: Sym) -> Sym:
    """``out`` with NaN where ``witness`` (built in ``t``) is NaN, evaluated only when x holds a
    NaN at all (ReduceSum over x is NaN then; a false alarm from inf - inf only costs time)."""
    fixed = t.op("Where", [t.op("IsNaN", [witness.tensor], np.bool_).tensor, witness.tensor, out.tensor], x.dtype)
    total = b.op("ReduceSum", [x.tensor, axes_const(b, [0, 1, 2, 3])], x.dtype, keepdims=0)
    return if_then(b, b.op("IsNaN", [total.tensor], np.bool_), out, t, fixed)


def if_then(b: GraphBuilder, cond: Sym, out: Sym, t: GraphBuilder, fixed: Sym) -> Sym:
    """``fixed`` (built in ``t``, run only when ``cond`` holds) or else ``out``, as one If."""
    # Both branches must give the same shape expression (TensorRT 10.4-10.10 compare shapes, not
    # ranks): the then-branch is reshaped to exactly out's shape.
    fixed = t.op("Reshape", [fixed.tensor, b.op("Shape", [out.tensor], _INT).tensor], out.dtype)
    e = GraphBuilder(f"{b.prefix}/clean")
    same = e.op("Identity", [out.tensor], out.dtype)
    branch = lambda g, y, name: gs.Graph(nodes=g.nodes, outputs=[y.tensor], name=f"{b.prefix}/{name}")  # noqa: E731
    return b.op("If", [cond.tensor], out.dtype, then_branch=branch(t, fixed, "nan"), else_branch=branch(e, same, "clean"))
