"""Recognizers for the SPP implementations users copy: by type/structure, then confirmed by probing.

Each returns a ``Hint``: what the layer looks like and the config(s) it should compute; the
caller confirms the hint behaviourally before anything is rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import torch
from torch import nn

from ..ops.pyramid import SpatialPyramidPool
from .config import SppConfig


@dataclass
class Hint:
    kind: str  # human-readable source of the layer (display only: decisions read ``by``)
    candidates: list[SppConfig] = field(default_factory=list)
    yolo: str | None = None  # 'SPP' or 'SPPF': not binned SPP, shape-preserving
    by: Found | None = None  # how it was found (default: TYPE, or YOLO for yolo blocks)

    def __post_init__(self) -> None:
        if self.by is None:
            self.by = Found.YOLO if self.yolo else Found.TYPE


class Found(Enum):
    """How a layer was recognized before probing confirms it."""

    CANONICAL = "canonical"  # already our SpatialPyramidPool
    TYPE = "type"  # by its class and attributes
    STRUCTURE = "structure"  # by its children (adaptive pools)
    YOLO = "yolo"  # ultralytics SPP / SPPF (not binned SPP)


def _param_free(m: nn.Module) -> bool:
    return next(m.parameters(), None) is None


def _canonical(m: nn.Module) -> Hint | None:
    if isinstance(m, SpatialPyramidPool):
        return Hint("canonical SpatialPyramidPool", [SppConfig(m.levels, m.mode, m.rule, m.order)], by=Found.CANONICAL)
    return None


def _spp_layer(m: nn.Module) -> Hint | None:
    """Seed 003 SPPLayer: ``num_levels`` + ``pool_type``; level i uses n = 2**i."""
    lv, pt = getattr(m, "num_levels", None), getattr(m, "pool_type", None)
    if isinstance(lv, int) and lv >= 1 and isinstance(pt, str) and _param_free(m):
        mode = "max" if pt == "max_pool" else "avg"
        return Hint("SPPLayer (erogol spp)", [SppConfig(tuple(2**i for i in range(lv)), mode, "floor_kernel")])
    return None


def _keras(m: nn.Module) -> Hint | None:
    """Seed 004 Keras SpatialPyramidPooling port: ``pool_list``, rounded bins, bin-major order."""
    pl = getattr(m, "pool_list", None)
    if isinstance(pl, (list, tuple)) and pl and all(isinstance(n, int) for n in pl) and _param_free(m):
        return Hint("Keras SpatialPyramidPooling port (keras-spp)", [SppConfig(tuple(pl), "max", "rounded", "bin_major")])
    return None


def _square_size(o) -> int | None:
    if isinstance(o, int):
        return o
    if isinstance(o, (tuple, list)) and len(o) == 2 and o[0] == o[1] and isinstance(o[0], int):
        return o[0]
    return None


def _adaptive_pyramid(m: nn.Module) -> Hint | None:
    """A parameter-free container of nn.AdaptiveMax/AvgPool2d (torch.cat of flattened pools)."""
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)) or not _param_free(m):
        return None
    pools = [c for c in m.modules() if c is not m and not isinstance(c, (nn.ModuleList, nn.ModuleDict))]
    if not pools:
        return None
    types = {type(p) for p in pools}
    if types not in ({nn.AdaptiveMaxPool2d}, {nn.AdaptiveAvgPool2d}):
        return None
    levels = [_square_size(p.output_size) for p in pools]
    if None in levels or len(set(levels)) != len(levels):
        return None
    mode = "max" if types == {nn.AdaptiveMaxPool2d} else "avg"
    return Hint(f"adaptive {mode} pool pyramid", [SppConfig(tuple(levels), mode, "adaptive")], by=Found.STRUCTURE)


def _yolo(m: nn.Module) -> Hint | None:
    """Ultralytics SPP (ModuleList of stride-1 max pools) or SPPF (one pool used three times)."""
    if not (hasattr(m, "cv1") and hasattr(m, "cv2")):
        return None
    pools = getattr(m, "m", None)
    if isinstance(pools, nn.MaxPool2d) and _stride1_same(pools):
        return Hint("ultralytics SPPF", yolo="SPPF")
    if isinstance(pools, nn.ModuleList) and pools and all(isinstance(p, nn.MaxPool2d) and _stride1_same(p) for p in pools):
        return Hint("ultralytics SPP", yolo="SPP")
    return None


def _stride1_same(p: nn.MaxPool2d) -> bool:
    k = p.kernel_size if isinstance(p.kernel_size, int) else p.kernel_size[0]
    return p.stride in (1, (1, 1)) and p.padding in (k // 2, (k // 2, k // 2)) and p.dilation in (1, (1, 1)) \
        and k % 2 == 1 and p.kernel_size in (k, (k, k)) and not p.ceil_mode


RECOGNIZERS = (_canonical, _yolo, _spp_layer, _keras, _adaptive_pyramid)


def hint_for(m: nn.Module) -> Hint | None:
    for r in RECOGNIZERS:
        h = r(m)
        if h is not None:
            return h
    return None


def sppf_kernel(spp: nn.Module) -> int | None:
    """k when the SPP pools are (k, 2k-1, 3k-2, ...): then cascaded k x k pools equal them (max)."""
    ks = [p.kernel_size if isinstance(p.kernel_size, int) else p.kernel_size[0] for p in spp.m]
    k = ks[0]
    return k if k > 1 and ks == [1 + (i + 1) * (k - 1) for i in range(len(ks))] else None


def carry_attributes(old: nn.Module, new: nn.Module) -> nn.Module:
    """Give ``new`` (a module replacing ``old`` in a model) the plain attributes of ``old`` that it
    does not define itself, and ``old``'s train/eval flag.

    Models that walk their layers read such attributes: ultralytics' forward loop reads ``f``,
    ``i``, ``type`` and ``np`` from every layer (``type`` shadowing ``nn.Module.type``).
    Parameters, buffers and submodules are not in ``__dict__``; names starting with ``_``
    (nn.Module's hooks and bookkeeping, a compiled call) and names that ``new``'s class defines
    beyond ``nn.Module`` (its ``forward``, properties) are left alone.
    """
    for name, value in vars(old).items():
        if name.startswith("_") or name == "training" or name in vars(new) or name in new._modules \
                or getattr(type(new), name, None) is not getattr(nn.Module, name, None):
            continue
        new.__dict__[name] = value
    new.training = old.training
    return new


class SPPFRewrite(nn.Module):
    """Ultralytics SPP computed as SPPF: cascaded k x k pools replace the parallel big pools."""

    def __init__(self, spp: nn.Module, k: int) -> None:
        super().__init__()
        self.cv1, self.cv2, self.n = spp.cv1, spp.cv2, len(spp.m)
        self.m = nn.MaxPool2d(k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(self.n):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))
