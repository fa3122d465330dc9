"""Measured bin tables that are a named rule in another output layout.

A layer that tabulation measured (``table_probe.py``) may still pool by a named rule and only lay its
features out differently: e.g. ``nn.AdaptiveMaxPool2d`` outputs kept 3-D and concatenated per
channel (``[B, C, sum n^2]``). When every level of the tables equals a named rule's bins at every
probed size of both axes, the layer is exported as the canonical op (symbolic edges, no size
limit) followed by a constant feature permutation and reshape, instead of by the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..ops import bins as _bins
from ..ops.table_pyramid import AxisTable, TableSpec, unique_columns
from .config import SppConfig

# floor_kernel's column bins depend on H: a per-axis table (which tabulation verified separable)
# cannot be it.
_PER_AXIS_RULES = tuple(r for r in _bins.RULES if r != "floor_kernel")


@dataclass(frozen=True)
class Reordered:
    """The canonical op for ``config`` (channel_major), then ``out = y[:, index]`` reshaped to
    ``[B, *tail]``: the layer's own feature order and rank."""

    config: SppConfig
    index: tuple[int, ...]
    tail: tuple[int, ...]
    layout: str

    def module(self) -> nn.Module:
        return ReorderedPyramidPool(self.config, self.index, self.tail)

    def describe(self) -> str:
        shape = {"flat": "[B, F], own feature order", "3d_cl": "[B, C, L]", "3d_lc": "[B, L, C]"}[self.layout]
        return f"{self.config.rule} {self.config.mode} levels {list(self.config.levels)}, output {shape}"


class ReorderedPyramidPool(nn.Module):
    """SpatialPyramidPool, then a fixed gather and reshape into the source layer's layout."""

    def __init__(self, config: SppConfig, index, tail) -> None:
        super().__init__()
        self.spp = config.module()
        self.register_buffer("index", torch.as_tensor(list(index), dtype=torch.int64), persistent=False)
        self.tail = tuple(tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.spp(x).index_select(1, self.index)
        return y.reshape(y.shape[0], *self.tail)


def _axis_match(t: AxisTable, ids: list[int], rule: str, n: int, mode: str, legal: np.ndarray) -> list[int] | None:
    """For the table bins ``ids`` (one level's bins on this axis), the named bin i each one is, when
    every one equals a distinct bin of ``rule`` at level n at every legal size; else None."""
    if len(ids) != n:
        return None
    sizes = np.flatnonzero(legal)
    got = _bins.axis_bins(rule, sizes[:, None], n)
    starts = np.broadcast_to(got.start, (len(sizes), n))
    ends = np.broadcast_to(got.end, (len(sizes), n))
    span = np.broadcast_to(got.span, (len(sizes), n))
    out = []
    for k in ids:
        same = [i for i in range(n)
                if np.array_equal(t.start[sizes, k], starts[:, i]) and np.array_equal(t.end[sizes, k], ends[:, i])
                and not t.pad[sizes, k].any()
                and (mode == "max" or np.array_equal(t.div[sizes, k], span[:, i].astype(np.float64)))]
        if len(same) != 1:
            return None
        out.append(same[0])
    return out if sorted(out) == list(range(n)) else None


def _legal(rule: str, levels: tuple[int, ...], limit: int) -> np.ndarray:
    s = np.arange(limit + 2)
    ok = s >= 1
    for n in levels:
        valid = np.asarray(_bins.axis_bins(rule, s[:, None], n).valid)  # [sizes, 1] or [sizes, n]
        ok &= np.broadcast_to(valid, (len(s), n)).all(axis=1)
    ok[limit + 1] = False
    return ok


def named_layout(spec: TableSpec) -> Reordered | None:
    """The named rule and feature map that reproduce ``spec`` exactly at every tabulated size, or
    None. Levels are the tables' grids (square ones only), in the order of their first bin."""
    groups = spec.groups()
    if any(len(rows) != len(cols) for rows, cols, _ in groups):
        return None
    levels = tuple(len(rows) for rows, _, _ in groups)
    offsets = np.cumsum([0] + [n * n for n in levels])
    C, L = spec.channels, spec.bins_per_channel
    rk, ck = unique_columns(spec.rows), unique_columns(spec.cols)  # bin k -> its group's row/col bin id
    for rule in _PER_AXIS_RULES:
        legal = _legal(rule, levels, spec.limit)
        if not (np.array_equal(legal, spec.rows.legal) and np.array_equal(legal, spec.cols.legal)):
            continue
        # named index within channel-major output of bin k of channel c: C * offset + c * n^2 + i * n + j
        where = np.empty(L, dtype=np.int64)
        per_c = np.empty(L, dtype=np.int64)
        for (rows, cols, ks), n, off in zip(groups, levels, offsets):
            ri = _axis_match(spec.rows, rows, rule, n, spec.mode, legal)
            ci = _axis_match(spec.cols, cols, rule, n, spec.mode, legal)
            if ri is None or ci is None:
                break
            row_of, col_of = dict(zip(rows, ri)), dict(zip(cols, ci))
            for k in ks:
                where[k] = C * off + row_of[rk[k]] * n + col_of[ck[k]]
                per_c[k] = n * n
        else:
            # canon[c * L + k]: where the layer's canonical feature (channel c, bin k) is in ours
            canon = (where[None, :] + np.arange(C)[:, None] * per_c[None, :]).reshape(-1)
            if spec.layout == "flat":
                index, tail = (canon if spec.perm is None else canon[spec.perm]), (C * L,)
            elif spec.layout == "3d_cl":
                index, tail = canon, (C, L)
            else:  # 3d_lc: out[b, k, c]
                index, tail = canon.reshape(C, L).T.reshape(-1), (L, C)
            cfg = SppConfig(levels, spec.mode, rule, "channel_major")
            return Reordered(cfg, tuple(int(v) for v in index), tail, spec.layout)
    return None

