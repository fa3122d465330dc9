"""TorchScript-exporter symbolics for our custom ops: the same ``spp_deploy`` nodes (names,
attributes) as the dynamo route's translation table, so ``graph.lower_standard`` and
``graph.to_plugin_mode`` work on either route's model unchanged."""

from __future__ import annotations

import torch

from ..contract import RULE_ATTR, SPP_DOMAIN, SPP_OP, TAB_OP

_registered: set[int] = set()


def _spp(g, x, levels, mode, rule, order):
    from torch.onnx import symbolic_helper as sh

    attrs = {"levels_i": sh._maybe_get_const(levels, "is"), "mode_s": sh._maybe_get_const(mode, "s"),
             f"{RULE_ATTR}_s": sh._maybe_get_const(rule, "s"), "order_s": sh._maybe_get_const(order, "s")}
    return g.op(f"{SPP_DOMAIN}::{SPP_OP}", x, **attrs)


def _tab(g, x, key):
    from torch.onnx import symbolic_helper as sh

    return g.op(f"{SPP_DOMAIN}::{TAB_OP}", x, key_s=sh._maybe_get_const(key, "s"))


def register_symbolics(opset: int) -> None:
    """Register the symbolics for ``opset`` (once per opset)."""
    from ..ops import table_pyramid as tabulated  # noqa: F401  (registers the custom op)

    if opset in _registered:
        return
    torch.onnx.register_custom_op_symbolic("spp_deploy::spatial_pyramid_pool", _spp, opset)
    torch.onnx.register_custom_op_symbolic("spp_deploy::tabulated_pyramid_pool", _tab, opset)
    _registered.add(opset)
