"""Deprecated module: the trace is ``spp_deploy.export.trace`` (this name said only "ONNX export")."""

import warnings

from .trace import *  # noqa: F401,F403
from .trace import _ROUTE_FUNCTIONS, _quiet, check_model  # noqa: F401  (names callers reached for)
from .registry import translation_table as _translation_table  # noqa: F401

warnings.warn("spp_deploy.export.onnx_export is deprecated: use spp_deploy.export.trace", DeprecationWarning,
              stacklevel=2)
