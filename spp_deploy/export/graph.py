"""Deprecated module: the graph pass is ``spp_deploy.export.passes.run_pass`` for every op."""

import warnings

import onnx

from ..contract import SppConfig, spp_nodes  # noqa: F401  (spp_nodes: one definition, in the contract)
from .lowering.pyramid import build_pyramid  # noqa: F401
from .lowering.tabulated import build_tabulated  # noqa: F401
from .passes import run_pass, splice  # noqa: F401

warnings.warn("spp_deploy.export.graph is deprecated: use spp_deploy.export.passes", DeprecationWarning, stacklevel=2)


def lower_standard(model: onnx.ModelProto) -> onnx.ModelProto:
    """Deprecated: ``run_pass(model, "standard")``: every custom node inlined as standard ops."""
    return run_pass(model, "standard")


def to_plugin_mode(model: onnx.ModelProto) -> onnx.ModelProto:
    """Deprecated: ``run_pass(model, "plugin")``: plugin nodes with function bodies."""
    return run_pass(model, "plugin")


def node_config(node) -> SppConfig:
    """Deprecated: ``SppConfig.from_attrs(node.attrs)``."""
    return SppConfig.from_attrs(node.attrs)
