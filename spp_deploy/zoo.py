"""Built-in seed models: randomly initialised, no downloads; the test bed of the toolkit.

Each entry names its input rule: the input sizes where its SPP layer is defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .op import SpatialPyramidPool


class SppNetZF5(nn.Module):
    """The SPP paper's ZF-5 classifier: five conv layers, a {6,3,2,1} max pyramid, three FC layers.

    Conv widths follow the paper; ``hidden`` (4096 in the paper) defaults smaller to keep the
    demo light (weights are random anyway).
    """

    def __init__(self, num_classes: int = 1000, hidden: int = 512, levels=(6, 3, 2, 1)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(96, 256, 5, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.spp = SpatialPyramidPool(levels, mode="max", bins="adaptive")
        self.classifier = nn.Sequential(
            nn.Linear(self.spp.feature_count(256), hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.spp(self.features(x)))


class SppNetSeed000(nn.Module):
    """Seed 000's ``SPP_NET``: conv5 (4x4) on a 512-channel map, ceil_pad pyramid [4, 2, 1], FCs.

    The printed seed gives conv5 64 output channels but sizes fc1 for 512 * 21 = 10752 features,
    as its text says conv5 has; we follow the text (512 channels) so the model runs. ``hidden``
    (4096 in the seed) defaults smaller.
    """

    def __init__(self, ndf: int = 64, hidden: int = 256, num_classes: int = 1000) -> None:
        super().__init__()
        self.output_num = [4, 2, 1]
        self.conv5 = nn.Conv2d(ndf * 8, ndf * 8, 4, 1, 0, bias=False)
        self.spp = SpatialPyramidPool(self.output_num, mode="max", bins="ceil_pad")
        self.fc1 = nn.Linear(self.spp.feature_count(ndf * 8), hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(self.fc1(self.spp(self.conv5(x)))))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[..., nn.Module]
    input_shape: tuple[int, int, int, int]
    source: str
    input_rule: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("sppnet-zf5", SppNetZF5, (1, 3, 224, 224), "SPP paper, ZF-5 with {6,3,2,1} (adaptive bins)",
                 "any H, W >= 9 (the conv stack needs a 1x1 map)"),
        ZooEntry("spp-net-seed000", SppNetSeed000, (1, 512, 16, 16), "seed 000 SPP_NET, [4,2,1] (ceil_pad bins)",
                 "H, W >= 5 with conv5 map size S=H-3 not in {1,2,3,5,9} (seed layer raises there)"),
    ]
}


def zoo_names() -> list[str]:
    return sorted(ZOO)


def get_entry(name: str) -> ZooEntry:
    from .errors import UserError

    try:
        return ZOO[name]
    except KeyError:
        raise UserError(f"unknown zoo model {name!r} (known: {', '.join(zoo_names())})") from None


def create(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A zoo model with deterministic random weights (``seed``)."""
    entry = get_entry(name)
    torch.manual_seed(seed)
    return entry.factory(**kwargs).eval()
