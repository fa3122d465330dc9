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


def random_windows(rng: np.random.Generator, R: int, S: int, H: int, W: int, stride: float = 16.0) -> np.ndarray:
    """Windows in the pixel frame of an H x W map: a mix of tiny (inverted after projection),
    ordinary, huge, partly and wholly outside the map, and x2 < x1 boxes."""
    img_w, img_h = stride * W + 30, stride * H + 30
    kind = rng.integers(0, 5, R)
    x1 = rng.uniform(-0.3 * img_w, 1.3 * img_w, R)
    y1 = rng.uniform(-0.3 * img_h, 1.3 * img_h, R)
    size_w = np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                       [rng.uniform(0, 15, R), rng.uniform(15, img_w / 2, R), rng.uniform(img_w, 2 * img_w, R),
                        -rng.uniform(0, 40, R)], rng.uniform(0, img_w, R))
    size_h = np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                       [rng.uniform(0, 15, R), rng.uniform(15, img_h / 2, R), rng.uniform(img_h, 2 * img_h, R),
                        -rng.uniform(0, 40, R)], rng.uniform(0, img_h, R))
    ints = rng.random(R) < 0.3  # integer pixel boxes, as proposal files hold
    x1, y1 = np.where(ints, np.round(x1), x1), np.where(ints, np.round(y1), y1)
    x2, y2 = np.where(ints, np.round(x1 + size_w), x1 + size_w), np.where(ints, np.round(y1 + size_h), y1 + size_h)
    return np.stack([rng.integers(0, S, R).astype(np.float64), x1, y1, x2, y2], axis=1)


def random_maps(rng: np.random.Generator, S: int, C: int, H: int, W: int, specials: bool) -> np.ndarray:
    x = rng.standard_normal((S, C, H, W)).astype(np.float32)
    if specials:  # NaN and -0.0 are never the max of a zero-initialised accumulator
        x.ravel()[rng.integers(0, x.size, max(1, x.size // 50))] = np.nan
        x.ravel()[rng.integers(0, x.size, max(1, x.size // 50))] = -0.0
    return x
