"""ONNX Runtime runner: CPU, CUDA or TensorRT execution provider, chosen by name."""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from ..util.errors import UserError, first_line
from .backends import REGISTRY, names
from .base import Runner


def _is_plugin_mode(path: str) -> bool:
    try:
        import onnx

        from ..contract import SPP_DOMAIN

        m = onnx.load(path, load_external_data=False)
        return any(n.domain == SPP_DOMAIN for n in m.graph.node)
    except Exception:
        return False

# provider spellings: the registry's backend names (ort-cpu -> cpu) and TensorRT's own name
ALIASES = {"tensorrt": "trt", **{b: REGISTRY[b].variant for b in names(needs="onnx")}}
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OrtRunner(Runner):
    def __init__(self, model_path: str | os.PathLike, provider: str = "cpu", threads: int | None = None,
                 plugin: str | os.PathLike | None = None, cuda_graph: bool = False) -> None:
        """``cuda_graph``: capture and replay the run as a CUDA graph (CUDA / TensorRT providers;
        inputs must then stay in the same device buffers, bound with ``io_binding``)."""
        provider = ALIASES.get(provider, provider)
        if provider not in PROVIDERS:
            raise UserError(f"unknown ONNX Runtime provider {provider!r} (known: {', '.join(PROVIDERS)})")
        self.path, self.provider, self.threads = str(model_path), provider, threads
        self.plugin = str(plugin) if plugin else None
        self.name = f"ort-{provider}"
        self.cuda_graph = bool(cuda_graph) and provider != "cpu"
        self.session = None

    def activate(self) -> None:
        import onnxruntime as ort

        missing = [p for p in PROVIDERS[self.provider][:1] if p not in ort.get_available_providers()]
        if missing:
            raise UserError(f"ONNX Runtime here has no {missing[0]} (available: {ort.get_available_providers()})")
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # fatal only: a failed run raises, and its message is reported once
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if not os.path.isfile(self.path):
            raise UserError(f"ONNX file not found: {self.path}")
        try:
            self.session = ort.InferenceSession(self.path, opts, providers=self._providers())
        except Exception as e:
            raise UserError(f"ONNX Runtime cannot load {self.path}: {first_line(e)}") from e

    def _providers(self) -> list:
        """Provider list; the TensorRT EP gets the SPP plugin library for plugin-mode files (CPU and
        CUDA run the node's model-local function body instead)."""
        provs: list = list(PROVIDERS[self.provider])
        if self.provider == "trt":
            plugin = self.plugin
            if plugin is None and _is_plugin_mode(self.path):
                try:
                    from ..native.library import find_plugin_library

                    found = find_plugin_library()
                    plugin = str(found) if found else None
                except Exception:
                    plugin = None
            if plugin:
                provs[0] = ("TensorrtExecutionProvider", {"trt_extra_plugin_lib_paths": plugin})
        if self.cuda_graph:
            name, opts = provs[0] if isinstance(provs[0], tuple) else (provs[0], {})
            key = {"cuda": ("enable_cuda_graph", "1"), "trt": ("trt_cuda_graph_enable", "True")}[self.provider]
            provs[0] = (name, {**opts, key[0]: key[1]})
        return provs

    def deactivate(self) -> None:
        self.session = None

    def input_specs(self) -> dict:
        return {i.name: (i.type, tuple(i.shape)) for i in self.session.get_inputs()}

    @property
    def is_active(self) -> bool:
        return self.session is not None

    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def infer_impl(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, dict(feed))
        return dict(zip(self.output_names(), outs))
