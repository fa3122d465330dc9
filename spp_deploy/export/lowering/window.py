"""ONNX for the window pyramid (SPP-net detection pooling): the custom node the exporter emits,
its standard-op lowering, and plugin mode.

Standard lowering: the projection runs in-graph in float64 (``spp_deploy.projection.project_span``
evaluated on graph tensors, so the formula is written once); the bins are ``spp_deploy.bins``'
adaptive rule evaluated on the graph's integer windows; the map is zero-clamped (the original max
starts at 0). As in the eager op, each bin of the finest level is the max of four cells of a
sparse table of 2^a x 2^b block maxima (one Gather per corner over all bins), and a level that
divides a finer one is a k x k ``MaxPool`` of that level's grid (its bins are exact unions of the
finer bins). ``MaxRoiPool(spatial_scale=1)`` on the integer windows would also be exact
(``docs/window-spp.md``, "Not RoIPool") but ONNX Runtime's kernel is scalar and single-threaded: 0.6-0.9 s
against 0.1-0.2 s for 2,000 windows on a 42 x 56 x 256 map (benchmarks/RESULTS.md (f)). The table
covers maps up to ``MAX_MAP_SIDE`` cells a side; on larger maps ONNX Runtime stops with an
out-of-range Gather index rather than pool wrongly. Plugin mode keeps one
``spp_deploy.WindowSpatialPyramidPool`` node with ``plugin_version``/``plugin_namespace`` and that
lowering as a model-local function body.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import onnx_graphsurgeon as gs

from ...contract import WINDOW_OP, WINDOW_PLUGIN_NAMESPACE, WINDOW_PLUGIN_VERSION
from ...ops.projection import WindowProjection, project_span
from ...ops.window_pyramid import level_sources
from ..registry import FLOAT_TYPES, Attr, OpSpec, Plugin, register
from ..symbolic import GraphBuilder, Sym, gs_dtype

_F64 = np.float64
_F32 = np.float32
_INT = np.int64


class _GraphOps:
    """``project_span``'s ops backend on float64 graph tensors."""

    def __init__(self, b: GraphBuilder) -> None:
        self.b = b

    def _u(self, op: str, x: Sym) -> Sym:
        return self.b.op(op, [x.tensor], _F64)

    def floor(self, x: Sym) -> Sym:
        return self._u("Floor", x)

    def ceil(self, x: Sym) -> Sym:
        return self._u("Ceil", x)

    def trunc(self, x: Sym) -> Sym:  # ONNX has no Trunc: ceil below zero, floor above
        return self.where(x < 0, self.ceil(x), self.floor(x))

    def greater(self, a: Sym, c: Sym) -> Sym:
        return self.b.op("Greater", [a.tensor, c.tensor], np.bool_)

    def where(self, c: Sym, a: Sym, d: Sym) -> Sym:
        return self.b.op("Where", [c.tensor, a.tensor, d.tensor], _F64)

    def clamp(self, x: Sym, lo: float, hi: Sym) -> Sym:
        low = self.b.op("Max", [x.tensor, self.b.const(lo, _F64).tensor], _F64)
        return self.b.op("Min", [low.tensor, hi.tensor], _F64)


def _cast(b: GraphBuilder, x: Sym, dtype) -> Sym:
    if x.dtype == np.dtype(dtype):
        return x
    return b.op("Cast", [x.tensor], dtype, to=int(gs_dtype(dtype)))


def _column(b: GraphBuilder, w: Sym, i: int) -> Sym:
    ints = lambda v: b.const([v], _INT).tensor  # noqa: E731
    return b.op("Slice", [w.tensor, ints(i), ints(i + 1), ints(1)], w.dtype)


def _map_dim(b: GraphBuilder, shape: Sym, i: int) -> Sym:
    d = b.op("Gather", [shape.tensor, b.const(i, _INT).tensor], _INT, axis=0)
    return _cast(b, d, _F64)


TABLE_LEVELS = 11  # block sizes 2^0..2^10: exact for bins (so maps) up to 2^11 - 1 = 2047 cells a side
MAX_MAP_SIDE = 2 ** TABLE_LEVELS - 1


def _i64(b: GraphBuilder, v) -> gs.Constant:
    return b.const(v, _INT).tensor


def _slice(b: GraphBuilder, t: Sym, axis: int, start: int, end: int) -> Sym:
    return b.op("Slice", [t.tensor, _i64(b, [start]), _i64(b, [end]), _i64(b, [axis])], t.dtype)


def _unsq(b: GraphBuilder, t: Sym, axes) -> Sym:
    return b.op("Unsqueeze", [t.tensor, _i64(b, list(axes))], t.dtype)


def _gather(b: GraphBuilder, data: Sym, idx: Sym, dtype=_INT) -> Sym:
    return b.op("Gather", [data.tensor, idx.tensor], dtype, axis=0)


def _keep_upto(b: GraphBuilder, t: Sym, axis: int, needed: Sym) -> Sym:
    """t itself where ``needed`` (a bool scalar), else t emptied along ``axis`` (a free Slice)."""
    end = b.op("Where", [needed.tensor, _i64(b, [2**62]), _i64(b, [0])], _INT)
    return b.op("Slice", [t.tensor, _i64(b, [0]), end.tensor, _i64(b, [axis])], t.dtype)


def _double_blocks(b: GraphBuilder, t: Sym, axis: int, a: int, longest: Sym) -> Sym:
    """Maxima of 2^a-long blocks along ``axis`` from those of 2^(a-1)-long ones (the max of two
    overlapping halves); emptied where no bin is ``longest`` >= 2^a cells long."""
    d = 1 << (a - 1)
    t = b.op("Max", [_slice(b, t, axis, 0, -d).tensor, _slice(b, t, axis, d, 2**62).tensor], _F32)
    return _keep_upto(b, t, axis, longest >= (1 << a))


def _block_tables(b: GraphBuilder, xz: Sym, S: Sym, H: Sym, W: Sym, finest: int) -> tuple[Sym, Sym, Sym, Sym]:
    """The sparse table as one [N, C] matrix: for every (a, b), the [S, H - 2^a + 1, W - 2^b + 1]
    maxima of 2^a x 2^b blocks, channels last, stacked. Only blocks no longer than a bin of the
    coarsest scanned level can be (ceil(H / finest) + 1 rows) are kept; the others are empty (no
    work, no memory). Returns (matrix, offsets [K*K] of each table's first row, rows [K],
    columns [K])."""
    K = TABLE_LEVELS
    t = b.op("Transpose", [xz.tensor], _F32, perm=[0, 2, 3, 1])  # [S, H, W, C]
    C = b.op("Gather", [b.op("Shape", [xz.tensor], _INT).tensor, _i64(b, [1])], _INT, axis=0)
    flat_shape = b.op("Concat", [_i64(b, [-1]), C.tensor], _INT, axis=0)
    # an adaptive bin of a window of h <= H cells at level n spans at most ceil(h / n) + 1 cells
    longest_h = b.op("Div", [(H + (finest - 1)).tensor, _i64(b, finest)], _INT) + 1
    longest_w = b.op("Div", [(W + (finest - 1)).tensor, _i64(b, finest)], _INT) + 1
    flats = []
    rows = t
    for a in range(K):
        if a:
            rows = _double_blocks(b, rows, 1, a, longest_h)
        block = rows
        for c in range(K):
            if c:
                block = _double_blocks(b, block, 2, c, longest_w)
            flats.append(b.op("Reshape", [block.tensor, flat_shape.tensor], _F32).tensor)
    matrix = b.op("Concat", flats, _F32, axis=0)
    pw = b.const([1 << k for k in range(K)], _INT)
    zero = b.const(0, _INT)
    # [K] rows of table a and columns of table b; 0 for the emptied ones
    hh = b.op("Where", [(longest_h >= pw).tensor, b.op("Max", [(H - pw + 1).tensor, zero.tensor], _INT).tensor,
                        zero.tensor], _INT)
    ww = b.op("Where", [(longest_w >= pw).tensor, b.op("Max", [(W - pw + 1).tensor, zero.tensor], _INT).tensor,
                        zero.tensor], _INT)
    sizes = S * _unsq(b, hh, [1]) * _unsq(b, ww, [0])  # [K, K]
    flat = b.op("Reshape", [sizes.tensor, _i64(b, [-1])], _INT)
    offsets = b.op("CumSum", [flat.tensor, b.const(0, _INT).tensor], _INT, exclusive=1)
    return matrix, offsets, hh, ww


def _log2_floor(b: GraphBuilder, length: Sym) -> Sym:
    """floor(log2(v)) of positive int64 v, exactly: the number of k in 1..K-1 with v >= 2^k (a sum
    of comparisons: ONNX Runtime's ReduceSum mis-shapes an empty input, and R may be 0)."""
    total = None
    for k in range(1, TABLE_LEVELS):
        ge = b.op("GreaterOrEqual", [length.tensor, b.const(1 << k, _INT).tensor], np.bool_)
        one = b.op("Cast", [ge.tensor], _INT, to=int(gs_dtype(_INT)))
        total = one if total is None else total + one
    return total


def _table_grid(b: GraphBuilder, tables, s: Sym, cells: tuple[Sym, Sym, Sym, Sym], n: int,
                guard: Sym | None = None) -> Sym:
    """[R, C, n, n]: each adaptive bin of each window as the max of four sparse-table cells."""
    from ...ops import bins as _bins
    from ..symbolic import OnnxOps

    matrix, offsets, hh, ww = tables
    left, top, right, bottom = cells  # [R, 1] int64, 1-based, clamped
    ops = OnnxOps(b)
    pw = b.const([1 << k for k in range(TABLE_LEVELS)], _INT)
    axes = []
    for lo, hi in ((top, bottom), (left, right)):
        ab = _bins.axis_bins("adaptive", hi - lo + 1, n, ops=ops)  # [R, n]
        start, end = ab.start + lo - 1, ab.end + lo - 1
        k = _log2_floor(b, end - start)
        axes.append((start, end - _gather(b, pw, k), k))
    (ya, yb, ka), (xa, xb, kb) = axes
    col = lambda v: _unsq(b, v, [2])  # noqa: E731  [R, n] -> [R, n, 1] (rows)
    row = lambda v: _unsq(b, v, [1])  # noqa: E731  [R, n] -> [R, 1, n] (columns)
    width = row(_gather(b, ww, kb))  # [R, 1, n]
    table = col(ka) * TABLE_LEVELS + row(kb)  # [R, n, n]
    base = _gather(b, offsets, table) + _unsq(b, s, [2]) * col(_gather(b, hh, ka)) * width
    corners = [base + col(y) * width + row(x) for y in (ya, yb) for x in (xa, xb)]
    if guard is not None:  # maps beyond the table's reach: indices out of range, so Gather fails
        corners = [b.op("Where", [guard.tensor, c.tensor, _i64(b, -(2**62))], _INT) for c in corners]
    got = [_gather(b, matrix, c, _F32).tensor for c in corners]  # [R, n, n, C] each
    m = b.op("Max", got, _F32)
    return b.op("Transpose", [m.tensor], _F32, perm=[0, 3, 1, 2])


def build_window_pyramid(b: GraphBuilder, x: Sym, windows: Sym, levels, proj: WindowProjection) -> Sym:
    """[S, C, H, W] maps + [R, 5] windows -> [R, C * sum(n^2)] in x's dtype, standard ops only."""
    ops = _GraphOps(b)
    shape = b.op("Shape", [x.tensor], _INT)
    H, W = _map_dim(b, shape, 2), _map_dim(b, shape, 3)
    w = _cast(b, windows, _F64)
    idx, x0, y0, x1, y1 = (_column(b, w, i) for i in range(5))
    left, right = project_span(x0, x1, W, proj, ops)
    top, bottom = project_span(y0, y1, H, proj, ops)
    cells = tuple(_cast(b, v, _INT) for v in (left, top, right, bottom))
    s = _cast(b, idx, _INT)
    x32 = _cast(b, x, _F32)
    zero = b.const(0, _F32)
    xz = b.op("Where", [b.op("Greater", [x32.tensor, zero.tensor], np.bool_).tensor, x32.tensor, zero.tensor], _F32)
    Hi, Wi = _cast(b, H, _INT), _cast(b, W, _INT)
    Si = b.op("Gather", [shape.tensor, b.const(0, _INT).tensor], _INT, axis=0)
    fits = b.op("And", [(Hi <= MAX_MAP_SIDE).tensor, (Wi <= MAX_MAP_SIDE).tensor], np.bool_)
    src = level_sources(levels)
    tables = _block_tables(b, xz, Si, Hi, Wi, min(n for n in levels if src[n] == n))
    grids: dict[int, Sym] = {}
    for n in sorted(set(levels), reverse=True):  # finest first; coarser levels pool its grid
        if src[n] == n:
            grids[n] = _table_grid(b, tables, s, cells, n, fits)
        else:
            k = src[n] // n
            grids[n] = b.op("MaxPool", [grids[src[n]].tensor], _F32, kernel_shape=[k, k], strides=[k, k])
    flat = [b.op("Flatten", [grids[n].tensor], _F32, axis=1).tensor for n in levels]
    y = b.op("Concat", flat, _F32, axis=1)
    return _cast(b, y, x.dtype)


# ---- the registry entry: maps + windows -> per-window pyramid; the window plugin in plugin mode ----


def _config(attrs: Mapping[str, Any]) -> tuple[tuple[int, ...], WindowProjection]:
    levels = tuple(int(v) for v in attrs["levels"])
    return levels, WindowProjection(*(float(v) for v in attrs["projection"]))


def _lower(b: GraphBuilder, inputs: Sequence[Sym], config: tuple[tuple[int, ...], WindowProjection]) -> Sym:
    return build_window_pyramid(b, inputs[0], inputs[1], *config)


def _translate(op):
    def translate(x, windows, levels, projection):
        return op(x, windows, levels=list(levels), projection=[float(v) for v in projection])

    return translate


SPEC = register(OpSpec(
    WINDOW_OP, "spp_deploy::window_spatial_pyramid_pool", "spp_deploy.window",
    (("X", FLOAT_TYPES), ("ROIS", ("tensor(float)", "tensor(double)", "tensor(float16)"))),
    (Attr("levels", "ints", "pyramid levels n (n x n bins)"), Attr("projection", "floats", "stride, offset0, offset")),
    config=_config, lower=_lower, translate=_translate, prefix="wspp",
    plugin=Plugin(WINDOW_PLUGIN_VERSION, WINDOW_PLUGIN_NAMESPACE, "win"),
))
