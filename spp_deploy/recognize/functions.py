"""SPP *functions* called inside ``forward`` (seed 000/002 ``spatial_pyramid_pool``).

Replacing modules cannot reach them, so, like mmdeploy's function rewriters, we swap the
function object in the calling module's globals for the export and put it back afterwards.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from .. import bins as _bins
from .config import SppConfig
from .probe import Match, identify

SEED_PARAMS = ("previous_conv", "num_sample", "previous_conv_size", "out_pool_size")
PROBE_LEVELS = ((4, 2, 1), (3, 2, 1))


@dataclass
class FunctionSite:
    """One SPP function reachable from a module's forward: where it lives and what it computes."""

    path: str  # module path whose forward calls it
    name: str  # global name in that forward's module
    globals: dict
    func: Callable
    match: Match | None = None
    calls: list = field(default_factory=list)  # (input shape, levels) seen on the example run


def _looks_like_seed(f) -> bool:
    if not isinstance(f, types.FunctionType):
        return False
    params = [p for p in inspect.signature(f).parameters]
    return tuple(params[-4:]) == SEED_PARAMS or f.__name__ == "spatial_pyramid_pool"


def find_sites(model: nn.Module) -> list[FunctionSite]:
    """Seed-like functions that a module's ``forward`` names, one site per (globals, name)."""
    sites: dict[tuple[int, str], FunctionSite] = {}
    for path, m in model.named_modules():
        fwd = getattr(type(m), "forward", None)
        if not isinstance(fwd, types.FunctionType):
            continue
        g = fwd.__globals__
        for name in fwd.__code__.co_names:
            f = g.get(name)
            if _looks_like_seed(f) and (id(g), name) not in sites:
                sites[(id(g), name)] = FunctionSite(path or type(m).__name__, name, g, f)
    return list(sites.values())


def _call(f: Callable, x, levels):
    n_extra = len(inspect.signature(f).parameters) - 4  # the seed text has a stray ``self``
    return f(*([None] * n_extra), x, x.shape[0], [int(x.shape[2]), int(x.shape[3])], list(levels))


def identify_function(f: Callable, channels: int = 3) -> Match:
    """The (rule, mode, order) ``f`` computes, the same for every probed level list."""
    found = None
    for levels in PROBE_LEVELS:
        cands = [SppConfig(levels, m, r, o) for r in _bins.RULES for m in _bins.MODES for o in _bins.ORDERS]
        match = identify(lambda x: _call(f, x, levels), channels, cands)
        if match.status != "match":
            return match
        key = (match.config.mode, match.config.bins, match.config.order)
        if found not in (None, key):
            return Match("ambiguous", reason="the rule differs between level lists")
        found = key
    return match


def canonical_function(f: Callable, cfg: SppConfig) -> Callable:
    """A drop-in for ``f`` that calls the canonical op with the levels passed at call time.

    It returns [B, F]: the seed's ``view(num_sample, -1)`` only runs (and only makes sense)
    for num_sample == B, so the export stays valid for dynamic batch.
    """
    sig = inspect.signature(f)

    def spp_canonical(*args, **kwargs):
        a = sig.bind(*args, **kwargs).arguments
        x, levels = a[SEED_PARAMS[0]], a[SEED_PARAMS[3]]
        return SppConfig(tuple(levels), cfg.mode, cfg.bins, cfg.order).module()(x).reshape(x.shape[0], -1)

    spp_canonical.__wrapped__ = f
    return spp_canonical


def recording(f: Callable, calls: list) -> Callable:
    """``f`` that also records (input shape, levels) of each call."""
    sig = inspect.signature(f)

    def rec(*args, **kwargs):
        a = sig.bind(*args, **kwargs).arguments
        calls.append((tuple(a[SEED_PARAMS[0]].shape), tuple(a[SEED_PARAMS[3]])))
        return f(*args, **kwargs)

    return rec
