"""Window projection: image-pixel boxes -> conv-map cells, as SPP-net's released code computes it.

The rule (``docs/window-spp.md``, "Projection") is written once, in ``project_span``, as
arithmetic on an *ops backend*: the eager op runs it on float64 torch tensors
(``TORCH_OPS``), the ONNX export on symbolic graph tensors (``spp_deploy.export.window``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

# The released ZF-5 trunk as (kernel, stride, pad): conv1 7/2 pad 1, pool1 3/2, conv2 5/2,
# pool2 3/2, conv3-5 3/1 pad 1. Gives stride 16, receptive field 139, offset0 21.
ZF5_LAYERS: tuple[tuple[int, int, int], ...] = (
    (7, 2, 1), (3, 2, 0), (5, 2, 0), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1))
SPPNET_SHRINK = 6.5  # the released code's empirical inward shrink ("offset")


@dataclass(frozen=True)
class WindowProjection:
    """stride S, offset0 (1-based image position of the receptive-field centre of cell 1) and the
    inward shrink ``offset``. ``identity()`` takes windows already given in 1-based cells.

    Args:
        stride: image pixels per feature-map cell.
        offset0: 1-based image position of the receptive-field centre of cell 1.
        offset: inward shrink of each window edge, in pixels (the released code's 6.5).
    """

    stride: float
    offset0: float
    offset: float = SPPNET_SHRINK

    def __post_init__(self) -> None:
        for name in ("stride", "offset0", "offset"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"projection {name} must be a finite number, got {v!r}")
        if self.stride <= 0:
            raise ValueError(f"projection stride must be > 0, got {self.stride}")

    @classmethod
    def from_layers(cls, layers: Sequence[Sequence[int]], offset: float = SPPNET_SHRINK) -> "WindowProjection":
        """Stride and offset0 of a stack of (kernel, stride, pad) layers (conv and pool alike)."""
        stride, offset0 = 1, 1.0
        for i, layer in enumerate(layers):
            if len(layer) != 3 or any(int(v) != v or v < 0 for v in layer) or layer[0] < 1 or layer[1] < 1:
                raise ValueError(f"layer {i}: expected (kernel >= 1, stride >= 1, pad >= 0), got {tuple(layer)}")
            k, s, p = (int(v) for v in layer)
            offset0 += ((k - 1) / 2 - p) * stride
            stride *= s
        return cls(float(stride), offset0, offset)

    @classmethod
    def identity(cls) -> "WindowProjection":
        """Windows in 1-based cells: S = 1, offset0 = 1, no shrink maps integer cells onto themselves."""
        return cls(1.0, 1.0, 0.0)

    @staticmethod
    def receptive_field(layers: Sequence[Sequence[int]]) -> int:
        rf, jump = 1, 1
        for k, s, _ in layers:
            rf += (int(k) - 1) * jump
            jump *= int(s)
        return rf

    def as_list(self) -> list[float]:
        return [float(self.stride), float(self.offset0), float(self.offset)]


ZF5 = WindowProjection.from_layers(ZF5_LAYERS)


def project_span(lo: Any, hi: Any, size: Any, proj: WindowProjection, ops: Any) -> tuple[Any, Any]:
    """1-based inclusive pixels [lo, hi] (float64) -> 1-based inclusive cells [first, last] of an
    axis of ``size`` cells: the cells whose receptive-field centre lies in the shrunk box; an
    inverted span collapses to its C-integer midpoint; then both ends are clamped to [1, size]."""
    S, o0, o = proj.stride, proj.offset0, proj.offset
    first = ops.floor((lo - o0 + o) / S + 0.5) + 1
    last = ops.ceil((hi - o0 - o) / S - 0.5) + 1
    mid = ops.trunc((first + last) / 2)  # C integer division of two integers
    inverted = ops.greater(first, last)
    first, last = ops.where(inverted, mid, first), ops.where(inverted, mid, last)
    return ops.clamp(first, 1, size), ops.clamp(last, 1, size)


class TorchOps:
    """Eager backend of ``project_span``: float64 torch tensors."""

    @staticmethod
    def floor(x):
        return x.floor()

    @staticmethod
    def ceil(x):
        return x.ceil()

    @staticmethod
    def trunc(x):
        return x.trunc()

    @staticmethod
    def greater(a, b):
        return a > b

    @staticmethod
    def where(c, a, b):
        import torch

        return torch.where(c, a, b)

    @staticmethod
    def clamp(x, lo, hi):
        return x.clamp(lo, hi)


TORCH_OPS = TorchOps()
