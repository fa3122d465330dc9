"""Real inputs for ``run`` / ``validate --images``: an image at its native size (no resize) or a
``.npy`` array, as an NCHW float32 batch of one. Whatever would be read wrongly (an archive
under a .npy name, a 16-bit image squeezed into 8 bits, NaN pixels) is refused in one line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError, first_line
from .extras import pip_install_hint

# Pillow modes whose pixels are 16-bit integers (PNG opens 16-bit grayscale as one of these).
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def read_npy(p: Path) -> np.ndarray:
    """A .npy array (no pickles), or a one-line ``UserError`` (a .npz archive included)."""
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:
        raise UserError(f"cannot read {p} as a .npy array: {first_line(e)}") from None
    if not isinstance(arr, np.ndarray):  # np.load opens a .npz archive whatever the file's name
        names = ", ".join(arr.files) or "none"
        arr.close()
        raise UserError(f"{p} is a .npz archive (arrays: {names}), not a .npy array: save one array with np.save")
    return arr


def require_real_finite(arr: np.ndarray, p: Path) -> np.ndarray:
    """``arr`` when it holds real numbers and no NaN or infinity (they would flow through the
    model as numbers, or vanish in a max), else a one-line ``UserError``."""
    if arr.dtype.kind not in "fiu":
        raise UserError(f"{p} holds {arr.dtype} values: expected real numbers (float or integer)")
    if arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise UserError(f"{p} holds {bad} NaN or infinite value(s) of {arr.size}: expected finite numbers")
    return arr


def read_rgb(p: Path, npy_hint: str) -> np.ndarray:
    """An image file as H x W x 3 RGB float32 on the 0..255 scale through Pillow (the ``image``
    extra): 16-bit grayscale is scaled from 0..65535, not clipped; ``npy_hint`` says how to do
    without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise UserError(f"reading {p.name} needs Pillow, the image extra: {pip_install_hint('image')}; "
                        f"{npy_hint}") from None
    try:
        with Image.open(p) as im:
            if im.mode in _SIXTEEN_BIT or (im.mode == "I" and im.format == "PNG"):  # PNG: at most 16 bits
                gray = np.asarray(im, dtype=np.float32) * np.float32(255 / 65535)
                return np.repeat(gray[:, :, None], 3, axis=2)
            if im.mode in ("I", "F"):
                raise UserError(f"image {p} has {'32-bit integer' if im.mode == 'I' else 'floating-point'} pixels "
                                f"with no known 0..255 scale; {npy_hint}")
            return np.asarray(im.convert("RGB"), dtype=np.float32)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read image {p}: {first_line(e)}") from None


def _check_normalization(values: Sequence[float] | None, option: str, channels: int) -> None:
    if values is None:
        return
    if len(values) not in (1, channels):
        raise UserError(f"the per-channel {option} has {len(values)} values, the image has {channels} channels",
                        option=option)
    if not all(math.isfinite(v) for v in values):
        raise UserError(f"expected finite numbers, got {','.join(map(str, values))}", option=option)
    if option == "std" and any(v == 0 for v in values):
        raise UserError("the per-channel std values must be non-zero", option=option)


def load_input(path: str, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """An image file (0..1, then ``(x - mean) / std`` per channel) or a .npy array used as it is
    (``mean``/``std`` are refused for it: they would be silently meaningless)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file not found: {p}")
    if p.suffix.lower() == ".npy":
        for values, option in ((mean, "mean"), (std, "std")):
            if values is not None:
                raise UserError(f"applies to image files only: {p} is a .npy array, fed as it is "
                                "(normalise it before saving)", option=option)
        arr = require_real_finite(read_npy(p), p)
        arr = arr[None] if arr.ndim == 3 else arr
        if arr.ndim != 4:
            shape = "x".join(map(str, arr.shape)) or "a scalar"
            raise UserError(f"{p} has rank {arr.ndim} (shape {shape}): expected an image batch BxCxHxW (or CxHxW)")
        return arr
    img = read_rgb(p, "or pass the input as a .npy array") / 255.0
    x = img.transpose(2, 0, 1)[None]  # 1x3xHxW, native size
    for values, option in ((mean, "mean"), (std, "std")):
        _check_normalization(values, option, x.shape[1])
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    if std is not None:
        x = x / np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(x, dtype=np.float32)
