"""Choices and defaults the library and the command line share (light: no torch, no onnx), so
that a CLI flag's ``choices`` and ``default`` are the library's own."""

DYNAMIC_AXES = ("batch", "height", "width")
DEFAULT_OPSET = 20
MIN_OPSET = 18  # ReduceMax with axes as an input
MAX_OPSET = 23
OPSETS = tuple(range(MIN_OPSET, MAX_OPSET + 1))
SPP_IMPLS = ("standard", "plugin")
DEFAULT_SPP_IMPL = "standard"
# dtype of a window model's `windows` input: float32 for TensorRT, which has no float64
WINDOWS_DTYPES = ("float64", "float32")
DEFAULT_WINDOWS_DTYPE = "float64"
# (rtol relative to the reference's largest magnitude, atol) of the export parity check
PRECISION_TOLERANCES = {"fp32": (1e-5, 0.0), "fp16": (1e-2, 1e-3)}
PRECISIONS = tuple(PRECISION_TOLERANCES)
DEFAULT_PRECISION = "fp32"
DEFAULT_TRITON_MAX_BATCH = 8  # `triton`: max_batch_size of a batchable ONNX file without --max-batch
TRITON_KINDS = ("auto", "cpu", "gpu")  # `triton --kind`: instance_group kind (auto: GPU if the server has one)
DEFAULT_TABULATE_LIMIT = 2048  # largest H, W a probed (tabulated) SPP layer is exported exactly for

# Backend names are the registry's (spp_deploy.runtime.backends.REGISTRY); these old names read it.
_REGISTRY_NAMES = ("BACKENDS", "BENCH_BACKENDS", "DEFAULT_BENCH_BACKENDS", "TRITON_BACKENDS")


def __getattr__(name: str):
    if name in _REGISTRY_NAMES:
        from ..runtime import backends

        return getattr(backends, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
