"""Backend names -> runners: ``torch``, ``torch-fp64``, ``ort-cpu``, ``ort-cuda``, ``ort-trt``, ``trt``."""

from __future__ import annotations

import os
from typing import Any

from ..constants import BACKENDS  # noqa: F401 (re-exported)
from ..errors import UserError
from .base import Runner

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
        from .trt_runner import TrtRunner

        return TrtRunner(engine, plugin=plugin)
    raise UserError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
