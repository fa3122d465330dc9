"""Tabulated pyramids: SPP layers whose bins follow no named rule, reproduced from measured tables.

A ``TableSpec`` holds, for every bin of one channel and every size S up to ``limit`` of each axis,
the bin's real extent [start, end) on that axis, whether it touches zero padding (max mode:
the bin's maximum is then at least 0), and (avg mode) the axis' factor of the divisor. The tables
come from probing the user's layer as a black box (``spp_deploy.recognize.table_probe``); this
module only evaluates them: eagerly (``tabulated_eager``, the reference that the probe verifies
against the layer) and as a ``torch.library`` custom op that the exporter turns into one
``spp_deploy.TabulatedPyramidPool`` node, lowered by ``spp_deploy.export.lowering``.

Sizes past ``limit`` are not guessed: the eager op raises and the graph outputs NaN.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .pyramid import exporting

LAYOUTS = ("flat", "3d_cl", "3d_lc")  # [B, F] with a feature permutation, [B, C, L], [B, L, C]


@dataclass(eq=False)
class AxisTable:
    """Per-bin tables of one axis, indexed by size 0..limit+1 (rows 0 and limit+1: illegal)."""

    start: np.ndarray  # [limit+2, L] int64: first real index of the bin
    end: np.ndarray  # [limit+2, L] int64: one past the last real index (== start: no real element)
    pad: np.ndarray  # [limit+2, L] bool: max mode, the bin also covers zero padding on this axis
    div: np.ndarray  # [limit+2, L] float64: avg mode, this axis' factor of the divisor
    legal: np.ndarray  # [limit+2] bool: the layer is defined and fixed-length at this size

    @property
    def limit(self) -> int:
        return int(self.legal.shape[0]) - 2

    def at(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        i = min(int(size), self.limit + 1)
        return self.start[i], self.end[i], self.pad[i], self.div[i]

    def illegal_sizes(self) -> list[int]:
        return [s for s in range(1, self.limit + 1) if not self.legal[s]]


@dataclass(eq=False)
class TableSpec:
    """Everything the tabulated op needs: mode, per-bin tables for H and W, and the output layout.

    ``perm`` (layout "flat"): output feature f is canonical feature perm[f], where the canonical
    order is channel-outer (c * L + k). ``None`` means the identity.
    """

    mode: str
    channels: int
    rows: AxisTable
    cols: AxisTable
    layout: str = "flat"
    perm: np.ndarray | None = None
    source: str = ""  # the layer's module path or function, for messages
    key: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}")
        h = hashlib.sha1()
        for a in (self.rows.start, self.rows.end, self.rows.pad, self.rows.div, self.rows.legal,
                  self.cols.start, self.cols.end, self.cols.pad, self.cols.div, self.cols.legal):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(f"{self.mode}/{self.channels}/{self.layout}".encode())
        if self.perm is not None:
            h.update(np.ascontiguousarray(self.perm).tobytes())
        self.key = h.hexdigest()[:16]
        _REGISTRY[self.key] = self

    @property
    def bins_per_channel(self) -> int:
        """L: bins per channel."""
        return int(self.rows.start.shape[1])

    @property
    def limit(self) -> int:
        return min(self.rows.limit, self.cols.limit)

    def output_shape(self, batch):
        C, L = self.channels, self.bins_per_channel
        return {"flat": (batch, C * L), "3d_cl": (batch, C, L), "3d_lc": (batch, L, C)}[self.layout]

    def size_error(self, h: int, w: int) -> str | None:
        for axis, t, s in (("H", self.rows, h), ("W", self.cols, w)):
            if s > t.limit:
                return f"{axis}={s} is beyond the probed range (tabulated for sizes <= {t.limit})"
            if not t.legal[s]:
                return f"the layer is not defined (or not fixed-length) at {axis}={s} (input {h}x{w})"
        return None

    def groups(self) -> list[tuple[list[int], list[int], list[int]]]:
        """Bins grouped into levels: (row bins, col bins, bins), where every bin's row extent
        equals one of the group's row bins and its column extent one of its column bins, and the
        group is the product of the two (a pyramid level). Lowering pools each group as a grid."""
        rk, ck = unique_columns(self.rows), unique_columns(self.cols)
        parent: dict[tuple, tuple] = {}

        def find(a: tuple) -> tuple:
            while parent.setdefault(a, a) != a:
                a = parent[a]
            return a

        for k in range(self.bins_per_channel):  # a row bin and a column bin used together share a group
            parent[find(("r", rk[k]))] = find(("c", ck[k]))
        out: dict[tuple, tuple[list[int], list[int], list[int]]] = {}
        for k in range(self.bins_per_channel):
            rows, cols, ks = out.setdefault(find(("r", rk[k])), ([], [], []))
            if rk[k] not in rows:
                rows.append(rk[k])
            if ck[k] not in cols:
                cols.append(ck[k])
            ks.append(k)
        return list(out.values())


def unique_columns(t: AxisTable) -> list[int]:
    """For each bin, the id of the first bin with the same extent and padding at every size."""
    ids: list[int] = []
    seen: dict[bytes, int] = {}
    for k in range(t.start.shape[1]):
        sig = b"".join(np.ascontiguousarray(a[:, k]).tobytes() for a in (t.start, t.end, t.pad))
        ids.append(seen.setdefault(sig, k))
    return ids


_REGISTRY: dict[str, TableSpec] = {}


def get_spec(key: str) -> TableSpec:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise ValueError(f"no tabulated SPP layer with key {key!r} in this process") from None


def _axis_pool(x: torch.Tensor, dim: int, start: np.ndarray, end: np.ndarray, mode: str) -> torch.Tensor:
    """[.., S, ..] -> [.., L, ..]: bin k pools [start_k, end_k) of axis ``dim`` (empty: any value)."""
    size = np.maximum(end - start, 0)
    k = max(int(size.max()), 1)
    t = np.arange(k)
    last = np.maximum(start + size - 1, start)
    idx = np.minimum(np.minimum(start[:, None] + t[None, :], last[:, None]), x.shape[dim] - 1)
    g = x.index_select(dim, torch.as_tensor(idx.reshape(-1), device=x.device))
    shape = list(x.shape)
    shape[dim: dim + 1] = [len(start), k]
    g = g.reshape(shape)
    if mode == "max":
        return g.amax(dim + 1)
    mask_shape = [1] * len(shape)
    mask_shape[dim: dim + 2] = [len(start), k]
    mask = torch.as_tensor(t[None, :] < size[:, None], device=x.device).reshape(mask_shape)
    return torch.where(mask, g, torch.zeros((), dtype=g.dtype, device=g.device)).sum(dim + 1)


def tabulated_eager(x: torch.Tensor, spec: TableSpec) -> torch.Tensor:
    """The tabulated layer on a concrete [B, C, H, W]; ``ValueError`` where it is undefined."""
    if x.dim() != 4:
        raise ValueError(f"SPP expects a [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    B, C, H, W = x.shape
    if C != spec.channels:
        raise ValueError(f"tabulated SPP layer was probed with C={spec.channels}, got C={C}")
    why = spec.size_error(H, W)
    if why:
        raise ValueError(why)
    rs, re_, rp, rd = spec.rows.at(H)
    cs, ce, cp, cd = spec.cols.at(W)
    L = spec.bins_per_channel
    # Rows per bin, then each bin's own columns: [B, C, L, W] -> diagonal of [B, C, L, L].
    rows = _axis_pool(x, 2, rs, re_, spec.mode)  # [B, C, L, W]
    y = torch.stack([_axis_pool(rows[:, :, k: k + 1], 3, cs[k: k + 1], ce[k: k + 1], spec.mode)[:, :, 0, 0]
                     for k in range(L)], dim=2)  # [B, C, L]
    empty = torch.as_tensor((re_ <= rs) | (ce <= cs))
    if spec.mode == "max":
        pad = torch.as_tensor(rp | cp)
        y = torch.where(pad, torch.maximum(y, torch.zeros((), dtype=y.dtype)), y)
    else:
        y = y / torch.as_tensor(rd * cd, dtype=torch.float64).to(y.dtype)
    y = torch.where(empty, torch.zeros((), dtype=y.dtype), y)
    return _layout(y, spec)


def _layout(y: torch.Tensor, spec: TableSpec) -> torch.Tensor:
    if spec.layout == "3d_cl":
        return y
    if spec.layout == "3d_lc":
        return y.transpose(1, 2)
    flat = y.reshape(y.shape[0], -1)
    return flat if spec.perm is None else flat[:, torch.as_tensor(spec.perm)]


@torch.library.custom_op("spp_deploy::tabulated_pyramid_pool", mutates_args=())
def tabulated_pyramid_pool(x: torch.Tensor, key: str) -> torch.Tensor:
    return tabulated_eager(x, get_spec(key))


@tabulated_pyramid_pool.register_fake
def _(x, key):
    return x.new_empty(get_spec(key).output_shape(x.shape[0]))


class TabulatedPyramidPool(nn.Module):
    """Drop-in for a probed SPP layer: exact (as verified) for H, W <= ``spec.limit``."""

    def __init__(self, spec: TableSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting():
            return torch.ops.spp_deploy.tabulated_pyramid_pool(x, self.spec.key)
        return tabulated_eager(x, self.spec)

    def extra_repr(self) -> str:
        s = self.spec
        return f"mode={s.mode!r}, bins_per_channel={s.bins_per_channel}, channels={s.channels}, layout={s.layout!r}, limit={s.limit}"
