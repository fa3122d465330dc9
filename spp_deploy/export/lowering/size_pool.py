"""Lowering of one size-dependent pooling call (``spp_deploy.sizepool.PoolSpec``) to standard
ONNX ops that compute its bins from the runtime H and W.

Per axis, the bin count and edges come from ``spp_deploy.bins`` (``adaptive`` or PyTorch's
pooling windows) run symbolically on a Range of bin numbers, so the count may itself follow the
size (``kernel_size=h // n``). A membership mask M[i, s] (bin i holds index s) then pools
separably. Max: where the bin counts never change, the canonical op's gathers (``lowering``:
each bin padded to the widest by repeating its last index), else ReduceMax over Where(M, x, -inf);
exact either way. Avg: two MatMuls with M divided by the bin sizes (within float rounding). When x
holds NaN (max) or NaN/infinities (avg), an If branch restores them per bin from per-bin counts as
PyTorch gives them. No Pad or MaxPool node: ONNX Runtime folds Pad(0) -> MaxPool wrongly. Where
PyTorch would reject the arguments the output is NaN.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ...ops import bins as _bins
from ...contract import POOL_OP
from ..registry import keyed, register
from ..symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype
from .common import ColumnGather, bin_index, if_then, if_x_has_nan, reduce

_INT = np.int64


class _Axis(NamedTuple):
    bins: _bins.AxisBins  # start, end: [n, 1] int64
    n: Any  # bin count: an int, or a [1] tensor when it follows the size
    mask: Sym  # [n, S] bool: bin i holds index s
    span: Sym  # [n, 1] int64: avg divisor factor
    valid: Sym  # bool


def _scalar(b: GraphBuilder, v: Sym) -> Sym:
    return b.op("Reshape", [v.tensor, b.const(np.zeros(0), _INT).tensor], _INT)


def _range(b: GraphBuilder, n: Sym, shape: list[int]) -> Sym:
    r = b.op("Range", [b.const(0, _INT).tensor, _scalar(b, n).tensor, b.const(1, _INT).tensor], _INT)
    return b.op("Reshape", [r.tensor, b.const(shape, _INT).tensor], _INT)


def _axis(b: GraphBuilder, spec, axis, S: Sym) -> _Axis:
    ops = OnnxOps(b)
    n = spec.out_size(S, axis, ops)
    i = b.const(np.arange(n).reshape(-1, 1), _INT) if isinstance(n, int) else _range(b, n, [-1, 1])
    ab = spec.axis_bins(S, axis, i, ops)
    ab = ab._replace(start=ops._sym(ab.start), end=ops._sym(ab.end))
    s = _range(b, S, [1, -1])
    mask = ops.logical_and(s >= ab.start, s < ab.end)
    return _Axis(ab, n, mask, ops._sym(ab.span), ops._sym(ab.valid, np.bool_))


def _cast(b: GraphBuilder, v: Sym, dtype) -> Sym:
    return b.op("Cast", [v.tensor], dtype, to=gs_dtype(dtype))


def _pool_sum(b: GraphBuilder, x: Sym, rows: Sym, cols_t: Sym) -> Sym:
    """Sum over each bin: rows [n, H] @ (x [.., H, W] @ cols_t [W, m]); the columns first, as one
    large GEMM, then a small batched one."""
    y = b.op("MatMul", [x.tensor, cols_t.tensor], x.dtype)
    return b.op("MatMul", [rows.tensor, y.tensor], x.dtype)


def _where(b: GraphBuilder, cond: Sym, value: float, y: Sym) -> Sym:
    return b.op("Where", [cond.tensor, b.const(value, y.dtype).tensor, y.tensor], y.dtype)


def _positive(b: GraphBuilder, v: Sym) -> Sym:
    return b.op("Greater", [v.tensor, b.const(0, v.dtype).tensor], np.bool_)


def _unsqueeze(b: GraphBuilder, v: Sym, axis: int) -> Sym:
    return b.op("Unsqueeze", [v.tensor, b.const([axis], _INT).tensor], v.dtype)


def _max(b: GraphBuilder, x: Sym, rows: _Axis, cols: _Axis, H: Sym, W: Sym) -> Sym:
    """Exact per-bin max: the canonical op's gathers where the bin counts are fixed, else
    ReduceMax over Where(mask, x, -inf), rows then columns."""
    if isinstance(rows.n, int) and isinstance(cols.n, int):
        ir, ic = bin_index(b, rows.bins, H, clamp=True), bin_index(b, cols.bins, W, clamp=True)
        g = b.op("Gather", [x.tensor, ir.idx.tensor], x.dtype, axis=2)  # [B, C, n, K, W]
        return reduce(b, "ReduceMax", ColumnGather(b, x, ic, rows.n, cols.n)(reduce(b, "ReduceMax", g, [3])), [4])
    ninf = b.const(-np.inf, x.dtype).tensor
    r = _unsqueeze(b, rows.mask, 2)  # [n, H, 1] against [B, C, 1, H, W]
    y = reduce(b, "ReduceMax", b.op("Where", [r.tensor, _unsqueeze(b, x, 2).tensor, ninf], x.dtype), [3])
    # [m, W] against [B, C, n, 1, W]
    return reduce(b, "ReduceMax", b.op("Where", [cols.mask.tensor, _unsqueeze(b, y, 3).tensor, ninf], x.dtype), [4])


def _avg_nonfinite(t: GraphBuilder, x: Sym, rf: Sym, cft: Sym, div: Sym) -> Sym:
    """The average as PyTorch's sum gives it when x holds NaN or infinities: finite values
    averaged, then +inf, -inf or NaN (both infinities, or a NaN) per bin from per-bin counts."""
    dt = x.dtype
    isnan = t.op("IsNaN", [x.tensor], np.bool_)
    pinf = t.op("IsInf", [x.tensor], np.bool_, detect_negative=0)
    minf = t.op("IsInf", [x.tensor], np.bool_, detect_positive=0)
    bad = t.op("Or", [isnan.tensor, t.op("Or", [pinf.tensor, minf.tensor], np.bool_).tensor], np.bool_)
    y = t.op("Div", [_pool_sum(t, _where(t, bad, 0.0, x), rf, cft).tensor, div.tensor], dt)
    flags = [_unsqueeze(t, _cast(t, f, dt), 0) for f in (isnan, pinf, minf)]
    counts = _pool_sum(t, t.op("Concat", [f.tensor for f in flags], dt, axis=0), rf, cft)  # [3, B, C, n, m]
    nan_c, pinf_c, minf_c = (_positive(t, t.op("Gather", [counts.tensor, t.const(i, _INT).tensor], dt, axis=0))
                             for i in range(3))
    y = _where(t, minf_c, -np.inf, _where(t, pinf_c, np.inf, y))
    both = t.op("And", [pinf_c.tensor, minf_c.tensor], np.bool_)
    return _where(t, t.op("Or", [nan_c.tensor, both.tensor], np.bool_), np.nan, y)


def build_size_pool(b: GraphBuilder, x: Sym, spec) -> Sym:
    """Emit the pooling call for x [B, C, H, W] into ``b``; returns [B, C, n(H), m(W)]."""
    H = b.op("Shape", [x.tensor], _INT, start=2, end=3)  # [1]
    W = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    rows, cols = _axis(b, spec, spec.rows, H), _axis(b, spec, spec.cols, W)
    dt = x.dtype
    rf = _cast(b, rows.mask, dt)
    cft = b.op("Transpose", [_cast(b, cols.mask, dt).tensor], dt, perm=[1, 0])
    t = GraphBuilder(f"{b.prefix}/nonfinite")  # runs only when x holds NaN (max) or NaN/inf (avg)
    if spec.mode == "max":
        y = _max(b, x, rows, cols, H, W)
        witness = _where(t, _positive(t, _pool_sum(t, _cast(t, t.op("IsNaN", [x.tensor], np.bool_), dt), rf, cft)),
                         np.nan, t.op("Identity", [y.tensor], dt))
        y = if_x_has_nan(b, x, y, t, witness)
    else:
        div = _cast(b, rows.span * b.op("Transpose", [cols.span.tensor], _INT, perm=[1, 0]), dt)
        y = b.op("Div", [_pool_sum(b, x, rf, cft).tensor, div.tensor], dt)
        zero_times = b.op("Mul", [x.tensor, b.const(0, dt).tensor], dt)  # NaN exactly where x is NaN or inf
        total = b.op("ReduceSum", [zero_times.tensor, b.const([0, 1, 2, 3], _INT).tensor], dt, keepdims=0)
        y = if_then(b, b.op("IsNaN", [total.tensor], np.bool_), y, t, _avg_nonfinite(t, x, rf, cft, div))
    valid = OnnxOps(b).logical_and(rows.valid, cols.valid)
    return b.op("Where", [valid.tensor, y.tensor, b.const(np.nan, dt).tensor], dt)


# ---- the registry entry: a key into this process's pool specs; lowered in both modes (no plugin) ----

SPEC = register(keyed(POOL_OP, "spp_deploy::size_dependent_pool", "spp_deploy.sizepool", build_size_pool, "pool"))
