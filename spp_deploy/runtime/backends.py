"""The backend registry: the one table of backends (``REGISTRY``): each name, what it is, what it
needs, where it runs, how ``bench`` times it and how ``run``/``validate`` make its runner. Every
other list of backend names (``constants.BACKENDS``, ``bench.timed.BACKENDS``, the CLI's choices)
is read from it. Light: runners import their packages only when made."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..util.errors import UserError
from ..util.extras import pip_install_hint

if TYPE_CHECKING:
    from .base import Runner


@dataclass(frozen=True)
class BackendSpec:
    """One backend."""

    name: str
    description: str
    needs: str  # what it runs: "model" (the PyTorch model), "onnx", "engine" (or onnx + shapes in bench), "server"
    device: str  # "cpu", "gpu" or "remote" (a server does the work: no local device, no local threads)
    timing: str  # bench's clock for its no-copy runs: "host" or "cuda-event"
    runner: Callable[..., Runner] | None = None  # run/validate: (spec, model, onnx, engine, plugin, threads) -> Runner
    variant: str | None = None  # the ONNX Runtime provider, Triton protocol or "fp64"
    bench: bool = True  # bench can time it
    bench_default: bool = False  # timed by bench when no --backends is given


def _torch_runner(spec: BackendSpec, model: Any, onnx: Any, engine: Any, plugin: Any, threads: Any) -> Runner:
    from .torch_runner import TorchRunner

    return TorchRunner(model, float64=spec.variant == "fp64")


def _ort_runner(spec: BackendSpec, model: Any, onnx: Any, engine: Any, plugin: Any, threads: Any) -> Runner:
    from .ort_runner import OrtRunner

    return OrtRunner(onnx, spec.variant, threads=threads, plugin=plugin)


def _trt_runner(spec: BackendSpec, model: Any, onnx: Any, engine: Any, plugin: Any, threads: Any) -> Runner:
    from .trt.runner import TrtRunner

    return TrtRunner(engine, plugin=plugin)


_SPECS = (
    BackendSpec("torch", "PyTorch eager, CPU", "model", "cpu", "host", _torch_runner, bench_default=True),
    BackendSpec("torch-fp64", "PyTorch eager, CPU, float64 (accuracy reference)", "model", "cpu", "host",
                _torch_runner, "fp64", bench=False),
    BackendSpec("torch-cuda", "PyTorch eager, CUDA", "model", "gpu", "cuda-event"),
    BackendSpec("ort-cpu", "ONNX Runtime, CPUExecutionProvider", "onnx", "cpu", "host", _ort_runner, "cpu",
                bench_default=True),
    BackendSpec("ort-cuda", "ONNX Runtime, CUDAExecutionProvider", "onnx", "gpu", "host", _ort_runner, "cuda"),
    BackendSpec("ort-trt", "ONNX Runtime, TensorrtExecutionProvider", "onnx", "gpu", "host", _ort_runner, "trt"),
    BackendSpec("trt", "TensorRT engine (spp_deploy.runtime.trt.runner)", "engine", "gpu", "cuda-event",
                _trt_runner),
    BackendSpec("triton-http", "Triton Inference Server, HTTP (tritonclient.http)", "server", "remote", "host",
                variant="http"),
    BackendSpec("triton-grpc", "Triton Inference Server, gRPC (tritonclient.grpc)", "server", "remote", "host",
                variant="grpc"),
)
REGISTRY: dict[str, BackendSpec] = {b.name: b for b in _SPECS}


def names(**where: Any) -> tuple[str, ...]:
    """The backends whose fields equal ``where`` (``names(device="gpu")``), in registry order;
    ``runner=True``: those with a runner (run, validate)."""
    def keep(spec: BackendSpec) -> bool:
        return all((getattr(spec, k) is not None) == v if k == "runner" else getattr(spec, k) == v
                   for k, v in where.items())

    return tuple(b.name for b in _SPECS if keep(b))


BACKENDS = names(runner=True)  # run, validate
BENCH_BACKENDS = names(bench=True)
DEFAULT_BENCH_BACKENDS = names(bench_default=True)
TRITON_BACKENDS = names(device="remote")
MODEL_BACKENDS = names(needs="model")  # PyTorch eager: need the model, not a file
DESCRIPTIONS = {b.name: b.description for b in _SPECS}
GPU_BACKENDS = set(names(device="gpu"))


def spec(backend: str, known: tuple[str, ...] | None = None) -> BackendSpec:
    """The registry's entry for ``backend``; one-line ``UserError`` for a name it does not hold."""
    if backend not in REGISTRY or (known is not None and backend not in known):
        raise UserError(f"unknown backend {backend!r} (known: {', '.join(known or REGISTRY)})")
    return REGISTRY[backend]


def _torch_cuda_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__} (torch.cuda.is_available() is False)"
    return None


def unavailable_reason(backend: str) -> str | None:
    """Why a local ``backend`` cannot run on this machine, or None if it can (as far as can be
    told before loading a model)."""
    b = spec(backend)
    if b.needs == "model":
        return _torch_cuda_reason() if b.device == "gpu" else None
    if b.needs == "onnx":
        from .ort_runner import PROVIDERS

        try:
            import onnxruntime as ort
        except Exception as e:
            return f"onnxruntime cannot be imported ({type(e).__name__}: {e}); {pip_install_hint('cpu')}"
        ep = PROVIDERS[b.variant][0]
        have = ort.get_available_providers()
        if ep not in have:
            pkg = "onnxruntime-gpu" if backend == "ort-cuda" else "onnxruntime-gpu built with TensorRT, and TensorRT"
            return f"onnxruntime {ort.__version__} has no {ep} (available: {', '.join(have)}; needs {pkg})"
        return None
    if b.needs == "engine":
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            return f"TensorRT (the tensorrt Python package) is not installed; {pip_install_hint('tensorrt')}"
        why = _torch_cuda_reason()
        if why is None:
            return None
        from .trt.cuda import driver_gpu_identity  # the runner also works through the driver

        return None if driver_gpu_identity() is not None else f"{why}, and the CUDA driver finds no GPU"
    raise UserError(f"backend {backend} runs on a server: ask its client (spp_deploy.bench.triton_client)")


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
    """The runner of ``backend`` (``run``, ``validate``) over what it needs; one-line ``UserError``
    for a backend without a runner or a missing model/file."""
    b = spec(backend, BACKENDS)
    given = {"model": model, "onnx": onnx, "engine": engine}[b.needs]
    if given is None:
        raise UserError({"model": f"backend {backend} needs the PyTorch model",
                         "onnx": f"backend {backend} needs an ONNX file",
                         "engine": "backend trt needs an engine file (build one with `spp-deploy build`)"}[b.needs])
    return b.runner(b, model, onnx, engine, plugin, threads)
