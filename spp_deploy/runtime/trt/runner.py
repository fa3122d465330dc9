"""TensorRT engine runner: tensor-address API, ``execute_async_v3``, per-call input shapes inside
the engine's profile (a clear error outside it). Device buffers are torch CUDA tensors, or plain
CUDA driver allocations when torch has no CUDA (TensorRT does not need torch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import UserError
from ..base import Runner
from .common import gpu_identity, import_tensorrt, init_trt_plugins
from .metadata import EngineMeta, engine_mismatch
from .plugin_mode import load_plugin
from .profiles import fmt_shape, shape_outside_profile

_DUMMY_BYTES = 256  # TensorRT's alignment: any address of a fresh allocation will do

# numpy dtype name -> torch dtype name (TensorRT types that numpy can hold)
_TORCH = {"float32": "float32", "float16": "float16", "int32": "int32", "int64": "int64", "int8": "int8",
          "uint8": "uint8", "bool": "bool"}


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
        self.engine = self.context = self.stream = None
        self._specs: dict[str, tuple[np.dtype, tuple]] = {}
        self._profiles: dict[str, tuple] = {}
        self._outputs: list[str] = []
        self._driver = None
        self._dummy = None  # the buffer an empty tensor is bound to (enqueueV3 refuses a null address)

    def activate(self) -> None:
        trt = self._trt or import_tensorrt("the TensorRT runner")
        self._trt = trt
        meta = EngineMeta.load(self.path)
        why = engine_mismatch(meta, str(trt.__version__), gpu_identity())
        if why:
            raise UserError(f"{self.path}: {why}")
        logger = init_trt_plugins(trt)  # one process-wide logger: TensorRT keeps its raw pointer
        plugin = self.plugin or (meta.plugin if meta and meta.plugin_mode else None)
        if plugin:
            if not Path(plugin).is_file():
                raise UserError(f"{self.path} uses the SPP plugin, but the plugin library {plugin} does not exist: give the library's path")
            load_plugin(Path(plugin), trt)
        elif meta is not None and meta.plugin_mode:
            raise UserError(f"{self.path} uses the SPP plugin: give the path of libspp_plugin.so (or set SPP_DEPLOY_PLUGIN_LIB)")
        self._driver = None if _torch_has_cuda() else _driver_or_refuse()
        logger.reset()
        self._runtime = trt.Runtime(logger)
        data = self.path.read_bytes()
        engine = self._runtime.deserialize_cuda_engine(data) if data else None
        if engine is None:
            raise UserError(f"cannot load engine {self.path}: {logger.last_error()} "
                            "(corrupt file, or built by another TensorRT version / for another GPU)")
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise UserError(f"cannot create an execution context for {self.path}: {logger.last_error()}")
        if self._driver is None:
            import torch

            self.stream = torch.cuda.Stream()
        if self.profile_index and hasattr(self.context, "set_optimization_profile_async"):
            self.context.set_optimization_profile_async(self.profile_index, self.stream_handle)
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
        """The CUDA stream TensorRT runs on (torch's stream, or the driver fallback's)."""
        return self._driver.stream_handle if self._driver is not None else self.stream.cuda_stream

    def deactivate(self) -> None:
        self.context = self.engine = None
        self.stream = self._dummy = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def input_specs(self) -> dict:
        return dict(self._specs)

    def output_names(self) -> list[str]:
        return list(self._outputs)

    def profile(self, name: str) -> tuple:
        return self._profiles[name]

    @property
    def is_active(self) -> bool:
        return self.context is not None

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
            if not self.context.set_input_shape(name, tuple(np.shape(arr))):
                raise UserError(f"TensorRT refused input shape {name}:{fmt_shape(np.shape(arr))}")
        missing = self.context.infer_shapes() if hasattr(self.context, "infer_shapes") else []
        if missing:
            raise UserError(f"TensorRT cannot infer output shapes: inputs {', '.join(missing)} not set")
        shapes = {n: tuple(self.context.get_tensor_shape(n)) for n in self._outputs}
        dtypes = {n: trt_dtype_to_numpy(self._trt, self.engine.get_tensor_dtype(n)) for n in self._outputs}
        if self._driver is not None:
            return self._infer_driver(feed, shapes, dtypes)
        return self._infer_torch(feed, shapes, dtypes)

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream_handle):
            raise UserError("TensorRT execution failed (execute_async_v3 returned False)")

    def _infer_torch(self, feed, shapes, dtypes) -> dict[str, np.ndarray]:
        import torch

        with torch.cuda.stream(self.stream):
            keep = []
            for name, arr in feed.items():
                t = torch.from_numpy(np.ascontiguousarray(arr)).to("cuda", non_blocking=False)
                keep.append(t)
                self.context.set_tensor_address(name, self.tensor_address(t))
            outs = {}
            for name in self._outputs:
                t = torch.empty(shapes[name], dtype=getattr(torch, _TORCH[dtypes[name].name]), device="cuda")
                self.context.set_tensor_address(name, self.tensor_address(t))
                outs[name] = t
            self._execute()
        self.stream.synchronize()
        return {n: t.cpu().numpy() for n, t in outs.items()}

    def tensor_address(self, t: Any) -> int:
        """The address TensorRT gets for torch tensor ``t``: its data, or for an empty tensor (R = 0
        windows: data_ptr() is 0, which enqueueV3 refuses) a small dummy buffer on its device."""
        if t.numel():
            return int(t.data_ptr())
        if self._dummy is None or self._dummy.device != t.device:
            import torch

            self._dummy = torch.empty(_DUMMY_BYTES, dtype=torch.uint8, device=t.device)
        return int(self._dummy.data_ptr())

    def _infer_driver(self, feed, shapes, dtypes) -> dict[str, np.ndarray]:
        drv, ptrs = self._driver, []
        try:
            for name, arr in feed.items():
                ptrs.append(drv.upload(np.ascontiguousarray(arr)))
                self.context.set_tensor_address(name, ptrs[-1])
            outs = {}
            for name in self._outputs:
                nbytes = int(np.prod(shapes[name], dtype=np.int64)) * dtypes[name].itemsize
                ptrs.append(drv.alloc(nbytes))
                self.context.set_tensor_address(name, ptrs[-1])
                outs[name] = ptrs[-1]
            self._execute()
            drv.synchronize()
            return {n: drv.download(p, shapes[n], dtypes[n]) for n, p in outs.items()}
        finally:
            for p in ptrs:
                drv.free(p)


def _torch_has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def _driver_or_refuse():
    """Device buffers through the CUDA driver when torch has no CUDA; a one-line error without a GPU."""
    from .cuda import CudaDriverError, DriverCuda

    try:
        return DriverCuda()
    except (CudaDriverError, AttributeError, OSError) as e:
        raise UserError(f"the TensorRT runner needs a CUDA GPU: torch has no CUDA and the CUDA driver is "
                        f"unusable ({e})") from None
