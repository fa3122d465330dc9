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
from typing import Sequence

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


def _pool_axis(b: GraphBuilder, x: Sym, dim: int, ab: _bins.AxisBins, size: Sym, n: int,
               mode: str, reshape_to: Sym, clamp: bool) -> Sym:
    """Pool axis ``dim`` (2 or 3) of a 4-D x into n bins: Gather + Reshape + Reduce."""
    ops = OnnxOps(b)
    width = ab.end - ab.start
    k = ops.maximum(b.op("ReduceMax", [width.tensor], _INT, keepdims=0), 1)
    t = b.op("Range", [b.const(0, _INT).tensor, k.tensor, b.const(1, _INT).tensor], _INT)
    col = lambda v: b.op("Unsqueeze", [v.tensor, _axes(b, [1])], _INT)  # noqa: E731
    last = ops.maximum(width - 1, 0)
    idx = col(ab.start) + ops.minimum(b.op("Unsqueeze", [t.tensor, _axes(b, [0])], _INT), col(last))
    if clamp:  # only rules with illegal sizes can produce indices outside [0, size)
        idx = ops.minimum(ops.maximum(idx, 0), size - 1)
    flat = b.op("Reshape", [idx.tensor, b.const([-1], _INT).tensor], _INT)
    g = b.op("Gather", [x.tensor, flat.tensor], x.dtype, axis=dim)
    g = b.op("Reshape", [g.tensor, reshape_to.tensor], x.dtype)
    red = _axes(b, [dim + 1])
    if mode == "max":
        return b.op("ReduceMax", [g.tensor, red], x.dtype, keepdims=0)
    mask = b.op("Less", [b.op("Unsqueeze", [t.tensor, _axes(b, [0])], _INT).tensor, col(width).tensor], np.bool_)
    if dim == 2:  # [n, K] -> [n, K, 1] to broadcast over W
        mask = b.op("Unsqueeze", [mask.tensor, _axes(b, [2])], np.bool_)
    zero = b.const(0, x.dtype)
    g = b.op("Where", [mask.tensor, g.tensor, zero.tensor], x.dtype)
    return b.op("ReduceSum", [g.tensor, red], x.dtype, keepdims=0)


def _direct_level(b: GraphBuilder, x: Sym, H: Sym, W: Sym, n: int, cfg: SppConfig):
    """[B, C, n, n] for level n straight from x, and the level's validity flag (or None)."""
    ops = OnnxOps(b)
    rows = _bins.axis_bins(cfg.bins, H, n, H, ops)
    cols = _bins.axis_bins(cfg.bins, W, n, H, ops)
    clamp = cfg.bins != "adaptive"
    W1 = b.op("Shape", [x.tensor], _INT, start=3, end=4)
    shape_h = b.op("Concat", [b.const([0, 0, n, -1], _INT).tensor, W1.tensor], _INT, axis=0)
    y = _pool_axis(b, x, 2, rows, H, n, cfg.mode, shape_h, clamp)  # [B, C, n, W]
    y = _pool_axis(b, y, 3, cols, W, n, cfg.mode, b.const([0, 0, 0, n, -1], _INT), clamp)
    if cfg.mode == "avg":
        # span is [n] or a scalar (ceil_pad's kernel): reshape to a column / a row either way
        as_shape = lambda v, shp: b.op("Reshape", [ops._sym(v).tensor, b.const(shp, _INT).tensor], _INT)  # noqa: E731
        div = ops.to_f32(as_shape(rows.span, [-1, 1]) * as_shape(cols.span, [1, -1]))
        if x.dtype != np.float32:
            div = b.op("Cast", [div.tensor], x.dtype, to=gs_dtype(x.dtype))
        y = y / div
    valid = None if cfg.bins == "adaptive" else ops.logical_and(rows.valid, cols.valid)
    return y, valid


def _derived_level(b: GraphBuilder, fine: Sym, n: int, m: int) -> Sym:
    """[B, C, m, m] from a finer [B, C, n, n] level with m | n: each coarse bin is a union."""
    if m == 1:
        return b.op("ReduceMax", [fine.tensor, _axes(b, [2, 3])], fine.dtype, keepdims=1)
    d = n // m
    r = b.op("Reshape", [fine.tensor, b.const([0, 0, m, d, m, d], _INT).tensor], fine.dtype)
    return b.op("ReduceMax", [r.tensor, _axes(b, [3, 5])], fine.dtype, keepdims=0)


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
    grids: dict[int, Sym] = {}
    valid = None
    for n in sorted(set(cfg.levels), reverse=True):  # finest first, so parents exist
        if plan[n] is None:
            grids[n], v = _direct_level(b, x, H, W, n, cfg)
            if v is not None:
                valid = v if valid is None else OnnxOps(b).logical_and(valid, v)
        else:
            grids[n] = _derived_level(b, grids[plan[n]], plan[n], n)
    flats = []
    for n in cfg.levels:
        y = grids[n]
        if cfg.order == "bin_major":
            y = b.op("Transpose", [y.tensor], x.dtype, perm=[0, 2, 3, 1])
        flats.append(b.op("Reshape", [y.tensor, b.const([0, -1], _INT).tensor], x.dtype))
    out = flats[0] if len(flats) == 1 else b.op("Concat", [f.tensor for f in flats], x.dtype, axis=1)
    if valid is not None:
        nan = b.const(np.nan, x.dtype)
        out = b.op("Where", [valid.tensor, out.tensor, nan.tensor], x.dtype)
    return out
