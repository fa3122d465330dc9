"""TensorRT engine runner: Polygraphy's ``TrtRunner`` (its own device buffers, CUDA stream and
output allocator; empty tensors get a real address) under ours, which checks the engine's
metadata, registers the SPP plugin library and refuses shapes outside the engine's profile in one line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...util.errors import UserError
from ..base import Runner
from . import poly
from .common import gpu_identity, import_tensorrt
from .metadata import EngineMeta, engine_mismatch
from .plugin_mode import load_plugin
from .profiles import shape_outside_profile

_DUMMY_BYTES = 256  # TensorRT's alignment: any address of a fresh allocation will do


def trt_dtype_to_numpy(trt: Any, dt: Any) -> np.dtype:
    """numpy dtype of a TensorRT DataType (bf16 has none: refused)."""
    if hasattr(trt, "nptype"):
        try:
            return np.dtype(trt.nptype(dt))
        except TypeError:
            pass
    name = getattr(dt, "name", str(dt)).split(".")[-1].upper()
    table = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8,
             "UINT8": np.uint8, "BOOL": np.bool_}
    if name not in table:
        raise UserError(f"engine tensor type {name} has no numpy equivalent")
    return np.dtype(table[name])


class TrtRunner(Runner):
    """Runs a serialized engine. ``plugin`` (or the engine's metadata) names the SPP plugin library."""

    name = "trt"

    def __init__(self, engine_path: str | os.PathLike, plugin: str | os.PathLike | None = None,
                 profile_index: int = 0, trt: Any = None) -> None:
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise UserError(f"engine file not found: {self.path}")
        self.plugin, self.profile_index, self._trt = plugin, profile_index, trt
        self.engine = self.context = self._poly = None
        self._specs: dict[str, tuple[np.dtype, tuple]] = {}
        self._profiles: dict[str, tuple] = {}
        self._outputs: list[str] = []
        self._dummy = None  # the buffer an empty torch tensor is bound to (enqueueV3 refuses a null address)

    def activate(self) -> None:
        trt = self._trt or import_tensorrt("the TensorRT runner")
        self._trt = trt
        meta = EngineMeta.load(self.path)
        why = engine_mismatch(meta, str(trt.__version__), gpu_identity())
        if why:
            raise UserError(f"{self.path}: {why}")
        plugin = self.plugin or (meta.plugin if meta and meta.plugin_mode else None)
        if plugin:
            if not Path(plugin).is_file():
                raise UserError(f"{self.path} uses the SPP plugin, but the plugin library {plugin} does not exist: give the library's path")
            load_plugin(Path(plugin), trt)
        elif meta is not None and meta.plugin_mode:
            raise UserError(f"{self.path} uses the SPP plugin: give the path of libspp_plugin.so (or set SPP_DEPLOY_PLUGIN_LIB)")
        data = self.path.read_bytes()
        with poly.using(trt, f"cannot load engine {self.path}",
                        "corrupt file, or built by another TensorRT version / for another GPU"):
            from polygraphy.backend import trt as poly_trt

            if not data:
                raise UserError(f"cannot load engine {self.path}: the file is empty")
            runner = poly_trt.TrtRunner(poly_trt.engine_from_bytes(data), name="spp-deploy",
                                        optimization_profile=self.profile_index or None)
            runner.activate()
        self._poly, self.engine, self.context = runner, runner.engine, runner.context
        engine = self.engine
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = trt_dtype_to_numpy(trt, engine.get_tensor_dtype(name))
            dims = tuple(d if d >= 0 else "?" for d in engine.get_tensor_shape(name))
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._specs[name] = (dtype, dims)
                mn, _, mx = engine.get_tensor_profile_shape(name, self.profile_index)
                self._profiles[name] = (tuple(mn), tuple(mx))
            else:
                self._outputs.append(name)

    @property
    def stream_handle(self) -> int:
        """The CUDA stream TensorRT runs on (Polygraphy's)."""
        return int(self._poly.stream.ptr)

    @property
    def stream(self) -> Any:
        """That stream for torch (``bench`` times engines on it with CUDA events and graphs)."""
        if self._poly is None:
            return None
        import torch

        return torch.cuda.ExternalStream(self.stream_handle)

    def deactivate(self) -> None:
        if self._poly is not None:
            with poly.using(self._trt, f"cannot release engine {self.path}"):
                self._poly.deactivate()
        self._poly = self.context = self.engine = self._dummy = None

    def input_specs(self) -> dict:
        return dict(self._specs)

    def output_names(self) -> list[str]:
        return list(self._outputs)

    def profile(self, name: str) -> tuple:
        return self._profiles[name]

    @property
    def is_active(self) -> bool:
        return self._poly is not None

    @property
    def trt(self) -> Any:
        """The tensorrt module this runner uses (a fake one in tests)."""
        return self._trt

    def infer_impl(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, arr in feed.items():
            lo, hi = self._profiles[name]
            why = shape_outside_profile(name, np.shape(arr), lo, hi)
            if why:
                raise UserError(why)
        with poly.using(self._trt, "TensorRT execution failed"):
            outs = self._poly.infer({n: np.ascontiguousarray(a) for n, a in feed.items()}, check_inputs=False)
        return {n: np.array(outs[n], copy=True) for n in self._outputs}  # Polygraphy reuses its host buffers

    def tensor_address(self, t: Any) -> int:
        """The address TensorRT gets for torch tensor ``t``: its data, or for an empty tensor (R = 0
        windows: data_ptr() is 0, which enqueueV3 refuses) a small dummy buffer on its device."""
        if t.numel():
            return int(t.data_ptr())
        if self._dummy is None or self._dummy.device != t.device:
            import torch

            self._dummy = torch.empty(_DUMMY_BYTES, dtype=torch.uint8, device=t.device)
        return int(self._dummy.data_ptr())
