"""spp-deploy: deploy Spatial Pyramid Pooling models to ONNX and TensorRT.

``spp_deploy.SpatialPyramidPool`` is the canonical op; ``spp_deploy.export_onnx`` writes a verified
ONNX file (``checked_export``, above ``export`` and ``runtime``);
``spp_deploy.runtime`` runs and compares backends. Importing the package imports nothing heavy
(the names below load on first use), so the ``spp-deploy`` command starts, and answers Ctrl-C,
before torch is loaded; TensorRT, CUDA and ONNX Runtime are never imported at import time.
"""

from __future__ import annotations

from .util import moved
from .util.lazy import lazy_attributes

__version__ = "0.1.0"
__all__ = ["SpatialPyramidPool", "export_onnx", "WindowSpatialPyramidPool", "WindowProjection", "detect", "RULES",
           "MODES", "ORDERS", "validate", "benchmark", "build_engine", "triton_repository", "localize", "ExportOptions", "__version__"]

_LAZY = {"SpatialPyramidPool": "ops.pyramid", "export_onnx": "checked_export", "RULES": "ops.bins", "MODES": "ops.bins",
         "ORDERS": "ops.bins", "WindowSpatialPyramidPool": "ops.window_pyramid", "WindowProjection": "ops.projection",
         "detect": "detection.pipeline", "validate": "api", "benchmark": "api", "build_engine": "api",
         "triton_repository": "api", "localize": "api", "ExportOptions": "options"}

moved.install()  # the module paths from before ops/, sources/ and util/ still import (deprecated)
__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
