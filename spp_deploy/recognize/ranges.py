"""Where a recognized layer is defined and fixed-length: at its own input, and mapped back
through the model to input sizes (shape-only runs on the meta device)."""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..ops import bins as _bins
from .config import SppConfig


def compress(values: Sequence[int]) -> str:
    """[1, 2, 3, 5, 9, 10] -> '1-3, 5, 9-10'."""
    out, vals = [], sorted(values)
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ", ".join(out)


def legal_at_spp_input(cfg: SppConfig, h: int | None = None, up_to: int = 64) -> str:
    """The legal H, W at the SPP layer's input, in words, from ``spp_deploy.ops.bins``."""
    if cfg.rule == "floor_kernel":
        text = "fixed-length only where k = H//n >= 1, H mod n < k and n*k <= W < (n+1)*k for every level n"
        if h:
            ws = [w for w in range(1, up_to + 1) if _bins.is_defined(cfg.rule, h, w, cfg.levels)]
            text += f"; at H={h}: W in {{{compress(ws)}}}" if ws else f"; none at H={h}"
        return text
    bad = sorted({s for n in cfg.levels for s in _bins.illegal_sizes(cfg.rule, n, up_to)})
    return f"H, W not in {{{compress(bad)}}}" if bad else "any H, W >= 1"


class _Reached(Exception):
    def __init__(self, shape):
        self.shape = shape


def spp_input_size(model: nn.Module, report, shape: Sequence[int]) -> tuple[int, int] | None:
    """(h, w) at the layer's input for a model input ``shape``; None if the model fails before it."""
    x = torch.empty(*shape, device="meta")
    try:
        with torch.no_grad():
            model(x)
    except _Reached as r:
        return r.shape[2], r.shape[3]
    except Exception:
        return None
    return None


def _stop(*args, **kwargs):
    t = next(a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor))
    raise _Reached(tuple(t.shape))


def illegal_inputs(model: nn.Module, report, example_shape: Sequence[int], up_to: int | None = None) -> dict:
    """Model input sizes where the layer is illegal: {'H': [...], 'W': [...], 'up_to': N}, varying
    one axis with the other at the example's size; includes sizes the layers before it reject."""
    B, C, H, W = example_shape
    up_to = up_to or min(max(2 * max(H, W), 64), 256)
    meta = copy.deepcopy(model).to("meta")
    site = report.site
    handle = None
    if site is not None:
        site.globals[site.name] = _stop
    else:
        handle = meta.get_submodule(report.path).register_forward_pre_hook(lambda m, a: _stop(*a))
    out = {"H": [], "W": [], "up_to": up_to}
    try:
        for axis in ("H", "W"):
            for s in range(1, up_to + 1):
                hw = spp_input_size(meta, report, (1, C, s, W) if axis == "H" else (1, C, H, s))
                if hw is None or not _bins.is_defined(report.config.rule, hw[0], hw[1], report.config.levels):
                    out[axis].append(s)
    finally:
        if site is not None:
            site.globals[site.name] = site.func
        if handle is not None:
            handle.remove()
    return out
