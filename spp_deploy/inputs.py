"""Real inputs for ``run`` / ``validate --images``: an image at its native size (no resize) or a
``.npy`` array, as an NCHW float32 batch of one."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError, first_line
from .extras import pip_install_hint


def read_npy(p: Path) -> np.ndarray:
    """A .npy array (no pickles), or a one-line ``UserError``."""
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:
        raise UserError(f"cannot read {p} as a .npy array: {first_line(e)}") from None


def read_rgb(p: Path, npy_hint: str) -> np.ndarray:
    """An image file as H x W x 3 RGB float32 (0..255) through Pillow (the ``image`` extra);
    ``npy_hint`` says how to do without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise UserError(f"reading {p.name} needs Pillow, the image extra: {pip_install_hint('image')}; "
                        f"{npy_hint}") from None
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"), dtype=np.float32)
    except Exception as e:
        raise UserError(f"cannot read image {p}: {e}") from None


def load_input(path: str, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file not found: {p}")
    if p.suffix.lower() == ".npy":
        arr = read_npy(p)
        arr = arr[None] if arr.ndim == 3 else arr
        if arr.ndim != 4:
            shape = "x".join(map(str, arr.shape)) or "a scalar"
            raise UserError(f"{p} has rank {arr.ndim} (shape {shape}): expected an image batch BxCxHxW (or CxHxW)")
        return arr
    img = read_rgb(p, "or pass the input as a .npy array") / 255.0
    x = img.transpose(2, 0, 1)[None]  # 1x3xHxW, native size
    C = x.shape[1]
    for vals, what in ((mean, "mean"), (std, "std")):
        if vals is not None and len(vals) not in (1, C):
            raise UserError(f"the per-channel {what} has {len(vals)} values, the image has {C} channels")
    if std is not None and any(s == 0 for s in std):
        raise UserError("the per-channel std values must be non-zero")
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    if std is not None:
        x = x / np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(x, dtype=np.float32)
