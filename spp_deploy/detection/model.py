"""The SPP-net detection model (ZF-5): a conv trunk run once per image and scale, and a head
that pools each window from the conv5 map and runs fc6/fc7 per window.

Geometry of the released ZF-5 (spec section 2): conv1 7/2 pad 1, pool1 3/2, conv2 5/2,
pool2 3/2, conv3-5 3/1 pad 1 (stride 16, offset0 21). Pools round up (Caffe's pooling output
size), so a 688 x 917 image gives a 42 x 57 conv5 map. Weights are random unless loaded.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..ops.projection import ZF5, ZF5_LAYERS, WindowProjection
from ..ops.window_pyramid import SPPNET_LEVELS, WindowSpatialPyramidPool

# expected scale = AREA_CONSTANT * min(H, W) / sqrt(window area) (spec section 1.3): 208 = 13 * 16,
# the conv5 size of the 224-pixel pre-training crop times the stride.
ZF5_AREA_CONSTANT = 208.0


def zf5_trunk() -> nn.Sequential:
    """conv1..conv5 (post-ReLU) of ZF-5: 3 -> 256 channels, stride 16."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
    )


def trunk_layers(trunk: nn.Module) -> list[tuple[int, int, int]]:
    """(kernel, stride, pad) of every conv/pool layer, in order (for ``WindowProjection.from_layers``)."""
    out = []
    for m in trunk.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
            out.append((int(k), int(s), int(p)))
    return out


class WindowHead(nn.Module):
    """conv5 maps [S, C, H, W] + windows [R, 5] -> fc7 [R, hidden]: window SPP, fc6, fc7 (ReLU;
    no dropout at test time)."""

    def __init__(self, channels: int = 256, hidden: int = 4096, levels: Sequence[int] = SPPNET_LEVELS,
                 projection: WindowProjection | None = ZF5) -> None:
        super().__init__()
        self.spp = WindowSpatialPyramidPool(levels, projection)
        self.fc6 = nn.Linear(self.spp.feature_count(channels), hidden)
        self.fc7 = nn.Linear(hidden, hidden)

    def forward(self, maps: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc7(torch.relu(self.fc6(self.spp(maps, windows)))))


class SppNetZF5Detector(nn.Module):
    """SPP-net detection features with ZF-5. ``forward(image, windows)`` is one image at one
    scale (windows in that image's 1-based pixels); ``spp_deploy.detect`` is the full pipeline
    (resizing, scale choice, box mapping). ``hidden`` is fc6/fc7's width (4096 in the paper)."""

    area_constant = ZF5_AREA_CONSTANT

    def __init__(self, hidden: int = 4096, levels: Sequence[int] = SPPNET_LEVELS) -> None:
        super().__init__()
        self.trunk = zf5_trunk()
        self.projection = WindowProjection.from_layers(trunk_layers(self.trunk))
        assert trunk_layers(self.trunk) == list(ZF5_LAYERS)
        self.head = WindowHead(256, hidden, levels, self.projection)

    def forward(self, image: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(image), windows)
