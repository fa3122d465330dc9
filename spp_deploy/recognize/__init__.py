"""Recognize the SPP layers users copied from blogs and rewrite them to the canonical op.

- ``known``: implementations recognized by type/structure (seed SPPLayer, Keras port, adaptive
  pyramids, ultralytics SPP/SPPF), always confirmed by probing before a rewrite;
- ``functions``: SPP functions called in ``forward`` (seed ``spatial_pyramid_pool``), patched;
- ``probe``: behavioural identification, exact or nothing;
- ``rewrite``: ``scan`` (report) and ``canonicalize`` (temporary rewrite for export);
- ``ranges``: where a recognized layer is legal, at its input and at the model input;
- ``table_probe``: any other parameter-free layer measured as a black box into per-size bin tables;
- ``export_mode`` (from ``spp_deploy.sources.heads``): ultralytics output heads in their dynamic
  ONNX export mode.
"""

from ..sources.heads import export_mode
from .config import SppConfig, parse_declaration
from .probe import Match, identify
from .rewrite import LayerReport, canonicalize, scan

__all__ = ["LayerReport", "Match", "SppConfig", "canonicalize", "export_mode", "identify", "parse_declaration", "scan"]
