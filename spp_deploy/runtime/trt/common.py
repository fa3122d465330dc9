"""TensorRT import, version and GPU facts shared by the builder, the runner and ``doctor``.

TensorRT is optional: it is imported only here, lazily. Without it every TensorRT command fails
with ``TensorRTMissing`` (one line, exit code 2) that says how to install it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ...util.errors import UserError
from ...util.extras import pip_install_hint

INSTALL_HINT = (
    f"install it with: {pip_install_hint('tensorrt')} "
    "(the wheels come from NVIDIA's index: add --extra-index-url https://pypi.nvidia.com if pip cannot find them; "
    "needs an NVIDIA GPU and driver)"
)


class TensorRTMissing(UserError):
    """TensorRT (the ``tensorrt`` Python package) cannot be imported."""

    exit_code = 2


def import_tensorrt(what: str = "this command") -> Any:
    """The ``tensorrt`` module, or ``TensorRTMissing`` naming ``what`` needs it and how to install it."""
    try:
        return importlib.import_module("tensorrt")
    except Exception as e:  # ImportError, or a broken install raising OSError from its .so
        reason = "not installed" if isinstance(e, ModuleNotFoundError) else f"cannot be imported ({type(e).__name__}: {e})"
        raise TensorRTMissing(f"TensorRT is {reason}; {what} needs it: {INSTALL_HINT}") from None


def version_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def gpu_identity() -> dict:
    """{'name', 'compute_capability'} of the CUDA device TensorRT uses: through torch when it sees a
    GPU, else through the CUDA driver (a CPU-only torch must not make engines cache under GPU
    "none" or blind the engine/GPU mismatch check), else a CPU marker."""
    try:
        import torch

        if torch.cuda.is_available():
            idx = torch.cuda.current_device()
            major, minor = torch.cuda.get_device_capability(idx)
            return {"name": torch.cuda.get_device_name(idx), "compute_capability": f"{major}.{minor}"}
    except Exception:
        pass
    from .cuda import driver_gpu_identity

    found = driver_gpu_identity()
    if found is not None:
        return found
    return {"name": os.environ.get("SPP_DEPLOY_FAKE_GPU", "none"), "compute_capability": "0.0"}


class CapturingLogger:
    """Factory for a ``trt.ILogger`` that keeps error messages (TensorRT reports why a
    deserialization or build failed only through its logger)."""

    @staticmethod
    def create(trt: Any, min_severity: str = "WARNING"):
        base = getattr(trt, "ILogger", object)

        class _Logger(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                try:
                    base.__init__(self)
                except TypeError:
                    pass
                self.errors: list[str] = []
                self.threshold = _severity_rank(trt, min_severity)

            def log(self, severity, msg) -> None:  # noqa: D401 (TensorRT callback)
                rank = _severity_rank(trt, severity)
                if rank <= _severity_rank(trt, "ERROR") and str(msg).strip():  # last_error: never an empty line
                    self.errors.append(str(msg).strip())
                if rank <= self.threshold and os.environ.get("SPP_DEPLOY_TRT_VERBOSE"):
                    print(f"[TensorRT] {msg}")

            def last_error(self) -> str:
                return self.errors[-1].splitlines()[0] if self.errors else "no message from TensorRT"

            def reset(self) -> None:
                """Forget earlier errors: the next ``last_error`` is about the next operation."""
                self.errors.clear()

        return _Logger()


_SHARED_LOGGERS: dict[int, Any] = {}


def shared_logger(trt: Any):
    """The one logger per ``tensorrt`` module for this process. TensorRT keeps the raw pointer it
    is given (``init_libnvinfer_plugins``, builders, runtimes), so the logger must never be freed:
    a module-level object lives as long as the process. ``reset()`` it before each operation."""
    key = id(trt)
    if key not in _SHARED_LOGGERS:
        _SHARED_LOGGERS[key] = (trt, CapturingLogger.create(trt))  # keep trt alive: id() stays unique
    return _SHARED_LOGGERS[key][1]


_PLUGINS_INITIALISED: set[int] = set()


def init_trt_plugins(trt: Any) -> Any:
    """``init_libnvinfer_plugins`` once per process with the shared logger; returns that logger."""
    logger = shared_logger(trt)
    if id(trt) not in _PLUGINS_INITIALISED and hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")
        _PLUGINS_INITIALISED.add(id(trt))
    logger.reset()
    return logger


def _severity_rank(trt: Any, sev: Any) -> int:
    order = ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"]
    if isinstance(sev, str):
        return order.index(sev)
    sevs = getattr(getattr(trt, "ILogger", None), "Severity", None)
    for i, name in enumerate(order):
        if sevs is not None and getattr(sevs, name, None) == sev:
            return i
    name = getattr(sev, "name", str(sev)).split(".")[-1]
    return order.index(name) if name in order else 2
