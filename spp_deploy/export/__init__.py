"""Exporter: canonical SPP ops -> a checked ONNX model (in memory) with dynamic batch/height/width.
The file itself, verified against PyTorch, is written by ``spp_deploy.deploy.export_onnx``.

- ``onnx_export``: export routes (torch.export + the dynamo ONNX exporter, else the TorchScript
  exporter; ``torchscript`` has its symbolics), with the SPP op kept as one node; ``causes``
  says in one line why a route failed;
- ``graph``: the post-export pass that lowers that node (standard ops) or keeps it (plugin);
- ``lowering`` + ``symbolic``: the pyramid as ONNX ops, bin edges from ``spp_deploy.ops.bins``.
"""

from .onnx_export import (DYNAMIC_AXES, ROUTES, Traced, get_route, refusal, routes_failed, to_onnx_model, trace_routes,
                          trace_to_onnx)

__all__ = ["DYNAMIC_AXES", "ROUTES", "Traced", "get_route", "refusal", "routes_failed", "to_onnx_model", "trace_routes",
           "trace_to_onnx"]
