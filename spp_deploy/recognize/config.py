"""The user's explicit SPP layer declarations (``SppConfig`` itself lives in ``contract``)."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from ..contract import SppConfig
from ..util.errors import UserError

DECLARATION_FORM = "PATH=levels:4,2,1;rule=RULE;mode=MODE;order=ORDER"


def parse_declaration(text: str) -> tuple[str, SppConfig]:
    """'features.spp=levels:4,2,1;rule=ceil_pad;mode=max;order=channel_major' -> (path, config).

    Fields are separated by ';' and take ':' or '='; only ``levels`` is required. ``bins=`` is
    accepted for ``rule=`` (the node attribute's name).

    Args:
        text: ``PATH=FIELDS``, as ``--spp-layer`` takes it.

    Returns:
        (module path, config).

    Raises:
        UserError: no path, no levels, an unknown field, or a bad value.
    """
    path, sep, rest = text.partition("=")
    path = path.strip()
    if not sep or not path or not re.fullmatch(r"[\w.]+", path):
        raise UserError(f"bad SPP layer declaration {text!r}: expected {DECLARATION_FORM}")
    return path, parse_config(rest, text)


def parse_config(fields_text: str, whole: str | None = None) -> SppConfig:
    """'levels:4,2,1;rule=ceil_pad;mode=max' -> SppConfig (the part of a declaration after PATH=)."""
    whole = fields_text if whole is None else whole
    fields: dict[str, str] = {}
    for item in filter(None, (f.strip() for f in fields_text.split(";"))):
        m = re.fullmatch(r"(\w+)\s*[:=]\s*(.+)", item)
        if not m or m.group(1) not in ("levels", "rule", "bins", "mode", "order"):
            raise UserError(f"bad field {item!r} in SPP layer declaration {whole!r} (known: levels, rule, mode, order)")
        fields["rule" if m.group(1) == "bins" else m.group(1)] = m.group(2).strip()
    if "levels" not in fields:
        raise UserError(f"SPP layer declaration {whole!r} needs levels, e.g. levels:4,2,1")
    try:
        levels = tuple(int(v) for v in fields["levels"].split(","))
        return SppConfig(levels, fields.get("mode", "max"), fields.get("rule", "adaptive"),
                         fields.get("order", "channel_major"))
    except ValueError as e:
        raise UserError(f"bad SPP layer declaration {whole!r}: {e}") from None


def declarations(spp_layers: Mapping[str, SppConfig | str] | Iterable[str] | None) -> dict[str, SppConfig]:
    """The user's declared SPP layers as {module path: SppConfig}: a mapping whose values are
    configs or declaration fields ('levels:4,2,1;rule=floor_ceil'), or declaration strings
    ('features.spp=levels:4,2,1;rule=floor_ceil'), the form the command line takes."""
    if not spp_layers:
        return {}
    if isinstance(spp_layers, str):
        spp_layers = [spp_layers]
    if isinstance(spp_layers, Mapping):
        return {p: c if isinstance(c, SppConfig) else parse_config(str(c), f"{p}={c}") for p, c in spp_layers.items()}
    return dict(parse_declaration(d) for d in spp_layers)
