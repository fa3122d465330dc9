"""Straightforward SPP-net window pooling written from the spec (window-spp.md sections 2-3),
independent of spp_deploy: one window, one bin at a time, the released C++ loop's arithmetic."""

import math

import numpy as np


def _c_div2(v: int) -> int:
    """C integer division by 2 (truncates toward zero)."""
    return int(v / 2) if v >= 0 else -int(-v / 2)


def project(box, H, W, stride=16.0, offset0=21.0, offset=6.5):
    x0, y0, x1, y1 = (float(v) for v in box)
    left = math.floor((x0 - offset0 + offset) / stride + 0.5) + 1
    top = math.floor((y0 - offset0 + offset) / stride + 0.5) + 1
    right = math.ceil((x1 - offset0 - offset) / stride - 0.5) + 1
    bottom = math.ceil((y1 - offset0 - offset) / stride - 0.5) + 1
    if left > right:
        left = right = _c_div2(left + right)
    if top > bottom:
        top = bottom = _c_div2(top + bottom)
    clamp = lambda v, hi: min(max(v, 1), hi)  # noqa: E731
    return clamp(left, W), clamp(top, H), clamp(right, W), clamp(bottom, H)


def pool(maps: np.ndarray, windows: np.ndarray, levels=(1, 2, 3, 6), projection=(16.0, 21.0, 6.5)) -> np.ndarray:
    """maps [S, C, H, W], windows [R, 5] -> [R, C * sum(n^2)] (level order, channel-major)."""
    S, C, H, W = maps.shape
    out = np.zeros((len(windows), C * sum(n * n for n in levels)), dtype=maps.dtype)
    for r, (s, *box) in enumerate(windows):
        left, top, right, bottom = project(box, H, W, *projection)
        h, w = bottom - top + 1, right - left + 1
        parts = []
        for n in levels:
            level = np.zeros((C, n, n), dtype=maps.dtype)
            for yy in range(n):
                ys = (yy * h) // n + top - 1
                ye = -((-(yy + 1) * h) // n) + top - 1
                for xx in range(n):
                    xs = (xx * w) // n + left - 1
                    xe = -((-(xx + 1) * w) // n) + left - 1
                    cells = maps[int(s), :, ys:ye, xs:xe].reshape(C, -1)
                    # acc = 0; for v in bin: if (v > acc) acc = v;  (NaN and -0.0 never win)
                    level[:, yy, xx] = np.where(cells > 0, cells, 0).max(axis=1)
            parts.append(level.reshape(-1))
        out[r] = np.concatenate(parts)
    return out
