"""Behavioural identification: which (levels, rule, mode, order) reproduces a layer exactly.

A candidate survives only if, at every probe size, it is legal exactly where the source returns
a [B, F] result and then agrees with it (max: bit-identical; avg: 1e-12 relative in float64).
Several surviving candidates that differ somewhere are reported as ambiguous, never guessed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..ops import bins as _bins
from ..ops.pyramid import spp_eager
from .config import SppConfig

# Odd, prime, tiny, non-square and ceil_pad-illegal sizes, plus near-squares where floor_kernel
# is fixed-length; the seeded random tail varies the rest.
_FIXED_SIZES = [(13, 13), (7, 12), (8, 8), (5, 5), (9, 9), (11, 17), (6, 6), (17, 17), (1, 1), (2, 3),
                (3, 2), (25, 25), (19, 23), (24, 24), (31, 22), (14, 15), (4, 4), (12, 12), (23, 20), (10, 11)]
MAX_LEVEL = 16
MIN_EVIDENCE = 4  # probes where a surviving candidate was legal and agreed


@dataclass
class Match:
    """Outcome of probing: ``status`` is 'match', 'none' or 'ambiguous'."""

    status: str
    config: SppConfig | None = None
    candidates: list[SppConfig] = field(default_factory=list)
    reason: str = ""


def probe_sizes(count: int = 32, seed: int = 0) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    extra = [(int(h), int(w)) for h, w in rng.integers(1, 48, size=(max(count - len(_FIXED_SIZES), 0), 2))]
    return (_FIXED_SIZES + extra)[:count]


def level_candidates(per_channel: int, max_len: int = 6) -> list[tuple[int, ...]]:
    """Level sequences (distinct levels) whose squares sum to ``per_channel``.

    Every order of each set when there are few sets; only the sorted orders otherwise (a
    pyramid in another order then reports no match rather than costing seconds).
    """
    sets: list[tuple[int, ...]] = []

    def rec(rest: int, used: tuple[int, ...], top: int) -> None:
        if rest == 0:
            sets.append(used)
        elif len(used) < max_len:
            for n in range(min(top, int(rest**0.5)), 0, -1):
                rec(rest - n * n, used + (n,), n - 1)

    rec(per_channel, (), MAX_LEVEL)
    out: list[tuple[int, ...]] = []
    for s in sets:
        orders = itertools.permutations(s) if len(sets) <= 8 and len(s) <= 4 else (s, s[::-1])
        out.extend(dict.fromkeys(tuple(o) for o in orders))
    return out


def all_candidates(per_channel: int) -> list[SppConfig]:
    return [SppConfig(lv, m, r, o) for lv in level_candidates(per_channel)
            for r in _bins.RULES for m in _bins.MODES for o in _bins.ORDERS]


def _agrees(out: torch.Tensor, ref: torch.Tensor, mode: str) -> bool:
    if out.shape != ref.shape or out.dtype != ref.dtype:
        return False
    if mode == "max":
        return bool(torch.equal(out, ref))
    tol = 1e-12 if out.dtype == torch.float64 else 1e-6
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    return float((out - ref).abs().max()) <= tol * max(scale, 1e-30)


def _run(fn: Callable, x: torch.Tensor):
    try:
        with torch.no_grad():
            y = fn(x)
    except Exception:
        return None
    return y if isinstance(y, torch.Tensor) else None


def _pick_dtype(fn: Callable, channels: int) -> torch.dtype:
    """float64 separates avg pooling from a near-miss (x * 1.0000001); fall back to float32."""
    x = torch.randn(1, channels, 13, 13, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = _run(fn, x)
    return torch.float64 if y is not None and y.dtype == torch.float64 else torch.float32


def equivalent(a: SppConfig, b: SppConfig, channels: int, up_to: int = 32) -> bool:
    """Same legal sizes and same bins on every H, W <= up_to (so either may replace the layer)."""
    same_order = a.order == b.order or channels == 1 or set(a.levels) == {1}
    if a.levels != b.levels or a.mode != b.mode or not same_order:
        return False
    if a.rule == b.rule:
        return True
    for h in range(1, up_to + 1):
        for w in range(1, up_to + 1):
            ea, eb = _bins.size_error(a.rule, h, w, a.levels), _bins.size_error(b.rule, h, w, b.levels)
            if (ea is None) != (eb is None):
                return False
            if ea is None:
                for n in a.levels:
                    for ba, bb in zip(_bins.level_bins(a.rule, h, w, n), _bins.level_bins(b.rule, h, w, n)):
                        if not (np.array_equal(ba.start, bb.start) and np.array_equal(ba.end, bb.end)
                                and np.array_equal(np.broadcast_to(ba.span, ba.start.shape),
                                                   np.broadcast_to(bb.span, bb.start.shape))):
                            return False
    return True


def identify(
    fn: Callable[[torch.Tensor], torch.Tensor],
    channels: int,
    candidates: Iterable[SppConfig] | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
) -> Match:
    """Probe ``fn`` ([B, C, H, W] -> [B, F]) and find the config that reproduces it exactly.

    Args:
        fn: the layer, or any callable from a map to a feature vector.
        channels: C of the probe inputs.
        candidates: the configs to try (default: every config whose length fits the output's).
        sizes: the (H, W) probe sizes (default: ``probe_sizes``, 32 sizes).
        seed: seeds the probe data.

    Returns:
        ``match`` with the one config, ``ambiguous`` with several, or ``none``.
    """
    gen = torch.Generator().manual_seed(seed)
    dtype = _pick_dtype(fn, channels)
    sizes = list(sizes or probe_sizes(seed=seed))
    alive = list(candidates) if candidates is not None else None
    evidence: dict[SppConfig, int] = {}
    ran = 0
    for h, w in sizes:
        x = torch.randn(1, channels, h, w, generator=gen, dtype=dtype)
        y = _run(fn, x)
        ok = y is not None and y.dim() == 2 and y.shape[0] == 1
        if ok and alive is None:
            if y.shape[1] % channels:
                return Match("none", reason=f"output width {y.shape[1]} is not a multiple of C={channels}")
            alive = all_candidates(int(y.shape[1]) // channels)
        ran += ok
        if alive is None:
            continue
        survivors = []
        for cfg in alive:
            legal = _bins.size_error(cfg.rule, h, w, cfg.levels) is None
            src_ok = ok and int(y.shape[1]) == cfg.feature_count(channels)
            if legal != src_ok:
                continue
            if legal and not _agrees(y, spp_eager(x, cfg.levels, cfg.mode, cfg.rule, cfg.order), cfg.mode):
                continue
            survivors.append(cfg)
            evidence[cfg] = evidence.get(cfg, 0) + legal
        alive = survivors
        if not alive:
            return Match("none", reason=f"no (levels, rule, mode, order) reproduces it at {h}x{w}")
    if not ran or not alive:
        return Match("none", reason="it never mapped [1, C, H, W] to [1, F] on the probes")
    alive = [c for c in alive if evidence.get(c, 0) >= MIN_EVIDENCE]
    if not alive:
        return Match("none", reason=f"fewer than {MIN_EVIDENCE} probes where a candidate applies")
    return _decide(alive, channels)


def _decide(alive: list[SppConfig], channels: int) -> Match:
    groups: list[list[SppConfig]] = []
    for cfg in alive:
        for g in groups:
            if equivalent(g[0], cfg, channels):
                g.append(cfg)
                break
        else:
            groups.append([cfg])
    if len(groups) > 1:
        return Match("ambiguous", candidates=[g[0] for g in groups],
                     reason=f"{len(groups)} different configurations agree on every probe")
    pref = {r: i for i, r in enumerate(_bins.RULES)}
    best = min(groups[0], key=lambda c: (pref[c.rule], _bins.ORDERS.index(c.order)))
    return Match("match", best, groups[0])

