"""spp-deploy: deploy Spatial Pyramid Pooling models to ONNX and TensorRT.

``spp_deploy.SpatialPyramidPool`` is the canonical op; ``spp_deploy.export`` writes ONNX;
``spp_deploy.runtime`` runs and compares backends. Importing the package imports nothing heavy
(the names below load on first use), so the ``spp-deploy`` command starts, and answers Ctrl-C,
before torch is loaded; TensorRT, CUDA and ONNX Runtime are never imported at import time.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["SpatialPyramidPool", "WindowSpatialPyramidPool", "WindowProjection", "detect", "RULES", "MODES",
           "ORDERS", "__version__"]

_LAZY = {"SpatialPyramidPool": "op", "RULES": "bins", "MODES": "bins", "ORDERS": "bins",
         "WindowSpatialPyramidPool": "window", "WindowProjection": "projection", "detect": "detection.pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
