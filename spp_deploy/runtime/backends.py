"""The backend registry: names -> runners (``torch``, ``torch-fp64``, ``ort-cpu``, ``ort-cuda``,
``ort-trt``, ``trt``; ``bench`` adds ``torch-cuda`` and Triton clients), what each is, and why one
cannot run on this machine."""

from __future__ import annotations

import os
from typing import Any

from ..util.constants import BACKENDS  # noqa: F401 (re-exported)
from ..util.errors import UserError
from ..util.extras import pip_install_hint
from .base import Runner

DESCRIPTIONS = {
    "torch": "PyTorch eager, CPU",
    "torch-fp64": "PyTorch eager, CPU, float64 (accuracy reference)",
    "torch-cuda": "PyTorch eager, CUDA",
    "ort-cpu": "ONNX Runtime, CPUExecutionProvider",
    "ort-cuda": "ONNX Runtime, CUDAExecutionProvider",
    "ort-trt": "ONNX Runtime, TensorrtExecutionProvider",
    "trt": "TensorRT engine (spp_deploy.runtime.trt.runner)",
    "triton-http": "Triton Inference Server, HTTP (tritonclient.http)",
    "triton-grpc": "Triton Inference Server, gRPC (tritonclient.grpc)",
}
GPU_BACKENDS = {"torch-cuda", "ort-cuda", "ort-trt", "trt"}


def _torch_cuda_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__} (torch.cuda.is_available() is False)"
    return None


def unavailable_reason(backend: str) -> str | None:
    """Why a local ``backend`` cannot run on this machine, or None if it can (as far as can be
    told before loading a model)."""
    if backend in ("torch", "torch-fp64"):
        return None
    if backend == "torch-cuda":
        return _torch_cuda_reason()
    if backend.startswith("ort-"):
        from .ort_runner import ALIASES, PROVIDERS

        try:
            import onnxruntime as ort
        except Exception as e:
            return f"onnxruntime cannot be imported ({type(e).__name__}: {e}); {pip_install_hint('cpu')}"
        ep = PROVIDERS[ALIASES[backend]][0]
        have = ort.get_available_providers()
        if ep not in have:
            pkg = "onnxruntime-gpu" if backend == "ort-cuda" else "onnxruntime-gpu built with TensorRT, and TensorRT"
            return f"onnxruntime {ort.__version__} has no {ep} (available: {', '.join(have)}; needs {pkg})"
        return None
    if backend == "trt":
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            return f"TensorRT (the tensorrt Python package) is not installed; {pip_install_hint('tensorrt')}"
        why = _torch_cuda_reason()
        if why is None:
            return None
        from .trt.cuda import driver_gpu_identity  # the runner also works through the driver

        return None if driver_gpu_identity() is not None else f"{why}, and the CUDA driver finds no GPU"
    raise UserError(f"unknown backend {backend!r} (known: {', '.join(DESCRIPTIONS)})")

def parse_backends(text: str, known=BACKENDS) -> list[str]:
    """'torch,ort-cpu' -> ['torch', 'ort-cpu']; one-line error for empty, unknown or repeated names."""
    out = [b.strip() for b in (text or "").split(",")]
    if not any(out):
        raise UserError("no backend given (known: " + ", ".join(known) + ")")
    for b in out:
        if b not in known:
            raise UserError(f"unknown backend {b!r} (known: {', '.join(known)})")
    twice = next((b for i, b in enumerate(out) if b in out[:i]), None)
    if twice:
        raise UserError(f"backend {twice} is listed twice")
    return out


def make_runner(backend: str, *, model: Any = None, onnx: str | os.PathLike | None = None,
                engine: str | os.PathLike | None = None, plugin: str | os.PathLike | None = None,
                threads: int | None = None) -> Runner:
    if backend in ("torch", "torch-fp64"):
        if model is None:
            raise UserError(f"backend {backend} needs the PyTorch model")
        from .torch_runner import TorchRunner

        return TorchRunner(model, float64=backend == "torch-fp64")
    if backend.startswith("ort-"):
        if onnx is None:
            raise UserError(f"backend {backend} needs an ONNX file")
        from .ort_runner import OrtRunner

        return OrtRunner(onnx, backend[4:], threads=threads, plugin=plugin)
    if backend == "trt":
        if engine is None:
            raise UserError("backend trt needs an engine file (build one with `spp-deploy build`)")
        from .trt.runner import TrtRunner

        return TrtRunner(engine, plugin=plugin)
    raise UserError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
