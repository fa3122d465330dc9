"""SPP-net detection pooling: ``WindowSpatialPyramidPool`` and its ``torch.library`` custom op.

Each proposal window is projected onto the conv map (``spp_deploy.ops.projection``) and pooled into
an n x n grid per level with the ``adaptive`` bin rule of ``spp_deploy.ops.bins`` applied to the
window (``docs/window-spp.md``, "Bins and reduction"), max with a zero-initialised accumulator.

The eager op answers bins with a 2-D sparse table (range-maximum query): for each power-of-two
block size (2^a rows, 2^b columns) it keeps the map of block maxima and reads each bin as the max
of four overlapping blocks covering it. Max is exact, so the result is bit-identical to scanning
the bin; windows are processed in vectorised chunks, never one by one. Under
``torch.export`` the op is one node whose output is [R, C * sum(n^2)] for a symbolic R.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..util.constants import WINDOWS_DTYPES
from ..util.errors import UserError
from . import bins as _bins
from .projection import TORCH_OPS, ZF5, WindowProjection, project_span

# Levels n where the released code's float32 bin edges ((float)yy / n * h) and ONNX Runtime's
# MaxRoiPool edges (yy * ((float)h / n)) equal the exact integer adaptive rule for every window
# size h <= 4096 (tests/test_window.py re-derives this set). Other n would not be "what the
# authors' code computes", so they are refused.
EXACT_LEVELS = (1, 2, 3, 4, 6, 8, 16)
SPPNET_LEVELS = (1, 2, 3, 6)
WINDOW_CHUNK = 64  # windows per step of the eager op: its buffers stay in cache (about 2 MB at C = 256)


def windows_torch_dtype(windows_dtype: str) -> torch.dtype:
    """The torch dtype of a ``windows_dtype`` name: float64 (exact as given), or float32 (TensorRT
    has no float64; the graph widens float32 windows to float64 exactly before projecting them)."""
    if windows_dtype not in WINDOWS_DTYPES:
        raise UserError(f"{windows_dtype!r} is not a windows dtype (use {' or '.join(WINDOWS_DTYPES)})",
                        option="windows_dtype")
    return getattr(torch, windows_dtype)


def validate_levels(levels: Sequence[int]) -> tuple[int, ...]:
    lv = tuple(int(n) for n in levels)
    if not lv:
        raise ValueError("pyramid levels must not be empty")
    bad = [n for n in lv if n not in EXACT_LEVELS]
    if bad:
        supported = ", ".join(map(str, EXACT_LEVELS))
        raise ValueError(f"window pyramid level {bad[0]} is not supported (supported: {supported}: "
                         "the levels where the original float32 bin edges are the exact adaptive rule)")
    return lv


def project_windows(windows: torch.Tensor, height: int, width: int, proj: WindowProjection | None) -> torch.Tensor:
    """[R, 5] windows (index, x1, y1, x2, y2; 1-based inclusive) -> [R, 5] int64 (index, left,
    top, right, bottom): 1-based inclusive cells, clamped to the H x W map."""
    proj = proj or WindowProjection.identity()
    w = windows.to(torch.float64)
    left, right = project_span(w[:, 1], w[:, 3], width, proj, TORCH_OPS)
    top, bottom = project_span(w[:, 2], w[:, 4], height, proj, TORCH_OPS)
    return torch.stack([w[:, 0], left, top, right, bottom], dim=1).to(torch.int64)


def _queries(cells: np.ndarray, levels: Sequence[int]) -> list[np.ndarray]:
    """Per level, the bins of every window as [R * n * n, 5] rows (map, y0, y1, x0, x1) of
    0-based half-open map indices, window-major then (yy, xx)."""
    b, left, top, right, bottom = (cells[:, i:i + 1] for i in range(5))
    h, w = bottom - top + 1, right - left + 1
    out = []
    for n in levels:
        rows = _bins.axis_bins("adaptive", h, n)  # [R, n] starts/ends within the window
        cols = _bins.axis_bins("adaptive", w, n)
        R = cells.shape[0]
        shape = (R, n, n)
        q = np.stack([
            np.broadcast_to(b[:, :, None], shape),
            np.broadcast_to((rows.start + top - 1)[:, :, None], shape),
            np.broadcast_to((rows.end + top - 1)[:, :, None], shape),
            np.broadcast_to((cols.start + left - 1)[:, None, :], shape),
            np.broadcast_to((cols.end + left - 1)[:, None, :], shape),
        ], axis=-1)
        out.append(q.reshape(-1, 5))
    return out


def _log2_floor(v: np.ndarray) -> np.ndarray:
    return np.frexp(v.astype(np.float64))[1].astype(np.int64) - 1  # exact for positive integers


def _block_max(t: torch.Tensor, dim: int, d: int) -> torch.Tensor:
    """t'[i] = max(t[i], t[i + d]) along ``dim``: blocks twice as long, d fewer positions."""
    n = t.shape[dim]
    return torch.maximum(t.narrow(dim, 0, n - d), t.narrow(dim, d, n - d))


def sparse_table(x: torch.Tensor, q: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The block-maxima tables for query rows (s, y0, y1, x0, x1) (0-based half-open bins of x
    [S, C, H, W]): (table [N, C], four [Q] row indices per query). The max of the four rows is the
    bin's max: a bin of height hb is covered by two row blocks of 2^floor(log2 hb) (at y0 and
    y1 - 2^a), likewise columns. Only the (a, b) tables some bin needs are built."""
    S, C, H, W = x.shape
    a = _log2_floor(q[:, 2] - q[:, 1])
    b = _log2_floor(q[:, 4] - q[:, 3])
    nb = int(b.max()) + 1
    used = np.zeros((int(a.max()) + 1, nb), dtype=bool)
    used[a, b] = True
    offset = np.zeros(used.shape, dtype=np.int64)
    tables, at = [], 0
    rows_block = x.permute(0, 2, 3, 1).contiguous()  # [S, H, W, C]: a cell's channels are one row
    for ai in range(used.shape[0]):
        if ai:
            rows_block = _block_max(rows_block, 1, 1 << (ai - 1))
        if not used[ai].any():
            continue
        block = rows_block
        for bi in range(int(np.nonzero(used[ai])[0].max()) + 1):
            if bi:
                block = _block_max(block, 2, 1 << (bi - 1))
            if used[ai, bi]:
                offset[ai, bi] = at
                tables.append(block.reshape(-1, C))
                at += tables[-1].shape[0]
    hh, ww = H - (1 << a) + 1, W - (1 << b) + 1  # each table's rows and columns
    s, y0, y1, x0, x1 = q.T
    base = offset[a, b] + s * hh * ww
    corners = [base + yy * ww + xx for yy in (y0, y1 - (1 << a)) for xx in (x0, x1 - (1 << b))]
    return torch.cat(tables), [torch.from_numpy(c).to(x.device) for c in corners]


def _gather_max(table: torch.Tensor, corners: list[torch.Tensor], lo: int, hi: int, out: torch.Tensor,
                scratch: torch.Tensor) -> None:
    """out[:] = max of the four table rows of queries lo..hi (``out`` and ``scratch``: [hi - lo, C])."""
    torch.index_select(table, 0, corners[0][lo:hi], out=out)
    for c in corners[1:]:
        torch.index_select(table, 0, c[lo:hi], out=scratch)
        torch.maximum(out, scratch, out=out)


def level_sources(levels: Sequence[int]) -> dict[int, int]:
    """Each level's source: the next finer level that it divides (itself if none). An adaptive bin
    of level n is the exact union of the m/n x m/n level-m bins it covers, so max pools from m."""
    return {n: min((m for m in levels if m > n and m % n == 0), default=n) for n in levels}


def _coarsen(g: torch.Tensor, n: int) -> torch.Tensor:
    """[R, m, m, C] -> [R, n, n, C], each cell the max of its k x k block (k = m / n): rows, then
    columns, as maxima of contiguous slices."""
    R, m, _, C = g.shape
    k = m // n
    rows = g.reshape(R, n, k, m * C)
    r = rows[:, :, 0]
    for i in range(1, k):
        r = torch.maximum(r, rows[:, :, i])
    cols = r.reshape(R * n * n, k, C)
    out = cols[:, 0]
    for j in range(1, k):
        out = torch.maximum(out, cols[:, j])
    return out.reshape(R, n, n, C)


def pool_cells(x: torch.Tensor, cells: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """Pyramid-pool projected windows: x [S, C, H, W], cells [R, 5] int64 from ``project_windows``
    -> [R, C * sum(n^2)], levels in order, each flattened channel-major (c, yy, xx).

    The finest levels come from the sparse table, coarser ones from the finer level they divide;
    windows go WINDOW_CHUNK at a time so every intermediate stays in cache."""
    S, C, H, W = x.shape
    c = cells.cpu().numpy()
    R = c.shape[0]
    out = x.new_empty((R, C * sum(n * n for n in levels)))
    if R == 0:
        return out
    # The released code's max starts at 0: max(0, bin max), NaN skipped. Same as clamping first.
    xz = torch.where(x > 0, x, torch.zeros((), dtype=x.dtype, device=x.device))
    src = level_sources(levels)
    finest = sorted(n for n in set(levels) if src[n] == n)
    table, corners = sparse_table(xz, np.concatenate(_queries(c, finest)))
    first = dict(zip(finest, np.cumsum([0] + [R * m * m for m in finest])))  # each level's first query
    columns = np.cumsum([0] + [C * n * n for n in levels])  # each level's first output column
    k = min(WINDOW_CHUNK, R)
    buffers = {m: x.new_empty((k * m * m, C)) for m in finest}
    scratch = x.new_empty((k * max(finest) ** 2, C))
    for lo in range(0, R, WINDOW_CHUNK):
        hi = min(lo + WINDOW_CHUNK, R)
        grids = {}
        for m in finest:
            q0, q1 = first[m] + lo * m * m, first[m] + hi * m * m
            g = buffers[m][:q1 - q0]
            _gather_max(table, corners, q0, q1, g, scratch[:q1 - q0])
            grids[m] = g.view(hi - lo, m, m, C)
        for n in sorted(set(levels), reverse=True):  # coarser levels from finer ones, finest first
            if n not in grids:
                grids[n] = _coarsen(grids[src[n]], n)
        for n, col in zip(levels, columns):  # a level may be listed twice
            block = out[lo:hi, col:col + C * n * n]
            block.view(hi - lo, C, n, n).copy_(grids[n].permute(0, 3, 1, 2))
    return out


def check_windows(x: torch.Tensor, windows: torch.Tensor) -> None:
    """ValueError for what the eager op cannot pool (shapes, non-finite values, map indices)."""
    if x.dim() != 4:
        raise ValueError(f"window SPP expects feature maps [S, C, H, W], got shape {tuple(x.shape)}")
    if windows.dim() != 2 or windows.shape[1] != 5:
        raise ValueError(f"windows must be [R, 5] (index, x1, y1, x2, y2), got shape {tuple(windows.shape)}")
    if not windows.dtype.is_floating_point:
        raise ValueError(f"windows must be a floating-point tensor, got {windows.dtype}")
    if windows.shape[0] == 0:
        return
    if not bool(torch.isfinite(windows).all()):
        raise ValueError("windows hold a NaN or infinite value")
    idx = windows[:, 0]
    if bool((idx != idx.round()).any()) or bool((idx < 0).any()) or bool((idx >= x.shape[0]).any()):
        raise ValueError(f"window map index must be an integer in [0, {x.shape[0]}) (the maps' first dim)")


def window_spp_eager(x: torch.Tensor, windows: torch.Tensor, levels: Sequence[int],
                     projection: Sequence[float]) -> torch.Tensor:
    """Reference: project (float64) then pool. ``projection`` is [stride, offset0, offset]."""
    check_windows(x, windows)
    proj = WindowProjection(*projection)
    return pool_cells(x, project_windows(windows, x.shape[2], x.shape[3], proj), levels)


@torch.library.custom_op("spp_deploy::window_spatial_pyramid_pool", mutates_args=())
def window_spatial_pyramid_pool(x: torch.Tensor, windows: torch.Tensor, levels: list[int],
                                projection: list[float]) -> torch.Tensor:
    return window_spp_eager(x, windows, levels, projection)


@window_spatial_pyramid_pool.register_fake
def _(x, windows, levels, projection):
    return x.new_empty((windows.shape[0], _bins.feature_count(x.shape[1], levels)))


class WindowSpatialPyramidPool(nn.Module):
    """SPP-net window pooling: maps [S, C, H, W] + windows [R, 5] -> [R, C * sum(n^2)].

    A window row is (map index, x1, y1, x2, y2): pixel corners, inclusive, in the image the map
    at that index was computed from; 1-based (the original code) unless ``one_based=False``
    (0-based inclusive pixels). ``projection=None`` takes windows already in 1-based cells.
    Maps stacked on S share one H x W (windows are clamped to it): pool scales of different
    sizes on their own maps, as ``spp_deploy.detect`` does.

    Args:
        levels: bins per side of each level (those where the original float32 edges are exact).
        projection: maps image pixels to feature-map cells (default: ZF-5's); None: windows are cells.
        one_based: window corners are 1-based inclusive pixels (the original code), else 0-based.
    """

    def __init__(self, levels: Sequence[int] = SPPNET_LEVELS, projection: WindowProjection | None = ZF5,
                 one_based: bool = True) -> None:
        super().__init__()
        self.levels = validate_levels(levels)
        self.projection = projection or WindowProjection.identity()
        self.one_based = bool(one_based)

    def forward(self, x: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        if not self.one_based:
            windows = windows + windows.new_tensor([0.0, 1.0, 1.0, 1.0, 1.0])
        proj = self.projection.as_list()
        if torch.compiler.is_exporting() or torch.compiler.is_compiling():
            return torch.ops.spp_deploy.window_spatial_pyramid_pool(x, windows, list(self.levels), proj)
        return window_spp_eager(x, windows, self.levels, proj)

    def feature_count(self, channels: int) -> int:
        return _bins.feature_count(channels, self.levels)

    def extra_repr(self) -> str:
        p = self.projection
        return (f"levels={list(self.levels)}, stride={p.stride:g}, offset0={p.offset0:g}, offset={p.offset:g}, "
                f"one_based={self.one_based}")


# ---- window sets for parity checks: every degenerate case the op handles ----

# (S, H, W, R) of the default window parity check: odd and even maps, one cell, R = 0, 1 and thousands.
PARITY_CASES = ((1, 13, 17, 64), (2, 1, 1, 16), (1, 41, 55, 2000), (3, 7, 30, 200), (1, 20, 9, 0),
                (1, 9, 9, 1), (2, 64, 3, 300))


def parity_windows(rng: np.random.Generator, R: int, S: int, H: int, W: int, stride: float) -> np.ndarray:
    """[R, 5] float64 windows over an H x W map's image (about stride * size pixels): ordinary,
    tiny (inverted after projection), huge, partly and wholly outside, and x2 < x1."""
    iw, ih = stride * W + 2 * stride, stride * H + 2 * stride
    kind = rng.integers(0, 4, R)
    x1, y1 = rng.uniform(-0.3 * iw, 1.3 * iw, R), rng.uniform(-0.3 * ih, 1.3 * ih, R)
    scale = np.choose(kind, [np.full(R, 0.5), rng.uniform(0, 1, R), np.full(R, 2.0), np.full(R, -0.05)])
    tiny = kind == 0
    dw = np.where(tiny, rng.uniform(0, 14, R), scale * rng.uniform(0, iw, R))
    dh = np.where(tiny, rng.uniform(0, 14, R), scale * rng.uniform(0, ih, R))
    return np.stack([rng.integers(0, S, R).astype(np.float64), x1, y1, x1 + dw, y1 + dh], axis=1)
