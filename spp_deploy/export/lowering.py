"""Lowering of one SPP pyramid to standard ONNX ops with symbolic H and W.

This is the only place that expresses the pyramid as ONNX: the standard export inlines it,
the plugin export wraps it in a model-local function behind the single plugin node.

Per level and axis: the bin edges come from ``spp_deploy.ops.bins`` evaluated symbolically on an
[n, 1] column of bin numbers; every bin's indices are padded to the widest bin K by repeating the
bin's last index (harmless for max, masked for avg), giving an [n, K] index matrix. Rows: one
Gather along H with that matrix yields [B, C, n, K, W] and one Reduce over K pools it. Columns:
the once-reduced [B, C, n, W] tensor is small; GatherElements with the flattened index row
broadcast over it (one element-granular gather, far cheaper in ONNX Runtime than Gather on the
last axis) and a Reduce over the trailing K finish the level. Coarser adaptive levels that divide
a finer one are reduced from its [n, n] result (exact for max). Max mode matches PyTorch's NaN
propagation through a per-bin witness that only runs when x holds a NaN (``_nan_fix``). At sizes
where the rule is illegal the whole SPP output is NaN: indices are clamped, nothing is read out
of bounds.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import onnx_graphsurgeon as gs

from ..contract import EDGE_F32_MARK, SppConfig
from ..ops import bins as _bins
from .symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype

_INT = np.int64


class _ColumnOps(OnnxOps):
    """Bin numbers as an [n, 1] column: every edge comes out as [n, 1], ready to broadcast."""

    def arange(self, n: int) -> Sym:
        return self.b.const(np.arange(n).reshape(n, 1), _INT)


def _axes(b: GraphBuilder, axes: Sequence[int]) -> gs.Constant:
    return b.const(list(axes), _INT).tensor


def _mark_float_edges(b: GraphBuilder, nodes: Sequence[gs.Node]) -> None:
    """Rename the bin-edge nodes that compute in float32 (only `rounded` has any) so TensorRT
    builds can find and pin them; names only, values untouched."""
    for node in nodes:
        if any(t.dtype == np.float32 for t in list(node.inputs) + list(node.outputs)):
            node.name = node.name.replace(f"{b.prefix}/", f"{b.prefix}/{EDGE_F32_MARK}/", 1)


class _Index(NamedTuple):
    idx: Sym  # [n, K] indices along the axis
    t: Sym  # [K] offsets within a bin
    width: Sym  # [n, 1] bin widths


def _bin_index(b: GraphBuilder, ab: _bins.AxisBins, size: Sym, clamp: bool) -> _Index:
    """Each bin's indices padded to the widest bin K by repeating its last index.

    idx[i, t] = min(start_i + t, max(end_i - 1, start_i)). ``clamp`` is for rules whose bins can
    be empty or out of range at illegal sizes; adaptive bins are never empty (end - 1 >= start).
    """
    ops = OnnxOps(b)
    width = ab.end - ab.start
    k = b.op("ReduceMax", [width.tensor, _axes(b, [0, 1])], _INT, keepdims=0)
    last = ab.end - 1
    if clamp:
        k = ops.maximum(k, 1)
        last = ops.maximum(last, ab.start)
    t = b.op("Range", [b.const(0, _INT).tensor, k.tensor, b.const(1, _INT).tensor], _INT)
    idx = ops.minimum(ab.start + t, last)
    if clamp:  # only rules with illegal sizes can produce indices outside [0, size)
        idx = ops.minimum(ops.maximum(idx, 0), size - 1)
    return _Index(idx, t, width)


def _reduce(b: GraphBuilder, op: str, x: Sym, axes: Sequence[int], keepdims: int = 0) -> Sym:
    return b.op(op, [x.tensor, _axes(b, axes)], x.dtype, keepdims=keepdims)


class _ColumnGather:
    """Gathers the column bins of [B, C, n, W] tensors into [B, C, n, n_cols, K] (GatherElements)."""

    def __init__(self, b: GraphBuilder, x: Sym, ic: _Index, n: int, n_cols: int | None = None) -> None:
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


def _masked_sum(b: GraphBuilder, g: Sym, dim: int, ix: _Index) -> Sym:
    """Sum over the padded bin axis dim+1, counting each real element once."""
    mask = b.op("Less", [ix.t.tensor, ix.width.tensor], np.bool_)  # [n, K]
    if dim == 2:  # [n, K] -> [n, K, 1] to broadcast over W
        mask = b.op("Unsqueeze", [mask.tensor, _axes(b, [2])], np.bool_)
    g = b.op("Where", [mask.tensor, g.tensor, b.const(0, g.dtype).tensor], g.dtype)
    return _reduce(b, "ReduceSum", g, [dim + 1])


class _Direct(NamedTuple):
    """A level pooled from x; ``gathered``/``cols`` let the NaN branch reuse the gathered rows."""

    value: Sym  # [B, C, n, n]
    gathered: Sym | None  # max mode: [B, C, n, K, W]
    cols: "_ColumnGather | None"
    valid: Sym | None


def _direct_level(b: GraphBuilder, x: Sym, H: Sym, W: Sym, n: int, cfg: SppConfig) -> _Direct:
    """Level n straight from x (max: NaN-skipping like ONNX Runtime's ReduceMax, see _nan_fix)."""
    ops = _ColumnOps(b)
    first = len(b.nodes)
    rows = _bins.axis_bins(cfg.rule, H, n, H, ops)
    cols = _bins.axis_bins(cfg.rule, W, n, H, ops)
    _mark_float_edges(b, b.nodes[first:])
    clamp = cfg.rule != "adaptive"
    ir, ic = _bin_index(b, rows, H, clamp), _bin_index(b, cols, W, clamp)
    g = b.op("Gather", [x.tensor, ir.idx.tensor], x.dtype, axis=2)  # [B, C, n, K, W]
    valid = None if cfg.rule == "adaptive" else ops.logical_and(rows.valid, cols.valid)
    cg = _ColumnGather(b, x, ic, n)
    if cfg.mode == "max":
        m = _reduce(b, "ReduceMax", cg(_reduce(b, "ReduceMax", g, [3])), [4])
        return _Direct(m, g, cg, valid)
    y = _masked_sum(b, g, 2, ir)
    y = _masked_sum(b, cg(y), 3, ic)
    # span is [n, 1] or a scalar (ceil_pad's kernel): reshape to a column / a row either way
    as_shape = lambda v, shp: b.op("Reshape", [ops._sym(v).tensor, b.const(shp, _INT).tensor], _INT)  # noqa: E731
    div = ops.to_f32(as_shape(rows.span, [-1, 1]) * as_shape(cols.span, [1, -1]))
    if x.dtype != np.float32:
        div = b.op("Cast", [div.tensor], x.dtype, to=gs_dtype(x.dtype))
    return _Direct(y / div, None, None, valid)


def _derived_level(b: GraphBuilder, fine: Sym, n: int, m: int, op: str) -> Sym:
    """[B, C, m, m] from a finer [B, C, n, n] level with m | n: each coarse bin is a union."""
    if m == 1:
        return b.op(op, [fine.tensor, _axes(b, [2, 3])], fine.dtype, keepdims=1)
    d = n // m
    r = b.op("Reshape", [fine.tensor, b.const([0, 0, m, d, m, d], _INT).tensor], fine.dtype)
    return _reduce(b, op, r, [3, 5])


def _plan(cfg: SppConfig) -> dict[int, int | None]:
    """For each level, the finer level it is reduced from (None: pooled from the input)."""
    plan: dict[int, int | None] = {}
    nested = cfg.mode == "max" and _bins.get_rule(cfg.rule).nests
    for n in cfg.levels:
        parents = [p for p in cfg.levels if p > n and p % n == 0] if nested else []
        plan[n] = max(parents) if parents else None
    return plan


def _flatten(b: GraphBuilder, grids: dict[int, Sym], cfg: SppConfig, dtype: Any) -> Sym:
    flats = []
    for n in cfg.levels:
        y = grids[n]
        if cfg.order == "bin_major":
            y = b.op("Transpose", [y.tensor], dtype, perm=[0, 2, 3, 1])
        flats.append(b.op("Reshape", [y.tensor, b.const([0, -1], _INT).tensor], dtype))
    return flats[0] if len(flats) == 1 else b.op("Concat", [f.tensor for f in flats], dtype, axis=1)


def _nan_fix(b: GraphBuilder, x: Sym, out: Sym, direct: dict[int, _Direct], cfg: SppConfig) -> Sym:
    """Max mode: PyTorch propagates NaN, ONNX Runtime's ReduceMax skips it.

    The exact fix is a witness per bin, a sum of squares over the same bins (NaN exactly when
    the bin holds a NaN: squares cannot cancel, overflow gives inf, never NaN), and NaN where it
    is NaN. It costs two more passes over the gathered rows, so it runs inside an ``If`` only
    when x holds a NaN at all: ReduceSum over x is NaN then (a false alarm from inf - inf only
    takes the exact branch needlessly).
    """
    plan = _plan(cfg)
    t = GraphBuilder(f"{b.prefix}/nan")
    wit: dict[int, Sym] = {}
    for n in sorted(set(cfg.levels), reverse=True):
        if plan[n] is None:
            d = direct[n]
            s = _reduce(t, "ReduceSumSquare", d.gathered, [3])
            wit[n] = _reduce(t, "ReduceSum", d.cols(s, t), [4])
        else:
            wit[n] = _derived_level(t, wit[plan[n]], plan[n], n, "ReduceSum")
    return _if_x_has_nan(b, x, out, t, _flatten(t, wit, cfg, x.dtype))


def _if_x_has_nan(b: GraphBuilder, x: Sym, out: Sym, t: GraphBuilder, witness: Sym) -> Sym:
    """``out`` with NaN where ``witness`` (built in ``t``) is NaN, evaluated only when x holds a
    NaN at all (ReduceSum over x is NaN then; a false alarm from inf - inf only costs time)."""
    fixed = t.op("Where", [t.op("IsNaN", [witness.tensor], np.bool_).tensor, witness.tensor, out.tensor], x.dtype)
    total = b.op("ReduceSum", [x.tensor, _axes(b, [0, 1, 2, 3])], x.dtype, keepdims=0)
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


def build_pyramid(b: GraphBuilder, x: Sym, cfg: SppConfig) -> Sym:
    """Emit the pyramid for x [B, C, H, W] into ``b``; returns the [B, C * sum(n^2)] output.

    Channel-agnostic (reshapes copy B and C with 0), so one body serves every layer of a config.
    """
    H = b.op("Shape", [x.tensor], _INT, start=2, end=3)  # [1]
    W = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    plan = _plan(cfg)
    grids: dict[int, Sym] = {}
    direct: dict[int, _Direct] = {}
    valid = None
    for n in sorted(set(cfg.levels), reverse=True):  # finest first, so parents exist
        if plan[n] is None:
            direct[n] = d = _direct_level(b, x, H, W, n, cfg)
            grids[n] = d.value
            if d.valid is not None:
                valid = d.valid if valid is None else OnnxOps(b).logical_and(valid, d.valid)
        else:
            grids[n] = _derived_level(b, grids[plan[n]], plan[n], n, "ReduceMax")
    out = _flatten(b, grids, cfg, x.dtype)
    if cfg.mode == "max":
        out = _nan_fix(b, x, out, direct, cfg)
    if valid is not None:
        nan = b.const(np.nan, x.dtype)
        out = b.op("Where", [valid.tensor, out.tensor, nan.tensor], x.dtype)
    return out


# ---- tabulated pyramids: bin edges read from measured tables indexed by the runtime size ----


def _table_row(b: GraphBuilder, table: np.ndarray, i: Sym, dtype: Any, shape: Sequence[int]) -> Sym:
    """Row ``i`` ([1] int64) of a constant [sizes, m] table, reshaped to ``shape`` and cast."""
    store = np.int32 if table.dtype.kind == "i" else table.dtype  # halve the bytes of index tables
    row = b.op("Gather", [b.const(table.astype(store), store).tensor, i.tensor], store, axis=0)
    if np.dtype(store) != np.dtype(dtype):
        row = b.op("Cast", [row.tensor], dtype, to=gs_dtype(dtype))
    return b.op("Reshape", [row.tensor, b.const(list(shape), _INT).tensor], dtype)


class _TabGroup(NamedTuple):
    ir: _Index  # row bins of the group
    ic: _Index  # column bins of the group
    cols: "_ColumnGather"
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
            return _bin_index(b, _bins.AxisBins(start, end, None, None), size, clamp=True)

        ir, ic = axis(spec.rows, row_ids, ih, H), axis(spec.cols, col_ids, iw, W)
        nr, nc = len(row_ids), len(col_ids)
        groups.append(_TabGroup(ir, ic, _ColumnGather(b, x, ic, nr, nc), nr, nc))
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
            y = _reduce(b, reduce_cols, g.cols(_reduce(b, reduce_rows, rows, [3]), b), [4])
        else:
            y = _masked_sum(b, g.cols(_masked_sum(b, rows, 2, g.ir), b), 3, g.ic)
        flats.append(b.op("Reshape", [y.tensor, b.const([0, 0, -1], _INT).tensor], x.dtype))
    y = flats[0] if len(flats) == 1 else b.op("Concat", [f.tensor for f in flats], x.dtype, axis=2)
    if not np.array_equal(pos, np.arange(total)):
        y = b.op("Gather", [y.tensor, b.const(pos, _INT).tensor], x.dtype, axis=2)
    return y


def build_tabulated(b: GraphBuilder, x: Sym, spec) -> Sym:
    """Emit a tabulated pyramid (``spp_deploy.ops.table_pyramid.TableSpec``) for x [B, C, H, W].

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
    return _if_x_has_nan(b, x, y, t, _tab_pool(t, x, groups, pos, total, "ReduceSumSquare", "ReduceSum", "max"))
