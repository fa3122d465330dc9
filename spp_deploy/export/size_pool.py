"""Deprecated module: ``spp_deploy.export.lowering.size_pool``."""

from .lowering.size_pool import build_size_pool  # noqa: F401
