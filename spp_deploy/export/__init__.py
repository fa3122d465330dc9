"""Exporter: custom SPP ops -> a checked ONNX model (in memory) with dynamic sizes.
The file itself, verified against PyTorch, is written by ``spp_deploy.checked_export``.

One pipeline for every op: ``trace`` (export routes: torch.export + the dynamo ONNX exporter,
else the TorchScript exporter, whose symbolics are in ``torchscript``; ``causes`` says in one
line why a route failed) keeps each custom op as one node; ``passes`` lowers those nodes to
standard ops or keeps them as plugin nodes, as ``registry`` says for each op; the lowerings are
``lowering/`` (pyramid, tabulated, size-dependent pool, window), bin edges from ``spp_deploy.ops.bins``
through ``symbolic``.
"""

from .trace import (DYNAMIC_AXES, ROUTES, Traced, get_route, refusal, routes_failed, to_onnx_model, trace_routes,
                    trace_to_onnx)

__all__ = ["DYNAMIC_AXES", "ROUTES", "Traced", "get_route", "refusal", "routes_failed", "to_onnx_model", "trace_routes",
           "trace_to_onnx"]
