"""The custom ops' standard-op lowerings, one module per op, each registering its entry
(``export.registry``): the pyramid, tabulated pyramids, size-dependent pools, window pyramids.
Imported in this order, which is the order the graph pass applies them in."""

from . import pyramid, tabulated, size_pool, window  # noqa: F401  (each registers its op)
from .common import if_then  # the former export/lowering.py's public names, kept importable from here
from .pyramid import build_pyramid
from .tabulated import build_tabulated

__all__ = ["build_pyramid", "build_tabulated", "if_then"]
