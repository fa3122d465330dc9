"""``detect``: SPP-net detection features for one image and its proposal windows (spec section 1).

Per scale (shorter side s): resize (bilinear, no antialiasing), RGB -> BGR, minus 128, conv trunk
once. Per window: the scale whose expected size is nearest (multi-scale), the box mapped into
that scale, window SPP on that scale's conv5 map, fc6, fc7. The trunk and head run on any
runner: PyTorch eager (``TorchStages``), or the files ``export-detector`` wrote in ONNX Runtime or
TensorRT (``RunnerStages``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..util.constants import DEFAULT_WINDOWS_DTYPE
from ..util.errors import UserError
from .scales import SINGLE_SCALE, choose_scales, map_boxes, normalize_scales, preprocess

LOG = logging.getLogger(__name__)  # steps: the detect command's progress, -v, --log-file

WINDOWS_NAME, MAPS_NAME = "windows", "features"


class TorchStages:
    """Trunk and head of a detector module, eagerly. ``windows_dtype`` (float64 or float32): the
    dtype the head is given windows in; float32 feeds it what a float32 exported head sees, so the
    two can be compared on the same windows."""

    name = "torch"

    def __init__(self, model, windows_dtype: str = DEFAULT_WINDOWS_DTYPE) -> None:
        from ..ops.window_pyramid import windows_torch_dtype
        from .export import check_detector

        check_detector(model)
        windows_torch_dtype(windows_dtype)
        self.model = model.eval()
        self.area_constant = float(model.area_constant)
        self._w_dtype = np.dtype(windows_dtype)
        self._largest: int | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def trunk(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.trunk(torch.from_numpy(x)).numpy()

    def largest_activation(self) -> int:
        """Bytes of the trunk's largest activation at ``memory.REFERENCE_HW`` (nothing allocated; once)."""
        from .memory import REFERENCE_HW, torch_largest_activation

        if self._largest is None:
            self._largest = torch_largest_activation(self.model.trunk, (1, 3, *REFERENCE_HW))
        return self._largest

    def head(self, maps: np.ndarray, windows: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.head(torch.from_numpy(maps), torch.from_numpy(windows.astype(self._w_dtype))).numpy()


class RunnerStages:
    """Trunk and head as runners (``spp_deploy.runtime``): ONNX Runtime on the exported files, or a
    TensorRT engine for the trunk (and for the head, once built with the window plugin)."""

    def __init__(self, onnx_dir: str | os.PathLike, backend: str = "ort-cpu", engine: str | None = None,
                 head_engine: str | None = None, plugin: str | None = None, threads: int | None = None) -> None:
        from ..runtime.backends import make_runner
        from .export import load_meta

        d = Path(onnx_dir)
        meta = load_meta(d)
        self.area_constant = float(meta["area_constant"])
        self.name = backend
        self._trunk_onnx, self._largest = d / meta["trunk"], None
        for f in (meta["trunk"], meta["head"]):
            if not (d / f).is_file():
                raise UserError(f"{d / f} not found (export-detector writes it)")
        if backend == "trt":
            self._trunk = make_runner("trt", engine=engine, plugin=plugin)
            self._head = (make_runner("trt", engine=head_engine, plugin=plugin) if head_engine else
                          make_runner("ort-cpu", onnx=d / meta["head"], threads=threads))
        else:
            self._trunk = make_runner(backend, onnx=d / meta["trunk"], threads=threads)
            self._head = make_runner(backend, onnx=d / meta["head"], threads=threads, plugin=plugin)

    def __enter__(self):
        self._trunk.__enter__()
        try:
            self._head.__enter__()
        except BaseException:
            self._trunk.__exit__(None, None, None)
            raise
        (self._in, _), = self._trunk.input_specs().items()
        specs = self._head.input_specs()
        if set(specs) != {MAPS_NAME, WINDOWS_NAME}:
            raise UserError(f"the head takes inputs {', '.join(specs)}; expected {MAPS_NAME} and {WINDOWS_NAME}")
        self._w_dtype = np.float64 if "double" in str(specs[WINDOWS_NAME][0]) or specs[WINDOWS_NAME][0] == np.float64 \
            else np.float32
        return self

    def __exit__(self, *exc) -> None:
        self._head.__exit__(*exc)
        self._trunk.__exit__(*exc)

    def trunk(self, x: np.ndarray) -> np.ndarray:
        return next(iter(self._trunk.infer({self._in: x}).values()))

    def largest_activation(self) -> int:
        """Bytes of the trunk file's largest tensor at ``memory.REFERENCE_HW`` (shape inference; once)."""
        from .memory import REFERENCE_HW, onnx_largest_activation

        if self._largest is None:
            self._largest = onnx_largest_activation(self._trunk_onnx, (1, 3, *REFERENCE_HW))
        return self._largest

    def head(self, maps: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """``windows``: float64, already mapped into this scale; cast here to the head's windows
        dtype (float32 heads: one rounding, after the float64 mapping)."""
        out = self._head.infer({MAPS_NAME: maps, WINDOWS_NAME: windows.astype(self._w_dtype)})
        return next(iter(out.values()))


def _check(image: np.ndarray, boxes: np.ndarray, scales: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"image must be H x W x 3 (RGB), got shape {'x'.join(map(str, image.shape))}")
    if min(image.shape[:2]) < 2:
        raise UserError(f"image {image.shape[0]}x{image.shape[1]} is too small: both sides must be >= 2 pixels")
    if not np.isfinite(image).all():
        raise UserError("image holds NaN or infinite values")
    boxes = np.asarray(boxes)
    if boxes.dtype.kind not in "fiu" and boxes.size:
        raise UserError(f"boxes must hold real numbers, got {boxes.dtype}")
    boxes = boxes.astype(np.float64).reshape(0, 4) if boxes.size == 0 else boxes.astype(np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise UserError(f"boxes must be [R, 4] (x1, y1, x2, y2), got shape {'x'.join(map(str, boxes.shape))}")
    if not np.isfinite(boxes).all():
        raise UserError("boxes hold a NaN or infinite coordinate")
    if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        raise UserError("a box has x2 < x1 or y2 < y1")
    return image, boxes, normalize_scales(scales)


def _stages(detector):
    """The detector as trunk/head stages: a detector module runs eagerly; anything else must
    already be stages (``trunk``, ``head``, ``area_constant``)."""
    import torch

    if isinstance(detector, torch.nn.Module):
        return TorchStages(detector)
    if all(hasattr(detector, a) for a in ("trunk", "head", "area_constant")):
        return detector
    raise UserError(f"expected a detector module (e.g. SppNetZF5Detector) or TorchStages/RunnerStages, got "
                    f"{type(detector).__name__} {getattr(detector, '__name__', '')!r}", option="detector")


def _check_memory(stages, height: int, width: int, scales: Sequence[int]) -> None:
    """Refuse a scale whose trunk run would not fit in memory, before any scale runs."""
    from ..util.limits import check_memory
    from .memory import trunk_bytes
    from .scales import resized_size

    measure = getattr(stages, "largest_activation", None)
    largest = measure() if measure is not None else 0
    for s in scales:
        h, w = resized_size(height, width, s)
        check_memory(trunk_bytes(largest, h, w), f"scale {s} (the image resized to {h}x{w}, then the trunk)",
                     option="scales")


def detect(image: np.ndarray, boxes: np.ndarray, detector, scales: Sequence[int] = SINGLE_SCALE, *,
           timings: Mapping[str, float] | None = None) -> np.ndarray:
    """fc7 features [R, D] for ``boxes`` [R, 4] (1-based inclusive pixels of ``image``, H x W x 3
    RGB 0..255). ``detector``: a detector module (eager) or a ``TorchStages``/``RunnerStages``
    already entered. Boxes are mapped into each scale in float64; only then does the stage cast the
    windows to its head's dtype (a float32 head rounds the mapped windows once, not the boxes).
    ``timings`` (a dict) accumulates seconds per stage: preprocess, trunk, head.

    Args:
        image: H x W x 3 RGB, 0..255.
        boxes: [R, 4] (x1, y1, x2, y2), 1-based inclusive pixels.
        detector: the detector module, or stages already entered.
        scales: the image scales (shorter side in pixels); each box uses one (``choose_scales``).
        timings: a dict that accumulates seconds per stage.

    Returns:
        [R, D] features, one row per box.
    """
    image, boxes, scales = _check(image, boxes, scales)
    stages = _stages(detector)
    H, W = image.shape[:2]
    _check_memory(stages, H, W, scales)
    which = choose_scales(boxes, H, W, scales, stages.area_constant)
    clock = timings if timings is not None else {}
    out = None
    for si, s in enumerate(scales):
        sel = np.nonzero(which == si)[0]
        if sel.size == 0 and not (len(boxes) == 0 and si == 0):
            continue  # no window chose this scale: its trunk is never run
        LOG.info("scale %d: trunk, then the head on %d window(s)", s, sel.size)
        t0 = time.perf_counter()
        x = preprocess(image, s)
        t1 = time.perf_counter()
        maps = stages.trunk(x)
        t2 = time.perf_counter()
        win = np.concatenate([np.zeros((sel.size, 1)), map_boxes(boxes[sel], H, W, s)], axis=1)
        feats = stages.head(maps, win)
        t3 = time.perf_counter()
        for k, dt in (("preprocess", t1 - t0), ("trunk", t2 - t1), ("head", t3 - t2)):
            clock[k] = clock.get(k, 0.0) + dt
        if out is None:
            out = np.zeros((len(boxes), feats.shape[1]), dtype=feats.dtype)
        out[sel] = feats
    return out


def load_image(path: str) -> np.ndarray:
    """An H x W x 3 RGB array (0..255, float32) from an image file (Pillow, the ``image`` extra) or a
    .npy array (H x W x 3).

    Args:
        path: an image file or a ``.npy`` array.

    Returns:
        The H x W x 3 float32 array.

    Raises:
        UserError: missing, unreadable, not H x W x 3, or not finite.
    """
    from ..util.inputs import read_npy, read_rgb, require_real_finite

    p = Path(path)
    if not p.is_file():
        raise UserError(f"image file not found: {p}")
    if p.suffix.lower() == ".npy":
        arr = read_npy(p)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype.kind not in "fiu":
            raise UserError(f"{p}: expected an H x W x 3 RGB array (0..255), got shape "
                            f"{'x'.join(map(str, arr.shape))} {arr.dtype}")
        return require_real_finite(arr, p).astype(np.float32)
    return read_rgb(p, "or pass the image as an H x W x 3 .npy array")
