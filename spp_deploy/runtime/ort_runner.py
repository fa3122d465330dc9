"""ONNX Runtime runner: CPU, CUDA or TensorRT execution provider, chosen by name."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError
from .base import Runner

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OrtRunner(Runner):
    def __init__(self, model_path: str | os.PathLike, provider: str = "cpu", threads: int | None = None) -> None:
        if provider not in PROVIDERS:
            raise UserError(f"unknown ONNX Runtime provider {provider!r} (known: {', '.join(PROVIDERS)})")
        self.path, self.provider, self.threads = str(model_path), provider, threads
        self.name = f"ort-{provider}"
        self.session = None

    def activate(self) -> None:
        import onnxruntime as ort

        missing = [p for p in PROVIDERS[self.provider][:1] if p not in ort.get_available_providers()]
        if missing:
            raise UserError(f"ONNX Runtime here has no {missing[0]} (available: {ort.get_available_providers()})")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        try:
            self.session = ort.InferenceSession(self.path, opts, providers=PROVIDERS[self.provider])
        except Exception as e:
            raise UserError(f"ONNX Runtime cannot load {self.path}: {str(e).strip().splitlines()[0]}") from e

    def deactivate(self) -> None:
        self.session = None

    def input_specs(self) -> dict:
        from onnx.helper import tensor_dtype_to_np_dtype  # noqa: F401  (kept lazy)

        return {i.name: (i.type, tuple(i.shape)) for i in self.session.get_inputs()}

    def output_names(self) -> Sequence[str]:
        return [o.name for o in self.session.get_outputs()]

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, dict(feed))
        return dict(zip(self.output_names(), outs))
