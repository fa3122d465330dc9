"""Independent slow reference for the tests: bin edges straight from docs/bin-rules.md,
computed with Python integers / Fractions / numpy float32 and pooled with explicit loops.
Deliberately shares no code with spp_deploy.ops.bins."""

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


def avg_error_bound(x: np.ndarray, levels, rule: str, order: str):
    """Per output of ``pyramid(x, levels, "avg", ...)``: how far an average pool of ``x`` computed
    in x's dtype by summing each bin's rows, then its columns, then dividing (the op and its ONNX
    lowering do that) may be from this reference, whatever the summation order.

    A sum of k terms in any order is within (k - 1) * u * sum|terms| of the exact sum (Higham,
    Accuracy and Stability of Numerical Algorithms, eq. 4.4; u = eps / 2), so the two sums and
    the division stay within (kr + kc) * u * mean|x| for a bin of kr x kc elements; the reference
    adds its own float64 sum (kr * kc * u64 * mean|x|) and its rounding to x's dtype (u * mean|x|).
    The bound below is (kr + kc + 2) * eps * mean|x| + kr * kc * eps64 * mean|x|: the worst case
    with a factor 2 to spare, so a data set cannot exceed it by chance, while a wrong bin or
    divisor moves a mean far more (the max-mode tests catch edges exactly)."""
    B, C, H, W = x.shape
    eps, eps64 = float(np.finfo(x.dtype).eps), float(np.finfo(np.float64).eps)
    abs_mean = pyramid(np.abs(x).astype(np.float64), levels, "avg", rule, order)
    if abs_mean is None:
        return None
    factors = []
    for n in levels:
        kr = np.array([r1 - r0 for r0, r1, _ in edges(rule, H, n, H)], dtype=np.float64)[:, None]
        kc = np.array([c1 - c0 for c0, c1, _ in edges(rule, W, n, H)], dtype=np.float64)[None, :]
        f = np.broadcast_to((kr + kc + 2) * eps + kr * kc * eps64, (B, C, n, n))
        if order == "bin_major":
            f = f.transpose(0, 2, 3, 1)
        factors.append(f.reshape(B, -1))
    return np.concatenate(factors, axis=1) * abs_mean


def assert_within(actual: np.ndarray, desired: np.ndarray, bound: np.ndarray) -> None:
    """|actual - desired| <= bound elementwise (same shapes, no NaN)."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape == np.shape(bound), (actual.shape, desired.shape, np.shape(bound))
    err = np.abs(actual - desired)
    bad = ~(err <= bound)
    if bad.any():
        i = tuple(int(v) for v in np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape))
        raise AssertionError(f"{bad.sum()} of {err.size} values off by more than the bound; worst at {i}: "
                             f"{actual[i]:.9g} vs {desired[i]:.9g}, off by {err[i]:.3g} > {bound[i]:.3g}")
