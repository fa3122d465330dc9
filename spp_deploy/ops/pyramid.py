"""The canonical SPP op: ``SpatialPyramidPool`` and its ``torch.library`` custom op.

Eagerly it pools each bin exactly (gather the bin's rows/columns, reduce), so max mode is
bit-identical to every seed implementation. Under ``torch.export`` it is one opaque node
(``torch.ops.spp_deploy.spatial_pyramid_pool``) whose output shape is known symbolically;
the ONNX exporter later lowers that node (``spp_deploy.export.lowering``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import bins as _bins


def _pool_axis(x: torch.Tensor, dim: int, ab: _bins.AxisBins, mode: str) -> torch.Tensor:
    """Pool axis ``dim`` of x into len(ab.start) bins (the same gather+reduce as the ONNX lowering)."""
    start = np.asarray(ab.start)
    size = np.asarray(ab.end) - start
    n = start.shape[0]
    k = max(int(size.max()), 1)
    t = np.arange(k)
    # Repeat each bin's last element to a common width k: harmless for max; masked for avg.
    idx = start[:, None] + np.minimum(t[None, :], np.maximum(size[:, None] - 1, 0))
    g = x.index_select(dim, torch.as_tensor(idx.reshape(-1), device=x.device))
    shape = list(x.shape)
    shape[dim : dim + 1] = [n, k]
    g = g.reshape(shape)
    if mode == "max":
        return g.amax(dim + 1)
    mask_shape = [1] * len(shape)
    mask_shape[dim : dim + 2] = [n, k]
    mask = torch.as_tensor(t[None, :] < size[:, None], device=x.device).reshape(mask_shape)
    return torch.where(mask, g, torch.zeros((), dtype=g.dtype, device=g.device)).sum(dim + 1)


def spp_eager(x: torch.Tensor, levels: Sequence[int], mode: str, rule: str, order: str) -> torch.Tensor:
    """Reference implementation of the pyramid on concrete sizes; raises on illegal sizes."""
    if x.dim() != 4:
        raise ValueError(f"SPP expects a [B, C, H, W] tensor, got shape {tuple(x.shape)}")
    B, C, H, W = x.shape
    _bins.check_size(rule, H, W, levels)
    outs = []
    for n in levels:
        rows, cols = _bins.level_bins(rule, H, W, n)
        y = _pool_axis(_pool_axis(x, 2, rows, mode), 3, cols, mode)  # [B, C, n, n]
        if mode == "avg":
            div = np.broadcast_to(rows.span, (n,))[:, None] * np.broadcast_to(cols.span, (n,))[None, :]
            y = y / torch.as_tensor(div, dtype=y.dtype, device=y.device)
        if order == "bin_major":
            y = y.permute(0, 2, 3, 1)
        outs.append(y.reshape(B, -1))
    return torch.cat(outs, dim=1)


@torch.library.custom_op("spp_deploy::spatial_pyramid_pool", mutates_args=())
def spatial_pyramid_pool(x: torch.Tensor, levels: list[int], mode: str, rule: str, order: str) -> torch.Tensor:
    return spp_eager(x, levels, mode, rule, order)


@spatial_pyramid_pool.register_fake
def _(x, levels, mode, rule, order):
    return x.new_empty((x.shape[0], _bins.feature_count(x.shape[1], levels)))


def exporting() -> bool:
    """True while torch.export/dynamo or the TorchScript ONNX exporter traces the model: our
    layers then call their custom op (one node with symbolic sizes) instead of the eager code,
    which would bake the example's bin indices into the graph."""
    return torch.compiler.is_exporting() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


class SpatialPyramidPool(nn.Module):
    """Spatial pyramid pooling: [B, C, H, W] -> [B, C * sum(n^2)] for any H, W legal for the bin ``rule``.

    ``order="channel_major"`` flattens each level's [B, C, n, n] (the PyTorch seeds);
    ``"bin_major"`` concatenates bins, each a [B, C] block (the Keras seed).

    Args:
        levels: bins per side of each level (``4`` is a 4 x 4 grid).
        mode: ``max`` or ``avg``.
        rule: the bin rule (``spp_deploy.RULES``): how H and W are cut into bins.
        order: ``channel_major`` or ``bin_major`` (the output's feature order).
    """

    def __init__(
        self,
        levels: Sequence[int] = (4, 2, 1),
        mode: str = "max",
        rule: str = "adaptive",
        order: str = "channel_major",
    ) -> None:
        super().__init__()
        self.levels = _bins.validate_config(levels, mode, rule, order)
        self.mode, self.rule, self.order = mode, rule, order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if exporting():
            return torch.ops.spp_deploy.spatial_pyramid_pool(x, list(self.levels), self.mode, self.rule, self.order)
        return spp_eager(x, self.levels, self.mode, self.rule, self.order)

    def feature_count(self, channels: int) -> int:
        return _bins.feature_count(channels, self.levels)

    def extra_repr(self) -> str:
        return f"levels={list(self.levels)}, mode={self.mode!r}, rule={self.rule!r}, order={self.order!r}"
