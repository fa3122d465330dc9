"""Deprecated module: ``spp_deploy.export.lowering.size_pool``."""

import warnings

from .lowering.size_pool import build_size_pool  # noqa: F401

warnings.warn("spp_deploy.export.size_pool is deprecated: use spp_deploy.export.lowering.size_pool",
              DeprecationWarning, stacklevel=2)
