"""Bin rules of every SPP implementation we support: the Python single source of truth.

Each rule is written once, as arithmetic on an *ops backend*. The same function yields
concrete bin edges (``NUMPY_OPS``, used by the eager op, the inspector and the tests) and the
symbolic ONNX subgraph that computes them from a dynamic H/W (``spp_deploy.export.symbolic``).
The C++ twin lives in ``plugins/common/sppBins.h``.

Rules (exact definitions in ``docs/bin-rules.md``):

- ``adaptive``: SPP paper and ``nn.AdaptiveMaxPool2d``; defined for every size >= 1.
- ``ceil_pad``: sppnet-pytorch ``spatial_pyramid_pool`` (kernel ceil(S/n), padding from S).
- ``floor_kernel``: erogol's ``SPPLayer``; one square kernel H // n from the height.
- ``rounded``: the keras-spp ``SpatialPyramidPooling`` layer; float32 edges rounded half to even.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

RULES = ("adaptive", "ceil_pad", "floor_kernel", "rounded")
# Largest pyramid level (n x n bins). The TensorRT plugin's limit; in the standard lowering a level's
# [n, 1] bin-edge tensors stay TensorRT shape tensors (bounded element count) only up to it, beyond
# which the padded bin width K would become data-dependent.
MAX_LEVEL = 64
MODES = ("max", "avg")
ORDERS = ("channel_major", "bin_major")


class AxisBins(NamedTuple):
    """Bins of one axis at one level: half-open ranges [start, end) and the avg divisor factor."""

    start: Any  # [n] int64
    end: Any  # [n] int64
    span: Any  # [n] int64: this axis' factor of the avg divisor
    valid: Any  # bool scalar: the source layer is defined and fixed-length on this axis


class NumpyOps:
    """Concrete backend: int64 / float32 numpy arithmetic."""

    @staticmethod
    def arange(n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    @staticmethod
    def const(v: int) -> np.ndarray:
        return np.int64(v)

    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    logical_and = staticmethod(np.logical_and)

    @staticmethod
    def to_f32(x: Any) -> np.ndarray:
        return np.asarray(x).astype(np.float32)

    @staticmethod
    def rint_to_i64(x: Any) -> np.ndarray:
        return np.rint(x).astype(np.int64)

    @staticmethod
    def floordiv(a: Any, b: Any) -> Any:
        # Both operands are non-negative in every rule, so floor == truncation (ONNX Div).
        return a // b


NUMPY_OPS = NumpyOps()


def _adaptive(S, n, i, ops, H):
    start = ops.floordiv(i * S, n)
    end = ops.floordiv((i + 1) * S + (n - 1), n)
    return AxisBins(start, end, end - start, S >= 1)


def _ceil_pad(S, n, i, ops, H):
    k = ops.floordiv(S + (n - 1), n)
    p = ops.floordiv(k * n - S + 1, 2)
    lo = i * k - p
    start = ops.maximum(lo, 0)
    end = ops.minimum(lo + k, S)
    # PyTorch's max_pool2d rejects padding > kernel/2: the source layer raises there.
    return AxisBins(start, end, k, ops.logical_and(S >= 1, p <= ops.floordiv(k, 2)))


def _floor_kernel(S, n, i, ops, H):
    k = ops.floordiv(H, n)  # one square kernel, from the height, for both axes
    safe_k = ops.maximum(k, 1)
    start = i * k
    end = start + k
    # Fixed-length n x n only where floor(S / k) == n on this axis (and k >= 1).
    return AxisBins(start, end, end - start, ops.logical_and(k >= 1, ops.floordiv(S, safe_k) == n))


def _rounded(S, n, i, ops, H):
    length = ops.to_f32(S) / ops.to_f32(n)
    lo = ops.to_f32(i) * length
    start = ops.rint_to_i64(lo)
    end = ops.rint_to_i64(lo + length)  # i*L + L, as the Keras layer computes it
    return AxisBins(start, end, end - start, S >= n)


@dataclass(frozen=True)
class BinRule:
    name: str
    source: str
    axis_bins: Callable[..., AxisBins]
    nests: bool  # coarser levels are exact unions of finer levels that they divide (max only)


_RULES = {
    "adaptive": BinRule("adaptive", "SPP paper / nn.AdaptiveMaxPool2d", _adaptive, True),
    "ceil_pad": BinRule("ceil_pad", "sppnet-pytorch spatial_pyramid_pool", _ceil_pad, False),
    "floor_kernel": BinRule("floor_kernel", "SPPLayer (erogol spp)", _floor_kernel, False),
    "rounded": BinRule("rounded", "Keras SpatialPyramidPooling (keras-spp)", _rounded, False),
}


def get_rule(name: str) -> BinRule:
    """The rule called ``name``; ``ValueError`` listing the known rules otherwise."""
    try:
        return _RULES[name]
    except KeyError:
        raise ValueError(f"unknown bin rule {name!r} (known: {', '.join(RULES)})") from None


def axis_bins(rule: str, size: Any, n: int, height: Any = None, ops: Any = NUMPY_OPS) -> AxisBins:
    """Bins of one axis of ``size`` at level ``n``; ``height`` is H (floor_kernel's kernel source)."""
    if n < 1:
        raise ValueError(f"pyramid level must be >= 1, got {n}")
    H = size if height is None else height
    return get_rule(rule).axis_bins(size, n, ops.arange(n), ops, H)


def level_bins(rule: str, h: int, w: int, n: int) -> tuple[AxisBins, AxisBins]:
    """Concrete (rows, columns) bins for an H x W map at level n; no legality check."""
    return axis_bins(rule, int(h), n, int(h)), axis_bins(rule, int(w), n, int(h))


def size_error(rule: str, h: int, w: int, levels: Sequence[int]) -> str | None:
    """Why ``rule`` is undefined or not fixed-length at H x W, or None when it is legal."""
    for n in levels:
        rows, cols = level_bins(rule, h, w, n)
        for axis, ab, size in (("H", rows, h), ("W", cols, w)):
            if not bool(ab.valid):
                return (
                    f"bin rule {rule!r} is not defined (or not fixed-length) at "
                    f"{axis}={size} (input {h}x{w}) for pyramid level {n}"
                )
    return None


def check_size(rule: str, h: int, w: int, levels: Sequence[int]) -> None:
    """Raise ``ValueError`` naming the rule, size and level where the source layer breaks."""
    msg = size_error(rule, h, w, levels)
    if msg:
        raise ValueError(msg)


def is_defined(rule: str, h: int, w: int, levels: Sequence[int]) -> bool:
    return size_error(rule, h, w, levels) is None


def illegal_sizes(rule: str, n: int, up_to: int, axis: str = "H", height: int | None = None) -> list[int]:
    """Sizes 1..up_to of one axis where the rule is illegal at level n (for reports and docs).

    For floor_kernel the W axis depends on H: pass ``height``.
    """
    out = []
    for s in range(1, up_to + 1):
        h = s if axis == "H" else (height if height is not None else s)
        if not bool(axis_bins(rule, s, n, h).valid):
            out.append(s)
    return out


def feature_count(channels: int, levels: Sequence[int]) -> int:
    """Length of the SPP vector: C * sum(n^2)."""
    return channels * sum(n * n for n in levels)


def validate_config(levels: Sequence[int], mode: str, rule: str, order: str) -> tuple[int, ...]:
    """Normalise and check an SPP configuration; ``ValueError`` with the offending field."""
    lv = tuple(int(n) for n in levels)
    if not lv:
        raise ValueError("pyramid levels must not be empty")
    if any(n < 1 for n in lv):
        raise ValueError(f"pyramid levels must be >= 1, got {list(lv)}")
    if any(n > MAX_LEVEL for n in lv):
        raise ValueError(f"pyramid levels must be <= {MAX_LEVEL} (the TensorRT limit), got {list(lv)}")
    if mode not in MODES:
        raise ValueError(f"unknown SPP mode {mode!r} (known: {', '.join(MODES)})")
    get_rule(rule)
    if order not in ORDERS:
        raise ValueError(f"unknown flatten order {order!r} (known: {', '.join(ORDERS)})")
    return lv


# ---- torch's pooling windows (max_pool2d / avg_pool2d) on one axis, for op-level pools ----


def window_count(S: Any, kernel: Any, stride: Any, padding: Any, ceil_mode: bool, ops: Any = NUMPY_OPS) -> Any:
    """Output length of ``max_pool2d``/``avg_pool2d`` on an axis of size S (at least 1; ``window_bins``
    says where it is legal). In ceil mode the last window must start inside the input or the left
    padding, as PyTorch clips it."""
    span = ops.maximum(S + 2 * padding - kernel, 0)
    stride = ops.maximum(stride, 1)  # a zero stride is illegal (NaN): no division by zero
    if not ceil_mode:
        return ops.floordiv(span, stride) + 1
    last = ops.floordiv(ops.maximum(S + padding - 1, 0), stride) + 1
    return ops.minimum(ops.floordiv(span + stride - 1, stride) + 1, last)


def window_bins(S: Any, kernel: Any, stride: Any, padding: Any, i: Any, ops: Any = NUMPY_OPS,
                ceil_mode: bool = False) -> AxisBins:
    """Window i of a pool with this kernel, stride and (implicit) padding: its real extent
    [start, end), its count_include_pad divisor (the window clipped to the padded input) and
    whether PyTorch accepts the arguments (kernel, stride >= 1, padding <= kernel / 2, and at
    least one window: S + 2p >= k, or in ceil mode S + 2p + stride - 1 >= k)."""
    lo = i * stride - padding
    start = ops.maximum(lo, 0)
    end = ops.minimum(lo + kernel, S)
    span = ops.minimum(lo + kernel, S + padding) - lo
    ok = ops.logical_and(ops.logical_and(kernel >= 1, stride >= 1), ops.logical_and(padding >= 0, padding * 2 <= kernel))
    reach = S + padding * 2 + (stride - 1 if ceil_mode else 0)
    return AxisBins(start, end, span, ops.logical_and(ok, reach >= kernel))
