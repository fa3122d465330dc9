"""Models for the export-route and parity-size tests: what trips torch.export but not the
TorchScript exporter, a region count from ``.item()``, and a stride-32 net that only takes
multiples of 32."""

import torch
import torch.nn.functional as F
from torch import nn

from spp_deploy import SpatialPyramidPool
from spp_deploy.sources import seeds


class HalvesSPP(nn.Module):
    """Top and bottom halves (``chunk``) through cascaded stride-1 max pools, summed, then an
    adaptive pyramid: the dynamo exporter's constant folding breaks on the split in torch 2.13;
    the TorchScript exporter exports it exactly."""

    def __init__(self, channels: int = 6, classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.spp = seeds.AdaptivePyramidPool((2, 1))
        self.fc = nn.Linear(channels * 5, classes)

    def forward(self, x):
        top, bottom = self.conv(x).chunk(2, dim=2)
        y = self.pool(self.pool(top)) + self.pool(self.pool(bottom))
        return self.fc(self.spp(y))


class ItemRegions(nn.Module):
    """Region pooling whose region count comes from the data (``.item()``): no exporter can
    trace that count as a size."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        regions = int(y.detach().abs().amax().item() > 0) + 1  # the data decides the pooling grid
        return F.adaptive_max_pool2d(y, regions).flatten(1)


class Stride32SPP(nn.Module):
    """Five stride-2 convs down and five 2x upsamplings back with skip additions (a U-Net-like
    detector body): it runs only where every level halves exactly, H and W multiples of
    ``stride`` = 32; then an SPP layer and a linear head."""

    stride = 32

    def __init__(self, width: int = 4, classes: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 1)
        self.down = nn.ModuleList([nn.Conv2d(width, width, 2, stride=2) for _ in range(5)])
        self.spp = SpatialPyramidPool([2, 1])
        self.fc = nn.Linear(width * 5, classes)

    def forward(self, x):
        skips = [self.stem(x)]
        for conv in self.down:
            skips.append(torch.relu(conv(skips[-1])))
        y = skips.pop()
        while skips:
            y = F.interpolate(y, scale_factor=2.0, mode="nearest") + skips.pop()
        return self.fc(self.spp(y))


def make_route_models() -> dict:
    """{name: (model, example input)}: this module's models with deterministic weights."""
    torch.manual_seed(0)
    return {
        "halves-spp": (HalvesSPP().eval(), torch.randn(1, 3, 32, 32)),
        "item-regions": (ItemRegions().eval(), torch.randn(1, 3, 16, 16)),
        "stride32-spp": (Stride32SPP().eval(), torch.randn(1, 3, 64, 64)),
    }
