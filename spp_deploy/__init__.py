"""spp-deploy: deploy Spatial Pyramid Pooling models to ONNX and TensorRT.

``spp_deploy.SpatialPyramidPool`` is the canonical op; ``spp_deploy.export`` writes ONNX;
``spp_deploy.runtime`` runs and compares backends. Nothing here imports TensorRT, CUDA or
ONNX Runtime at import time.
"""

from .bins import MODES, ORDERS, RULES
from .op import SpatialPyramidPool

__version__ = "0.1.0"
__all__ = ["SpatialPyramidPool", "RULES", "MODES", "ORDERS", "__version__"]
