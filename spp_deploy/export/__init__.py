"""Exporter: canonical SPP ops -> ONNX with dynamic batch/height/width.

- ``onnx_export``: torch.export + the dynamo ONNX exporter, with the SPP op kept as one node;
- ``graph``: the post-export pass that lowers that node (standard ops) or keeps it (plugin);
- ``lowering`` + ``symbolic``: the pyramid as ONNX ops, bin edges from ``spp_deploy.bins``.
"""

from .onnx_export import DYNAMIC_AXES, ExportResult, export_onnx, to_onnx_model

__all__ = ["DYNAMIC_AXES", "ExportResult", "export_onnx", "to_onnx_model"]
