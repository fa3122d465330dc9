"""Lowering of one SPP pyramid to standard ONNX ops with symbolic H and W.

This is the only place that expresses the pyramid as ONNX: the standard export inlines it,
the plugin export wraps it in a model-local function behind the single plugin node.

Per level and axis: the bin edges come from ``spp_deploy.bins`` evaluated symbolically on an
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

from ...ops import bins as _bins
from ...contract import EDGE_F32_MARK, PLUGIN_NAMESPACE, PLUGIN_VERSION, RULE_ATTR, SPP_DOMAIN, SPP_OP, SppConfig
from ..registry import FLOAT_TYPES, Attr, OpSpec, Plugin, register
from ..symbolic import GraphBuilder, OnnxOps, Sym, gs_dtype
from .common import ColumnGather, axes_const, bin_index, if_x_has_nan, masked_sum, reduce

_INT = np.int64


class _ColumnOps(OnnxOps):
    """Bin numbers as an [n, 1] column: every edge comes out as [n, 1], ready to broadcast."""

    def arange(self, n: int) -> Sym:
        return self.b.const(np.arange(n).reshape(n, 1), _INT)

def _mark_float_edges(b: GraphBuilder, nodes: Sequence[gs.Node]) -> None:
    """Rename the bin-edge nodes that compute in float32 (only `rounded` has any) so TensorRT
    builds can find and pin them; names only, values untouched."""
    for node in nodes:
        if any(t.dtype == np.float32 for t in list(node.inputs) + list(node.outputs)):
            node.name = node.name.replace(f"{b.prefix}/", f"{b.prefix}/{EDGE_F32_MARK}/", 1)

class _Direct(NamedTuple):
    """A level pooled from x; ``gathered``/``cols`` let the NaN branch reuse the gathered rows."""

    value: Sym  # [B, C, n, n]
    gathered: Sym | None  # max mode: [B, C, n, K, W]
    cols: "ColumnGather | None"
    valid: Sym | None


def _direct_level(b: GraphBuilder, x: Sym, H: Sym, W: Sym, n: int, cfg: SppConfig) -> _Direct:
    """Level n straight from x (max: NaN-skipping like ONNX Runtime's ReduceMax, see _nan_fix)."""
    ops = _ColumnOps(b)
    first = len(b.nodes)
    rows = _bins.axis_bins(cfg.rule, H, n, H, ops)
    cols = _bins.axis_bins(cfg.rule, W, n, H, ops)
    _mark_float_edges(b, b.nodes[first:])
    clamp = cfg.rule != "adaptive"
    ir, ic = bin_index(b, rows, H, clamp), bin_index(b, cols, W, clamp)
    g = b.op("Gather", [x.tensor, ir.idx.tensor], x.dtype, axis=2)  # [B, C, n, K, W]
    valid = None if cfg.rule == "adaptive" else ops.logical_and(rows.valid, cols.valid)
    cg = ColumnGather(b, x, ic, n)
    if cfg.mode == "max":
        m = reduce(b, "ReduceMax", cg(reduce(b, "ReduceMax", g, [3])), [4])
        return _Direct(m, g, cg, valid)
    y = masked_sum(b, g, 2, ir)
    y = masked_sum(b, cg(y), 3, ic)
    # span is [n, 1] or a scalar (ceil_pad's kernel): reshape to a column / a row either way
    as_shape = lambda v, shp: b.op("Reshape", [ops._sym(v).tensor, b.const(shp, _INT).tensor], _INT)  # noqa: E731
    div = ops.to_f32(as_shape(rows.span, [-1, 1]) * as_shape(cols.span, [1, -1]))
    if x.dtype != np.float32:
        div = b.op("Cast", [div.tensor], x.dtype, to=gs_dtype(x.dtype))
    return _Direct(y / div, None, None, valid)


def _derived_level(b: GraphBuilder, fine: Sym, n: int, m: int, op: str) -> Sym:
    """[B, C, m, m] from a finer [B, C, n, n] level with m | n: each coarse bin is a union."""
    if m == 1:
        return b.op(op, [fine.tensor, axes_const(b, [2, 3])], fine.dtype, keepdims=1)
    d = n // m
    r = b.op("Reshape", [fine.tensor, b.const([0, 0, m, d, m, d], _INT).tensor], fine.dtype)
    return reduce(b, op, r, [3, 5])


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
            s = reduce(t, "ReduceSumSquare", d.gathered, [3])
            wit[n] = reduce(t, "ReduceSum", d.cols(s, t), [4])
        else:
            wit[n] = _derived_level(t, wit[plan[n]], plan[n], n, "ReduceSum")
    return if_x_has_nan(b, x, out, t, _flatten(t, wit, cfg, x.dtype))



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


# ---- the registry entry: node, translation, TorchScript symbolic, lowering, plugin ----


def _lower(b: GraphBuilder, inputs: Sequence[Sym], cfg: SppConfig) -> Sym:
    return build_pyramid(b, inputs[0], cfg)  # looked up when called: tests swap in a broken lowering


def _translate(op):
    def translate(x, levels, mode, rule, order):
        return op(x, levels=list(levels), mode=mode, order=order, **{RULE_ATTR: rule})

    return translate


def _symbolic(g, x, levels, mode, rule, order):
    from torch.onnx import symbolic_helper as sh

    attrs = {"levels_i": sh._maybe_get_const(levels, "is"), "mode_s": sh._maybe_get_const(mode, "s"),
             f"{RULE_ATTR}_s": sh._maybe_get_const(rule, "s"), "order_s": sh._maybe_get_const(order, "s")}
    return g.op(f"{SPP_DOMAIN}::{SPP_OP}", x, **attrs)


SPEC = register(OpSpec(
    SPP_OP, "spp_deploy::spatial_pyramid_pool", "spp_deploy.op", (("X", FLOAT_TYPES),),
    (Attr("levels", "ints", "pyramid levels n (n x n bins)"), Attr("mode", "string", "max or avg"),
     Attr(RULE_ATTR, "string", "bin rule"), Attr("order", "string", "channel_major or bin_major")),
    config=SppConfig.from_attrs, lower=_lower, translate=_translate, prefix="spp",
    plugin=Plugin(PLUGIN_VERSION, PLUGIN_NAMESPACE, "cfg"), symbolic=_symbolic,
))
