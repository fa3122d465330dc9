"""Independent slow reference for the tests: bin edges straight from docs/bin-rules.md,
computed with Python integers / Fractions / numpy float32 and pooled with explicit loops.
Deliberately shares no code with spp_deploy.bins."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def edges(rule: str, S: int, n: int, H: int):
    """[(start, end, divisor_factor)] for each bin, or None where the source layer breaks."""
    if rule == "adaptive":
        return [(math.floor(Fraction(i * S, n)), math.ceil(Fraction((i + 1) * S, n)), None) for i in range(n)]
    if rule == "ceil_pad":
        k = math.ceil(Fraction(S, n))
        p = (k * n - S + 1) // 2
        if p > k // 2:
            return None
        return [(max(0, i * k - p), min(S, i * k - p + k), k) for i in range(n)]
    if rule == "floor_kernel":
        k = H // n
        if k == 0 or S // k != n:
            return None
        return [(i * k, (i + 1) * k, None) for i in range(n)]
    if rule == "rounded":
        if S < n:
            return None
        L = np.float32(S) / np.float32(n)
        out = []
        for i in range(n):
            lo = np.float32(np.float32(i) * L)
            out.append((int(np.rint(lo)), int(np.rint(np.float32(lo + L))), None))
        return out
    raise AssertionError(rule)


def pyramid(x: np.ndarray, levels, mode: str, rule: str, order: str):
    """[B, C*sum(n^2)] float64-accumulated reference, or None where the rule breaks."""
    B, C, H, W = x.shape
    feats = []
    for n in levels:
        rows, cols = edges(rule, H, n, H), edges(rule, W, n, H)
        if rows is None or cols is None:
            return None
        lvl = np.empty((B, C, n, n), dtype=x.dtype)
        for i, (r0, r1, kr) in enumerate(rows):
            for j, (c0, c1, kc) in enumerate(cols):
                win = x[:, :, r0:r1, c0:c1].reshape(B, C, -1)
                if mode == "max":
                    has_nan = np.isnan(win).any(axis=2)
                    lvl[:, :, i, j] = np.where(has_nan, np.nan, win.max(axis=2))
                else:
                    div = (kr or (r1 - r0)) * (kc or (c1 - c0))
                    lvl[:, :, i, j] = win.astype(np.float64).sum(axis=2) / div
        if order == "bin_major":
            lvl = lvl.transpose(0, 2, 3, 1)
        feats.append(lvl.reshape(B, -1))
    return np.concatenate(feats, axis=1)
