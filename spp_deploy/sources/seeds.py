"""The seed SPP implementations as users have them (our re-implementations of the blog code).

They are deliberately *not* written in terms of ``spp_deploy.ops.bins``: they are the sources the
recognizer must identify, and the ground truth the exporter must reproduce, including where
they break (see ``docs/bin-rules.md``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def spatial_pyramid_pool(previous_conv, num_sample, previous_conv_size, out_pool_size):
    """Seeds 000/002 (sppnet-pytorch): kernel ceil(S/n), stride kernel, integer padding.

    The blog text divides the padding with ``/``; the original repository runs integer padding.
    """
    for i in range(len(out_pool_size)):
        h_wid = int(math.ceil(previous_conv_size[0] / out_pool_size[i]))
        w_wid = int(math.ceil(previous_conv_size[1] / out_pool_size[i]))
        h_pad = int((h_wid * out_pool_size[i] - previous_conv_size[0] + 1) / 2)
        w_pad = int((w_wid * out_pool_size[i] - previous_conv_size[1] + 1) / 2)
        maxpool = nn.MaxPool2d((h_wid, w_wid), stride=(h_wid, w_wid), padding=(h_pad, w_pad))
        x = maxpool(previous_conv)
        if i == 0:
            spp = x.view(num_sample, -1)
        else:
            spp = torch.cat((spp, x.view(num_sample, -1)), 1)
    return spp


class SPP_NET(nn.Module):  # noqa: N801 - the seed's name
    """Seed 000 ``SPP_NET``: conv5 then the [4, 2, 1] pyramid, two FC layers and a sigmoid.

    The seed gives conv5 64 output channels but sizes fc1 for 512 * 21 = 10752 features, as its
    text says; we follow the text so the model runs. ``hidden`` is 4096 in the seed.
    """

    def __init__(self, ndf: int = 64, hidden: int = 4096, num_classes: int = 1000) -> None:
        super().__init__()
        self.output_num = [4, 2, 1]
        self.conv5 = nn.Conv2d(ndf * 8, ndf * 8, 4, 1, 0, bias=False)
        self.fc1 = nn.Linear(ndf * 8 * 21, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.conv5(x)
        spp = spatial_pyramid_pool(x, 1, [int(x.size(2)), int(x.size(3))], self.output_num)
        fc1 = self.fc1(spp)
        fc2 = self.fc2(fc1)
        s = nn.Sigmoid()
        return s(fc2)


class SPPLayer(nn.Module):
    """Seed 003 (erogol): level i pools with one square kernel ``h // 2**i`` from the height."""

    def __init__(self, num_levels: int, pool_type: str = "max_pool") -> None:
        super().__init__()
        self.num_levels = num_levels
        self.pool_type = pool_type

    def forward(self, x):
        bs, c, h, w = x.size()
        pooling_layers = []
        for i in range(self.num_levels):
            kernel_size = h // (2**i)
            if self.pool_type == "max_pool":
                tensor = F.max_pool2d(x, kernel_size=kernel_size, stride=kernel_size).view(bs, -1)
            else:
                tensor = F.avg_pool2d(x, kernel_size=kernel_size, stride=kernel_size).view(bs, -1)
            pooling_layers.append(tensor)
        return torch.cat(pooling_layers, dim=-1)


class DetectionNetSPP(nn.Module):
    """Seed 003 ``DetectionNetSPP`` (expected input 64x64); ``hidden`` is 1024 in the seed."""

    def __init__(self, spp_level: int = 3, hidden: int = 1024, pool_type: str = "max_pool") -> None:
        super().__init__()
        self.spp_level = spp_level
        self.num_grids = sum(2 ** (i * 2) for i in range(spp_level))
        self.conv_model = nn.Sequential(
            nn.Conv2d(3, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(128, 128, 3), nn.ReLU(),
        )
        self.spp_layer = SPPLayer(spp_level, pool_type)
        self.linear_model = nn.Sequential(nn.Linear(self.num_grids * 128, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.linear_model(self.spp_layer(self.conv_model(x)))


class KerasSpatialPyramidPooling(nn.Module):
    """PyTorch port of the seed 004 Keras layer ('th' ordering): float32 edges rounded half to
    even, each bin a [B, C] block (bin-major order), max only."""

    def __init__(self, pool_list: Sequence[int]) -> None:
        super().__init__()
        self.pool_list = list(pool_list)
        self.num_outputs_per_channel = sum(i * i for i in self.pool_list)

    def forward(self, x):
        num_rows, num_cols = x.shape[2], x.shape[3]
        row_length = [np.float32(num_rows) / np.float32(i) for i in self.pool_list]
        col_length = [np.float32(num_cols) / np.float32(i) for i in self.pool_list]
        outputs = []
        for pool_num, num_pool_regions in enumerate(self.pool_list):
            for jy in range(num_pool_regions):
                for ix in range(num_pool_regions):
                    x1 = int(np.rint(np.float32(ix) * col_length[pool_num]))
                    x2 = int(np.rint(np.float32(ix) * col_length[pool_num] + col_length[pool_num]))
                    y1 = int(np.rint(np.float32(jy) * row_length[pool_num]))
                    y2 = int(np.rint(np.float32(jy) * row_length[pool_num] + row_length[pool_num]))
                    x_crop = x[:, :, y1:y2, x1:x2]
                    outputs.append(torch.amax(x_crop, dim=(2, 3)))
        return torch.cat(outputs, dim=1)


class KerasSppNet(nn.Module):
    """The seed 004 usage example, channels first: four 3x3 convs, a max pool, SPP [1, 2, 4], Dense."""

    def __init__(self, num_classes: int = 10, pool_list: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
        )
        self.spp = KerasSpatialPyramidPooling(pool_list)
        self.dense = nn.Linear(64 * self.spp.num_outputs_per_channel, num_classes)

    def forward(self, x):
        return torch.softmax(self.dense(self.spp(self.features(x))), dim=1)


class Conv(nn.Module):
    """Ultralytics ``Conv``: Conv2d (no bias) + BatchNorm2d + SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SPP(nn.Module):
    """Ultralytics SPP (seed 002): parallel stride-1 max pools, concatenated with the input."""

    def __init__(self, c1: int, c2: int, k: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k])

    def forward(self, x):
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class SPPF(nn.Module):
    """Ultralytics SPPF: three cascaded k x k max pools; equals SPP(k, 2k-1, 3k-2) for max."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class YoloSppNet(nn.Module):
    """A small YOLO-style backbone (stride 8) with an SPP (or SPPF) block and a 1x1 head."""

    def __init__(self, width: int = 32, num_outputs: int = 18, fast: bool = False) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            Conv(3, width // 2, 3, 2), Conv(width // 2, width, 3, 2), Conv(width, width * 2, 3, 2),
        )
        self.spp = SPPF(width * 2, width * 2) if fast else SPP(width * 2, width * 2)
        self.head = nn.Conv2d(width * 2, num_outputs, 1)

    def forward(self, x):
        return self.head(self.spp(self.backbone(x)))


class AdaptivePyramidPool(nn.Module):
    """The common hand-written pyramid: flattened nn.AdaptiveMaxPool2d (or Avg) outputs, concatenated."""

    def __init__(self, levels: Sequence[int] = (4, 2, 1), mode: str = "max") -> None:
        super().__init__()
        pool = nn.AdaptiveMaxPool2d if mode == "max" else nn.AdaptiveAvgPool2d
        self.pools = nn.ModuleList([pool(n) for n in levels])

    def forward(self, x):
        return torch.cat([p(x).flatten(1) for p in self.pools], dim=1)
