"""Lowering of a tabulated pyramid (``spp_deploy.tabulated``): bin edges read from measured
per-size tables indexed by the runtime H and W, pooled as the canonical pyramid pools."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ...ops import bins as _bins
from ...contract import SPP_DOMAIN, TAB_OP
from ..registry import keyed, register
from ..symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype
from .common import ColumnGather, Index, bin_index, if_x_has_nan, masked_sum, reduce

_INT = np.int64


def _table_row(b: GraphBuilder, table: np.ndarray, i: Sym, dtype: Any, shape: Sequence[int]) -> Sym:
    """Row ``i`` ([1] int64) of a constant [sizes, m] table, reshaped to ``shape`` and cast."""
    store = np.int32 if table.dtype.kind == "i" else table.dtype  # halve the bytes of index tables
    row = b.op("Gather", [b.const(table.astype(store), store).tensor, i.tensor], store, axis=0)
    if np.dtype(store) != np.dtype(dtype):
        row = b.op("Cast", [row.tensor], dtype, to=gs_dtype(dtype))
    return b.op("Reshape", [row.tensor, b.const(list(shape), _INT).tensor], dtype)


class _TabGroup(NamedTuple):
    ir: Index  # row bins of the group
    ic: Index  # column bins of the group
    cols: "ColumnGather"
    n_rows: int
    n_cols: int


def _tab_groups(b: GraphBuilder, x: Sym, spec, ih: Sym, iw: Sym, H: Sym, W: Sym):
    """Index matrices of every bin group (a pyramid level) and each bin's position in the
    concatenated [n_rows * n_cols] grids."""
    groups, pos, offset = [], np.zeros(spec.bins_per_channel, np.int64), 0
    for row_ids, col_ids, ks in spec.groups():
        def axis(t, ids, i, size):
            start = _table_row(b, t.start[:, ids], i, _INT, [-1, 1])
            end = _table_row(b, t.end[:, ids], i, _INT, [-1, 1])
            return bin_index(b, _bins.AxisBins(start, end, None, None), size, clamp=True)

        ir, ic = axis(spec.rows, row_ids, ih, H), axis(spec.cols, col_ids, iw, W)
        nr, nc = len(row_ids), len(col_ids)
        groups.append(_TabGroup(ir, ic, ColumnGather(b, x, ic, nr, nc), nr, nc))
        rk = {r: j for j, r in enumerate(row_ids)}
        ck = {c: j for j, c in enumerate(col_ids)}
        for k in ks:
            r = next(r for r in row_ids if _same_bin(spec.rows, r, k))
            c = next(c for c in col_ids if _same_bin(spec.cols, c, k))
            pos[k] = offset + rk[r] * nc + ck[c]
        offset += nr * nc
    return groups, pos, offset


def _same_bin(t, a: int, k: int) -> bool:
    return all(np.array_equal(arr[:, a], arr[:, k]) for arr in (t.start, t.end, t.pad))


def _tab_pool(b: GraphBuilder, x: Sym, groups, pos: np.ndarray, total: int, reduce_rows: str, reduce_cols: str,
              mode: str) -> Sym:
    """[B, C, L]: every group pooled as a grid, concatenated, then each bin picked."""
    flats = []
    for g in groups:
        rows = b.op("Gather", [x.tensor, g.ir.idx.tensor], x.dtype, axis=2)  # [B, C, nr, Kr, W]
        if mode == "max":
            y = reduce(b, reduce_cols, g.cols(reduce(b, reduce_rows, rows, [3]), b), [4])
        else:
            y = masked_sum(b, g.cols(masked_sum(b, rows, 2, g.ir), b), 3, g.ic)
        flats.append(b.op("Reshape", [y.tensor, b.const([0, 0, -1], _INT).tensor], x.dtype))
    y = flats[0] if len(flats) == 1 else b.op("Concat", [f.tensor for f in flats], x.dtype, axis=2)
    if not np.array_equal(pos, np.arange(total)):
        y = b.op("Gather", [y.tensor, b.const(pos, _INT).tensor], x.dtype, axis=2)
    return y


def build_tabulated(b: GraphBuilder, x: Sym, spec) -> Sym:
    """Emit a tabulated pyramid (``spp_deploy.tabulated.TableSpec``) for x [B, C, H, W].

    Sizes index the tables directly (clamped to the sentinel row ``limit + 1``, which is
    illegal), so a size past the probed range gives NaN rather than a guess.
    """
    H = b.op("Shape", [x.tensor], _INT, start=2, end=3)  # [1]
    W = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    ops = OnnxOps(b)
    ih, iw = ops.minimum(H, spec.rows.limit + 1), ops.minimum(W, spec.cols.limit + 1)
    groups, pos, total = _tab_groups(b, x, spec, ih, iw, H, W)
    y = _tab_pool(b, x, groups, pos, total, "ReduceMax", "ReduceMax", spec.mode)  # [B, C, L]
    L = spec.bins_per_channel
    per_bin = lambda t, arr, i, dt: _table_row(b, arr, i, dt, [L])  # noqa: E731
    if spec.mode == "max":
        pad = b.op("Or", [per_bin(spec.rows, spec.rows.pad, ih, np.bool_).tensor,
                          per_bin(spec.cols, spec.cols.pad, iw, np.bool_).tensor], np.bool_)
        zero = b.const(0, x.dtype)
        y = b.op("Where", [pad.tensor, b.op("Max", [y.tensor, zero.tensor], x.dtype).tensor, y.tensor], x.dtype)
        y = _tab_nan_fix(b, x, y, groups, pos, total)
    else:
        div = b.op("Mul", [per_bin(spec.rows, spec.rows.div, ih, np.float64).tensor,
                           per_bin(spec.cols, spec.cols.div, iw, np.float64).tensor], np.float64)
        div = b.op("Cast", [div.tensor], x.dtype, to=gs_dtype(x.dtype))
        y = y / div
    empty = b.op("Or", [per_bin(spec.rows, spec.rows.end <= spec.rows.start, ih, np.bool_).tensor,
                        per_bin(spec.cols, spec.cols.end <= spec.cols.start, iw, np.bool_).tensor], np.bool_)
    y = b.op("Where", [empty.tensor, b.const(0, x.dtype).tensor, y.tensor], x.dtype)
    legal = b.op("And", [_table_row(b, spec.rows.legal[:, None], ih, np.bool_, [1]).tensor,
                         _table_row(b, spec.cols.legal[:, None], iw, np.bool_, [1]).tensor], np.bool_)
    y = b.op("Where", [legal.tensor, y.tensor, b.const(np.nan, x.dtype).tensor], x.dtype)
    if spec.layout == "3d_lc":
        return b.op("Transpose", [y.tensor], x.dtype, perm=[0, 2, 1])
    if spec.layout == "3d_cl":
        return b.op("Identity", [y.tensor], x.dtype)
    y = b.op("Reshape", [y.tensor, b.const([0, -1], _INT).tensor], x.dtype)
    if spec.perm is not None:
        y = b.op("Gather", [y.tensor, b.const(spec.perm, _INT).tensor], x.dtype, axis=1)
    return y


def _tab_nan_fix(b: GraphBuilder, x: Sym, y: Sym, groups, pos: np.ndarray, total: int) -> Sym:
    """PyTorch's max propagates NaN, ONNX Runtime's ReduceMax skips it: where x holds a NaN, a
    per-bin sum of squares over the same bins (NaN exactly when the bin holds one) decides."""
    t = GraphBuilder(f"{b.prefix}/nan")
    return if_x_has_nan(b, x, y, t, _tab_pool(t, x, groups, pos, total, "ReduceSumSquare", "ReduceSum", "max"))


# ---- the registry entry: a key into this process's tables; lowered in both modes (no plugin) ----


def _symbolic(g, x, key):
    from torch.onnx import symbolic_helper as sh

    return g.op(f"{SPP_DOMAIN}::{TAB_OP}", x, key_s=sh._maybe_get_const(key, "s"))


SPEC = register(keyed(TAB_OP, "spp_deploy::tabulated_pyramid_pool", "spp_deploy.tabulated", build_tabulated, "tab",
                      _symbolic))
