"""``spp-deploy bench``: latency/throughput per backend and input shape, reports and a plot.

- ``workload``: explicit shapes, size sweeps x batch sizes, and which shapes the model can take;
- ``timed``: the backends bench can time (read from the backend registry,
  ``spp_deploy.runtime.backends``), their availability here, and each one's timed calls over the
  runtime runners (GPU: with and without host<->device copies, CUDA graphs);
- ``core``: the measurement loop (``run_bench``) on top of ``spp_deploy.runtime.timing``;
- ``report``: the summary table, JSON and CSV; ``plot``: latency vs megapixels (matplotlib);
- ``triton_client``: the ``triton-http`` / ``triton-grpc`` backends (a running Triton server).
"""

from .timed import BACKENDS, parse_backends, unavailable_reason
from .core import BenchConfig, BenchRecord, BenchReport, run_bench

__all__ = ["BACKENDS", "BenchConfig", "BenchRecord", "BenchReport", "parse_backends", "run_bench",
           "unavailable_reason"]
