"""What a recognized SPP layer computes (``SppConfig``) and the user's explicit declarations."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import bins as _bins
from ..errors import UserError


@dataclass(frozen=True)
class SppConfig:
    """(levels, mode, rule, order): everything the canonical op needs."""

    levels: tuple[int, ...]
    mode: str = "max"
    bins: str = "adaptive"
    order: str = "channel_major"

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", _bins.validate_config(self.levels, self.mode, self.bins, self.order))

    def module(self):
        from ..op import SpatialPyramidPool

        return SpatialPyramidPool(self.levels, self.mode, self.bins, self.order)

    def feature_count(self, channels: int) -> int:
        return _bins.feature_count(channels, self.levels)

    def as_dict(self) -> dict:
        return {"levels": list(self.levels), "mode": self.mode, "bins": self.bins, "order": self.order}


def parse_declaration(text: str) -> tuple[str, SppConfig]:
    """'features.spp=levels:4,2,1;bins=ceil_pad;mode=max;order=channel_major' -> (path, config).

    Fields are separated by ';' and take ':' or '='; only ``levels`` is required.
    """
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path or not re.fullmatch(r"[\w.]+", path):
        raise UserError(f"bad --spp-layer {text!r}: expected PATH=levels:4,2,1;bins=RULE;mode=MODE;order=ORDER")
    fields: dict[str, str] = {}
    for item in filter(None, (f.strip() for f in rest.split(";"))):
        m = re.fullmatch(r"(\w+)\s*[:=]\s*(.+)", item)
        if not m or m.group(1) not in ("levels", "bins", "rule", "mode", "order"):
            raise UserError(f"bad --spp-layer field {item!r} (known: levels, bins, mode, order)")
        fields["bins" if m.group(1) == "rule" else m.group(1)] = m.group(2).strip()
    if "levels" not in fields:
        raise UserError(f"--spp-layer {text!r} needs levels, e.g. levels:4,2,1")
    try:
        levels = tuple(int(v) for v in fields["levels"].split(","))
        cfg = SppConfig(levels, fields.get("mode", "max"), fields.get("bins", "adaptive"),
                        fields.get("order", "channel_major"))
    except ValueError as e:
        raise UserError(f"bad --spp-layer {text!r}: {e}") from None
    return path, cfg
