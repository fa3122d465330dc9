"""Image scales of the SPP-net pipeline (spec section 1): resizing, preprocessing, the scale of
each window and the mapping of its box into that scale."""

from __future__ import annotations

from typing import Sequence

import numbers

import numpy as np

from ..util.errors import UserError

SINGLE_SCALE = (688,)
FIVE_SCALES = (480, 576, 688, 874, 1200)  # the released code (the paper prints 864)
PIXEL_MEAN = 128.0


def resized_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """(H, W) with the shorter side ``scale`` and the longer one round-half-up(L * scale / m)."""
    m = min(height, width)
    f = lambda v: scale if v == m else int(np.floor(v * scale / m + 0.5))  # noqa: E731
    return f(height), f(width)


def preprocess(image: np.ndarray, scale: int) -> np.ndarray:
    """[H, W, 3] RGB (0..255) -> [1, 3, h, w] float32 BGR minus 128 at ``scale``: bilinear with
    half-pixel centres, no antialiasing (torch ``interpolate``, ``align_corners=False``)."""
    import torch
    import torch.nn.functional as F

    h, w = resized_size(image.shape[0], image.shape[1], scale)
    x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1], dtype=np.float32)).permute(2, 0, 1)[None]
    if (h, w) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    return np.ascontiguousarray((x - PIXEL_MEAN).numpy(), dtype=np.float32)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def choose_scales(boxes: np.ndarray, height: int, width: int, scales: Sequence[int],
                  area_constant: float) -> np.ndarray:
    """Index into ``scales`` per box: the scale nearest round(area_constant * m / sqrt(area)),
    ties to the first (give scales ascending: ties then go to the smaller)."""
    if len(scales) == 1:
        return np.zeros(len(boxes), dtype=np.int64)
    m = float(min(height, width))
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    expected = _round_half_away(area_constant * m / np.sqrt(area))
    return np.argmin(np.abs(np.asarray(scales, dtype=np.float64)[None, :] - expected[:, None]), axis=1)


def map_boxes(boxes: np.ndarray, height: int, width: int, scale: int) -> np.ndarray:
    """1-based inclusive boxes of the original image -> the image resized to ``scale`` (float64)."""
    m = float(min(height, width))
    return (np.asarray(boxes, dtype=np.float64) - 1) * (scale - 1) / (m - 1) + 1


def normalize_scales(scales) -> list[int]:
    """``scales`` as sorted distinct positive ints: one number (688) or a sequence; a string is
    parsed as the command line's ``480,576,688``. Non-integers are refused, not truncated."""
    if isinstance(scales, str):
        scales = scales.split(",")
    elif isinstance(scales, (numbers.Number, np.generic)):
        scales = [scales]
    try:
        given = list(scales)
    except TypeError:
        raise UserError(f"expected a positive integer or a sequence of them, got {scales!r}", option="scales") from None
    out = []
    for v in given:
        if isinstance(v, str):
            v = v.strip()
            v = int(v) if v.isdigit() else v
        ok = isinstance(v, (numbers.Real, np.generic)) and not isinstance(v, (bool, np.bool_)) and float(v).is_integer()
        if not ok or v < 1:
            raise UserError(f"expected distinct integers >= 1 (e.g. 688 or 480,576,688,874,1200), got "
                            f"{', '.join(map(str, given))}", option="scales")
        out.append(int(v))
    if not out or len(set(out)) != len(out):
        raise UserError(f"expected distinct integers >= 1 (e.g. 688 or 480,576,688,874,1200), got "
                        f"{', '.join(map(str, given)) or 'none'}", option="scales")
    return sorted(out)
