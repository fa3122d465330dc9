"""Lowering of one SPP pyramid to standard ONNX ops with symbolic H and W.

This is the only place that expresses the pyramid as ONNX: the standard export inlines it,
the plugin export wraps it in a model-local function behind the single plugin node.

Per level and axis: the bin edges come from ``spp_deploy.bins`` evaluated symbolically; every
bin's indices are padded to the widest bin by repeating the bin's last index (harmless for max,
masked for avg); one Gather collects them and one Reduce pools them. Coarser adaptive levels
that divide a finer one are reduced from its [n, n] result (exact for max). At sizes where the
rule is illegal the whole SPP output is NaN: indices are clamped, nothing is read out of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import onnx_graphsurgeon as gs

from .. import bins as _bins
from .symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype

_INT = np.int64


@dataclass(frozen=True)
class SppConfig:
    levels: tuple[int, ...]
    mode: str
    bins: str
    order: str

    @property
    def attrs(self) -> dict:
        return {"levels": list(self.levels), "mode": self.mode, "bins": self.bins, "order": self.order}


def _axes(b: GraphBuilder, axes: Sequence[int]) -> gs.Constant:
    return b.const(list(axes), _INT).tensor


class _Index(NamedTuple):
    flat: Sym  # [n * K] indices along the axis
    t: Sym  # [K] offsets within a bin
    width: Sym  # [n] bin widths


def _bin_index(b: GraphBuilder, ab: _bins.AxisBins, size: Sym, clamp: bool) -> _Index:
    """Each bin's indices padded to the widest bin K by repeating its last index."""
    ops = OnnxOps(b)
    width = ab.end - ab.start
    k = ops.maximum(b.op("ReduceMax", [width.tensor], _INT, keepdims=0), 1)
    t = b.op("Range", [b.const(0, _INT).tensor, k.tensor, b.const(1, _INT).tensor], _INT)
    last = ops.maximum(width - 1, 0)
    idx = _unsq(b, ab.start, 1) + ops.minimum(_unsq(b, t, 0), _unsq(b, last, 1))
    if clamp:  # only rules with illegal sizes can produce indices outside [0, size)
        idx = ops.minimum(ops.maximum(idx, 0), size - 1)
    return _Index(b.op("Reshape", [idx.tensor, b.const([-1], _INT).tensor], _INT), t, width)


def _unsq(b: GraphBuilder, v: Sym, axis: int) -> Sym:
    return b.op("Unsqueeze", [v.tensor, _axes(b, [axis])], v.dtype)


def _gather(b: GraphBuilder, x: Sym, dim: int, ix: _Index, reshape_to: Sym) -> Sym:
    """x with axis ``dim`` replaced by [n, K]: one Gather and a Reshape."""
    g = b.op("Gather", [x.tensor, ix.flat.tensor], x.dtype, axis=dim)
    return b.op("Reshape", [g.tensor, reshape_to.tensor], x.dtype)


def _reduce(b: GraphBuilder, op: str, x: Sym, axes: Sequence[int]) -> Sym:
    return b.op(op, [x.tensor, _axes(b, axes)], x.dtype, keepdims=0)


def _masked_sum(b: GraphBuilder, g: Sym, dim: int, ix: _Index) -> Sym:
    """Sum over the padded bin axis dim+1, counting each real element once."""
    mask = b.op("Less", [_unsq(b, ix.t, 0).tensor, _unsq(b, ix.width, 1).tensor], np.bool_)
    if dim == 2:  # [n, K] -> [n, K, 1] to broadcast over W
        mask = _unsq(b, mask, 2)
    g = b.op("Where", [mask.tensor, g.tensor, b.const(0, g.dtype).tensor], g.dtype)
    return _reduce(b, "ReduceSum", g, [dim + 1])


def _direct_level(b: GraphBuilder, x: Sym, H: Sym, W: Sym, n: int, cfg: SppConfig):
    """Level n straight from x: (value [B, C, n, n], NaN witness or None, validity flag or None).

    ONNX Runtime's ReduceMax skips NaN; PyTorch propagates it. The witness is a sum of squares
    over the same bins: NaN exactly when the bin holds a NaN (squares cannot cancel; overflow
    gives inf, never NaN), and it reuses the gathered tensor, so it costs one extra read.
    """
    ops = OnnxOps(b)
    rows = _bins.axis_bins(cfg.bins, H, n, H, ops)
    cols = _bins.axis_bins(cfg.bins, W, n, H, ops)
    clamp = cfg.bins != "adaptive"
    ir, ic = _bin_index(b, rows, H, clamp), _bin_index(b, cols, W, clamp)
    W1 = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    shape_h = b.op("Concat", [b.const([0, 0, n, -1], _INT).tensor, W1.tensor], _INT, axis=0)
    shape_w = b.const([0, 0, 0, n, -1], _INT)
    g = _gather(b, x, 2, ir, shape_h)  # [B, C, n, K, W]
    valid = None if cfg.bins == "adaptive" else ops.logical_and(rows.valid, cols.valid)
    if cfg.mode == "max":
        m = _reduce(b, "ReduceMax", g, [3])
        s = _reduce(b, "ReduceSumSquare", g, [3])
        m = _reduce(b, "ReduceMax", _gather(b, m, 3, ic, shape_w), [4])
        s = _reduce(b, "ReduceSum", _gather(b, s, 3, ic, shape_w), [4])
        return m, s, valid
    y = _masked_sum(b, g, 2, ir)
    y = _masked_sum(b, _gather(b, y, 3, ic, shape_w), 3, ic)
    # span is [n] or a scalar (ceil_pad's kernel): reshape to a column / a row either way
    as_shape = lambda v, shp: b.op("Reshape", [ops._sym(v).tensor, b.const(shp, _INT).tensor], _INT)  # noqa: E731
    div = ops.to_f32(as_shape(rows.span, [-1, 1]) * as_shape(cols.span, [1, -1]))
    if x.dtype != np.float32:
        div = b.op("Cast", [div.tensor], x.dtype, to=gs_dtype(x.dtype))
    return y / div, None, valid


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
    nested = cfg.mode == "max" and _bins.get_rule(cfg.bins).nests
    for n in cfg.levels:
        parents = [p for p in cfg.levels if p > n and p % n == 0] if nested else []
        plan[n] = max(parents) if parents else None
    return plan


def build_pyramid(b: GraphBuilder, x: Sym, cfg: SppConfig) -> Sym:
    """Emit the pyramid for x [B, C, H, W] into ``b``; returns the [B, C * sum(n^2)] output.

    Channel-agnostic (reshapes copy B and C with 0), so one body serves every layer of a config.
    """
    H = b.op("Gather", [b.op("Shape", [x.tensor], _INT).tensor, b.const(2, _INT).tensor], _INT, axis=0)
    W = b.op("Gather", [b.op("Shape", [x.tensor], _INT).tensor, b.const(3, _INT).tensor], _INT, axis=0)
    plan = _plan(cfg)
    grids: dict[int, tuple[Sym, Sym | None]] = {}
    valid = None
    for n in sorted(set(cfg.levels), reverse=True):  # finest first, so parents exist
        if plan[n] is None:
            m, s, v = _direct_level(b, x, H, W, n, cfg)
            if v is not None:
                valid = v if valid is None else OnnxOps(b).logical_and(valid, v)
        else:
            p = plan[n]
            m = _derived_level(b, grids[p][0], p, n, "ReduceMax")
            s = _derived_level(b, grids[p][1], p, n, "ReduceSum")
        grids[n] = (m, s)
    flats = []
    for n in cfg.levels:
        y, witness = grids[n]
        if witness is not None:
            y = b.op("Where", [b.op("IsNaN", [witness.tensor], np.bool_).tensor, witness.tensor, y.tensor], x.dtype)
        if cfg.order == "bin_major":
            y = b.op("Transpose", [y.tensor], x.dtype, perm=[0, 2, 3, 1])
        flats.append(b.op("Reshape", [y.tensor, b.const([0, -1], _INT).tensor], x.dtype))
    out = flats[0] if len(flats) == 1 else b.op("Concat", [f.tensor for f in flats], x.dtype, axis=1)
    if valid is not None:
        nan = b.const(np.nan, x.dtype)
        out = b.op("Where", [valid.tensor, out.tensor, nan.tensor], x.dtype)
    return out
