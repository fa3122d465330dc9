"""Built-in seed models: randomly initialised, no downloads; the test bed of the toolkit.

The models run the seed code itself (``spp_deploy.sources.seeds``), so every export goes through layer
recognition. Each entry names its input rule: the input sizes where its SPP layer is defined
(``spp-deploy inspect`` computes the exact sets). FC widths are kept small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from . import seeds


class SppNetZF5(nn.Module):
    """The SPP paper's ZF-5 classifier: five conv layers, a {6,3,2,1} adaptive max pyramid (as
    users write it: flattened nn.AdaptiveMaxPool2d outputs concatenated), three FC layers.

    Conv widths follow the paper; ``hidden`` (4096 in the paper) defaults smaller to keep the
    demo light (weights are random anyway).
    """

    def __init__(self, num_classes: int = 1000, hidden: int = 256, levels=(6, 3, 2, 1)) -> None:
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
        self.spp = seeds.AdaptivePyramidPool(levels, mode="max")
        self.classifier = nn.Sequential(
            nn.Linear(256 * sum(n * n for n in levels), hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.spp(self.features(x)))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[..., nn.Module]
    input_shape: tuple[int, int, int, int]
    source: str
    input_rule: str


def _sppnet_pytorch(ndf: int = 64, hidden: int = 256, num_classes: int = 1000) -> nn.Module:
    return seeds.SPP_NET(ndf=ndf, hidden=hidden, num_classes=num_classes)


def _detection(spp_level: int = 3, hidden: int = 256, pool_type: str = "max_pool") -> nn.Module:
    return seeds.DetectionNetSPP(spp_level=spp_level, hidden=hidden, pool_type=pool_type)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("sppnet-zf5", SppNetZF5, (1, 3, 224, 224), "SPP paper, ZF-5 with {6,3,2,1} (adaptive bins)",
                 "any H, W >= 13 (conv2 needs a 5x5 padded map)"),
        ZooEntry("sppnet-pytorch", _sppnet_pytorch, (1, 512, 16, 16), "sppnet-pytorch SPP_NET, [4,2,1] (ceil_pad bins)",
                 "H, W >= 5 with conv5 map size S=H-3 not in {1,2,3,5,9} (seed layer raises there); batch 1"),
        ZooEntry("detection-net-spp", _detection, (1, 3, 64, 64), "DetectionNetSPP with erogol's SPPLayer(3) (floor_kernel)",
                 "SPP map h x w (h = ((((H-2)//2-2)//2-2)//2)-2) fixed-length only where, for n = 1, 2, 4, "
                 "k = h//n >= 1, h mod n < k and n*k <= w < (n+1)*k: e.g. 64x64; most non-square sizes fail"),
        ZooEntry("keras-spp", seeds.KerasSppNet, (1, 3, 64, 64), "keras-spp SpatialPyramidPooling([1,2,4]), PyTorch port "
                 "(rounded bins, bin_major)", "H, W >= 14 (SPP map (S-2)//2-2 >= 4: no empty bins)"),
        ZooEntry("yolo-spp", seeds.YoloSppNet, (1, 3, 256, 256), "ultralytics SPP(5,9,13) in a small "
                 "YOLO backbone (stride-1 pools, not binned)", "any H, W >= 1 (output keeps H/8, W/8)"),
    ]
}

RENAMED = {"spp-net-seed000": "sppnet-pytorch"}
"""Old zoo names -> today's: the old ones still load, with a ``Renamed`` warning."""


@dataclass(frozen=True)
class DetectorEntry:
    """A two-input detection model (image + windows): exported as trunk + head
    (``spp-deploy export-detector``), run with ``spp-deploy detect``."""

    name: str
    factory: Callable[..., nn.Module]
    source: str


def _zf5_detector(hidden: int = 4096) -> nn.Module:
    from ..detection.model import SppNetZF5Detector

    return SppNetZF5Detector(hidden=hidden)


DETECTORS: dict[str, DetectorEntry] = {
    e.name: e
    for e in [
        DetectorEntry("sppnet-zf5-det", _zf5_detector,
                      "SPP-net detection, ZF-5 trunk + window SPP {1,2,3,6} + fc6/fc7 (hidden=4096)"),
    ]
}


def zoo_names() -> list[str]:
    return sorted(ZOO)


def current_name(name: str) -> str:
    """``name``, or the name an old zoo name was given (with a ``Renamed`` warning)."""
    if name not in RENAMED:
        return name
    import warnings

    from ..util.errors import Renamed

    warnings.warn(Renamed(f"zoo:{name} is now called zoo:{RENAMED[name]} (the old name will be removed)"),
                  stacklevel=3)
    return RENAMED[name]


def get_entry(name: str) -> ZooEntry:
    from ..util.errors import UserError

    name = current_name(name)
    if name in DETECTORS:
        raise UserError(f"zoo:{name} is a detector (image + windows): export it with "
                        "`spp-deploy export-detector`, run it with `spp-deploy detect`")
    try:
        return ZOO[name]
    except KeyError:
        known = ", ".join(zoo_names() + sorted(DETECTORS))
        raise UserError(f"unknown zoo model {name!r} (known: {known})") from None


def create(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A zoo model (or detector) with deterministic random weights (``seed``)."""
    entry = DETECTORS.get(name) or get_entry(name)  # get_entry: old names too
    torch.manual_seed(seed)
    return entry.factory(**kwargs).eval()
