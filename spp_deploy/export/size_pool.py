"""Lowering of one size-dependent pooling call (``spp_deploy.sizepool.PoolSpec``) to standard
ONNX ops that compute its bins from the runtime H and W.

Per axis, the bin count and edges come from ``spp_deploy.bins`` (``adaptive`` or PyTorch's
pooling windows) run symbolically on a Range of bin numbers, so the count may itself follow the
size (``kernel_size=h // n``). A membership mask M[i, s] (bin i holds index s) then pools
separably: max as ReduceMax over Where(M, x, -inf) (exact, NaN restored from a per-bin count), avg as
MatMul with M over finite values divided by the bin sizes (within float rounding; NaN and
infinities restored from per-bin counts as PyTorch's sum gives them). No Pad or MaxPool node: ONNX
Runtime folds Pad(0) -> MaxPool wrongly. Where PyTorch would reject the arguments the output is NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype

_INT = np.int64


class _Axis(NamedTuple):
    mask: Sym  # [n, S] bool
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
    s = _range(b, S, [1, -1])
    mask = ops.logical_and(s >= ops._sym(ab.start), s < ops._sym(ab.end))
    return _Axis(mask, ops._sym(ab.span), ops._sym(ab.valid, np.bool_))


def _cast(b: GraphBuilder, v: Sym, dtype) -> Sym:
    return b.op("Cast", [v.tensor], dtype, to=gs_dtype(dtype))


def _pool_sum(b: GraphBuilder, x: Sym, rows: Sym, cols_t: Sym) -> Sym:
    """sum over each bin: rows [n, H] @ x [.., H, W] @ cols_t [W, m]."""
    y = b.op("MatMul", [rows.tensor, x.tensor], x.dtype)
    return b.op("MatMul", [y.tensor, cols_t.tensor], x.dtype)


def _where(b: GraphBuilder, cond: Sym, value: float, y: Sym) -> Sym:
    return b.op("Where", [cond.tensor, b.const(value, y.dtype).tensor, y.tensor], y.dtype)


def _positive(b: GraphBuilder, v: Sym) -> Sym:
    return b.op("Greater", [v.tensor, b.const(0, v.dtype).tensor], np.bool_)


def build_size_pool(b: GraphBuilder, x: Sym, spec) -> Sym:
    """Emit the pooling call for x [B, C, H, W] into ``b``; returns [B, C, n(H), m(W)]."""
    H = b.op("Shape", [x.tensor], _INT, start=2, end=3)  # [1]
    W = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    rows, cols = _axis(b, spec, spec.rows, H), _axis(b, spec, spec.cols, W)
    dt = x.dtype
    rf = _cast(b, rows.mask, dt)
    cft = b.op("Transpose", [_cast(b, cols.mask, dt).tensor], dt, perm=[1, 0])
    isnan = b.op("IsNaN", [x.tensor], np.bool_)
    if spec.mode == "max":
        ninf = b.const(-np.inf, dt).tensor
        r = b.op("Unsqueeze", [rows.mask.tensor, b.const([2], _INT).tensor], np.bool_)  # [n, H, 1]
        xe = b.op("Unsqueeze", [x.tensor, b.const([2], _INT).tensor], dt)  # [B, C, 1, H, W]
        y = b.op("ReduceMax", [b.op("Where", [r.tensor, xe.tensor, ninf], dt).tensor,
                               b.const([3], _INT).tensor], dt, keepdims=0)  # [B, C, n, W]
        ye = b.op("Unsqueeze", [y.tensor, b.const([3], _INT).tensor], dt)  # [B, C, n, 1, W]
        y = b.op("ReduceMax", [b.op("Where", [cols.mask.tensor, ye.tensor, ninf], dt).tensor,
                               b.const([4], _INT).tensor], dt, keepdims=0)  # [B, C, n, m]
        y = _where(b, _positive(b, _pool_sum(b, _cast(b, isnan, dt), rf, cft)), np.nan, y)
    else:
        pinf = b.op("IsInf", [x.tensor], np.bool_, detect_negative=0)
        minf = b.op("IsInf", [x.tensor], np.bool_, detect_positive=0)
        bad = b.op("Or", [isnan.tensor, b.op("Or", [pinf.tensor, minf.tensor], np.bool_).tensor], np.bool_)
        total = _pool_sum(b, _where(b, bad, 0.0, x), rf, cft)
        div = rows.span * b.op("Transpose", [cols.span.tensor], _INT, perm=[1, 0])
        y = b.op("Div", [total.tensor, _cast(b, div, dt).tensor], dt)
        ax0 = b.const([0], _INT).tensor
        flags = [b.op("Unsqueeze", [_cast(b, f, dt).tensor, ax0], dt) for f in (isnan, pinf, minf)]
        counts = _pool_sum(b, b.op("Concat", [f.tensor for f in flags], dt, axis=0), rf, cft)  # [3, B, C, n, m]
        nan_c, pinf_c, minf_c = (_positive(b, b.op("Gather", [counts.tensor, b.const(i, _INT).tensor], dt, axis=0))
                                 for i in range(3))
        y = _where(b, pinf_c, np.inf, y)
        y = _where(b, minf_c, -np.inf, y)
        y = _where(b, b.op("Or", [nan_c.tensor, b.op("And", [pinf_c.tensor, minf_c.tensor], np.bool_).tensor],
                           np.bool_), np.nan, y)
    valid = OnnxOps(b).logical_and(rows.valid, cols.valid)
    return b.op("Where", [valid.tensor, y.tensor, b.const(np.nan, dt).tensor], dt)
