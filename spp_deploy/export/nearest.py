"""Bit-exact nearest upsampling while exporting.

ONNX ``Resize`` (nearest) maps an output pixel back by ``dst / (out / in)``; PyTorch's CPU
kernel (``aten/src/ATen/native/UpSample.h``, ``nearest_idx``) by ``floor(dst * scale)`` with
``scale = (float)in / out`` (or ``(float)(1 / scale_factor)``) in float32, clamped to ``in - 1``,
and copies or halves the index when ``out == in`` or ``out == 2 * in``. The two disagree at some
sizes (4 -> 82 columns), so plain ``torch.onnx.export`` is wrong there. While exporting, each
4-D ``F.interpolate(mode='nearest')`` (``nn.Upsample`` and
``F.upsample_nearest`` call it) given ``size=`` or a whole ``scale_factor`` becomes two
``index_select`` calls with indices computed in the graph exactly that way: one ``Gather`` per
axis, bit-identical at every size. A fractional ``scale_factor`` (``floor(S * 1.7)``) and
``'nearest-exact'`` (whose kernel rounds otherwise) are left to the exporter's ``Resize``.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..ops.pyramid import exporting

_SIGNATURE = inspect.signature(F.interpolate)
MODES = ("nearest",)  # not 'nearest-exact': its CPU kernel rounds otherwise than UpSample.h reads


def _scalar(n, dtype: torch.dtype, device) -> torch.Tensor:
    """A (symbolic) size as a scalar tensor (float32: exact below 2**24), traced from the size."""
    return torch.ones((), dtype=dtype, device=device) * n


def source_index(in_size, out_size, factor: float | None, device=None) -> torch.Tensor:
    """PyTorch's CPU source index (``nearest_idx``) of each of ``out_size`` output positions:
    ``min(floor(dst * scale), in - 1)`` in float32, ``scale = (float)in / out`` or
    ``(float)(1 / factor)``; ``dst`` itself when ``out == in``, ``dst // 2`` when ``out == 2 in``."""
    dst = torch.arange(out_size, dtype=torch.int64, device=device)
    n_in, n_out = _scalar(in_size, torch.int64, device), _scalar(out_size, torch.int64, device)
    if factor is not None and factor > 0:
        scale = torch.tensor(1.0 / factor, dtype=torch.float32, device=device)  # static_cast<float>(1.0 / scale)
    else:
        scale = _scalar(in_size, torch.float32, device) / _scalar(out_size, torch.float32, device)
    src = torch.minimum(torch.floor(dst.to(torch.float32) * scale).to(torch.int64), n_in - 1)
    return torch.where(n_out == n_in, dst, torch.where(n_out == 2 * n_in, dst // 2, src))


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list, torch.Size)) else (v, v)


def nearest(x: torch.Tensor, size=None, scale_factor=None, recompute_scale_factor: bool | None = None) -> torch.Tensor:
    """``F.interpolate(x, size, scale_factor, mode='nearest')`` for a 4-D ``x`` as gathers (same result)."""
    H, W = x.shape[2], x.shape[3]
    if size is not None:
        out, scales = _pair(size), (None, None)
    else:
        factors = tuple(float(f) for f in _pair(scale_factor))
        out = tuple(n * int(f) for n, f in zip((H, W), factors))  # whole factors only (see _call)
        scales = (None, None) if recompute_scale_factor else factors
    rows = source_index(H, out[0], scales[0], x.device)
    cols = source_index(W, out[1], scales[1], x.device)
    return x.index_select(2, rows).index_select(3, cols)


def _call(args: tuple, kwargs: dict) -> dict | None:
    """F.interpolate's arguments when it is a 4-D nearest call we replace, else None."""
    try:
        call = _SIGNATURE.bind(*args, **kwargs)
    except TypeError:
        return None  # F.interpolate's own error
    call.apply_defaults()
    bound = call.arguments
    x = bound["input"]
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or bound["mode"] not in MODES or bound["antialias"]:
        return None
    size, factors = bound["size"], bound["scale_factor"]
    if (size is None) == (factors is None) or bound["align_corners"] is not None \
            or len(_pair(size if factors is None else factors)) != 2:
        return None  # F.interpolate's own error
    if factors is not None and not all(float(f).is_integer() and f >= 1 for f in _pair(factors)):
        return None  # floor(S * 1.7) has no exact integer form in the graph: the exporter's Resize
    return bound


class _NearestMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.interpolate and exporting():
            b = _call(args, kwargs)
            if b is not None:
                return nearest(b["input"], b["size"], b["scale_factor"], b["recompute_scale_factor"])
        return func(*args, **kwargs)


@contextlib.contextmanager
def exact_nearest() -> Iterator[None]:
    """Within the block, nearest upsampling traces as bit-exact gathers (eager calls untouched)."""
    with _NearestMode():
        yield
