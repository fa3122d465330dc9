"""Deprecated module: the window pyramid's lowering is ``spp_deploy.export.lowering.window``
(the graph pass, schema and translation are the registry's, ``spp_deploy.export.registry``)."""

import warnings

from .lowering.window import *  # noqa: F401,F403
from .lowering.window import MAX_MAP_SIDE, SPEC, TABLE_LEVELS, build_window_pyramid, project_span  # noqa: F401
from .passes import run_pass as _run_pass

warnings.warn("spp_deploy.export.window is deprecated: use spp_deploy.export.lowering.window", DeprecationWarning,
              stacklevel=2)


def lower_windows_standard(model):
    """Deprecated: ``spp_deploy.export.passes.run_pass(model, "standard")``."""
    return _run_pass(model, "standard")


def windows_to_plugin_mode(model):
    """Deprecated: ``spp_deploy.export.passes.run_pass(model, "plugin")``."""
    return _run_pass(model, "plugin")


def schema_op():
    """Deprecated: the registry entry's ``schema_op()``."""
    return SPEC.schema_op()


def translation_entry() -> dict:
    """Deprecated: the registry's ``translation_table()`` holds this entry."""
    return {SPEC.torch_overload(): SPEC.translate(SPEC.schema_op())}
