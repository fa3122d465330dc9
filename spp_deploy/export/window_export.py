"""Deprecated module: a detection head traces through ``spp_deploy.export.trace.to_onnx_model``
like every model (``to_onnx_window_model`` is kept here as that call)."""

from __future__ import annotations

import warnings

import onnx
import torch

from ..util.constants import DEFAULT_OPSET
from ..ops.window_pyramid import PARITY_CASES, parity_windows  # noqa: F401  (their old home)
from .trace import MAPS_NAME, OUTPUT_NAME, WINDOW_AXES, WINDOWS_NAME, to_onnx_model

warnings.warn("spp_deploy.export.window_export is deprecated: use spp_deploy.export.trace", DeprecationWarning,
              stacklevel=2)


def to_onnx_window_model(model: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor],
                         opset: int = DEFAULT_OPSET, spp_impl: str = "standard") -> onnx.ModelProto:
    """Deprecated: ``to_onnx_model(model, {MAPS_NAME: maps, WINDOWS_NAME: windows}, WINDOW_AXES, ...)``."""
    maps, windows = example
    return to_onnx_model(model, {MAPS_NAME: maps, WINDOWS_NAME: windows}, WINDOW_AXES, opset, spp_impl)


__all__ = ["MAPS_NAME", "OUTPUT_NAME", "PARITY_CASES", "WINDOWS_NAME", "parity_windows", "to_onnx_window_model"]
