"""The CUDA driver API through ctypes: the GPU's identity and plain device buffers when torch has
no CUDA (a CPU-only torch next to a working TensorRT). Nothing is loaded at import.

Uses the primary context of device 0 (``CUDA_VISIBLE_DEVICES`` applies), the context the CUDA
runtime inside TensorRT uses too, so pointers and streams made here are valid for TensorRT.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import numpy as np

_LIB_NAMES = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
_ATTR_CC_MAJOR, _ATTR_CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR

_STATE: dict[str, Any] = {}


class CudaDriverError(RuntimeError):
    """A CUDA driver call failed (the message names the call and the CUresult)."""


def open_driver(lib: Any = None) -> Any:
    """The driver library (``lib`` overrides it, for tests), or None when there is none."""
    if lib is not None:
        return lib
    if "lib" not in _STATE:
        _STATE["lib"] = None
        for name in _LIB_NAMES:
            try:
                _STATE["lib"] = ctypes.CDLL(name)
                break
            except OSError:
                continue
    return _STATE["lib"]


def _check(lib: Any, rc: int, call: str) -> None:
    if rc != 0:
        raise CudaDriverError(f"CUDA driver call {call} failed (CUresult {rc})")


def _device(lib: Any, ordinal: int = 0) -> int:
    _check(lib, lib.cuInit(0), "cuInit")
    dev = ctypes.c_int(0)
    _check(lib, lib.cuDeviceGet(ctypes.byref(dev), ordinal), "cuDeviceGet")
    return dev.value


def driver_gpu_identity(lib: Any = None) -> dict | None:
    """{'name', 'compute_capability'} of device 0 from the driver; None without a driver or GPU."""
    lib = open_driver(lib)
    if lib is None:
        return None
    try:
        dev = _device(lib)
        name = ctypes.create_string_buffer(256)
        _check(lib, lib.cuDeviceGetName(name, 256, dev), "cuDeviceGetName")
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        _check(lib, lib.cuDeviceGetAttribute(ctypes.byref(major), _ATTR_CC_MAJOR, dev), "cuDeviceGetAttribute")
        _check(lib, lib.cuDeviceGetAttribute(ctypes.byref(minor), _ATTR_CC_MINOR, dev), "cuDeviceGetAttribute")
    except (CudaDriverError, AttributeError):
        return None
    return {"name": name.value.decode(errors="replace"), "compute_capability": f"{major.value}.{minor.value}"}


def _declare(fn: Any, argtypes: list) -> None:
    """Argument types of a ctypes function (64-bit pointers must not pass as C ints)."""
    if isinstance(fn, ctypes._CFuncPtr):
        fn.argtypes = argtypes


class DriverCuda:
    """Device buffers and one stream on device 0's primary context (for the TensorRT runner)."""

    def __init__(self, lib: Any = None) -> None:
        self.lib = open_driver(lib)
        if self.lib is None:
            raise CudaDriverError("no CUDA driver (libcuda) found")
        lib = self.lib
        u64, vp, size = ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t  # CUdeviceptr is 64-bit
        _declare(lib.cuMemAlloc_v2, [ctypes.POINTER(u64), size])
        _declare(lib.cuMemFree_v2, [u64])
        _declare(lib.cuMemcpyHtoD_v2, [u64, vp, size])
        _declare(lib.cuMemcpyDtoH_v2, [vp, u64, size])
        self.ctx = ctypes.c_void_p()
        dev = _device(lib)
        _check(lib, lib.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), dev), "cuDevicePrimaryCtxRetain")
        _check(lib, lib.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        self._stream = ctypes.c_void_p()
        _check(lib, lib.cuStreamCreate(ctypes.byref(self._stream), 0), "cuStreamCreate")
        self._dev = dev

    @property
    def stream_handle(self) -> int:
        return int(self._stream.value or 0)

    def alloc(self, nbytes: int) -> int:
        ptr = ctypes.c_uint64(0)
        _check(self.lib, self.lib.cuMemAlloc_v2(ctypes.byref(ptr), max(1, int(nbytes))), "cuMemAlloc")
        return int(ptr.value)

    def free(self, ptr: int) -> None:
        self.lib.cuMemFree_v2(ctypes.c_uint64(ptr))

    def upload(self, arr: np.ndarray) -> int:
        arr = np.ascontiguousarray(arr)
        ptr = self.alloc(arr.nbytes)  # >= 1 byte: an empty tensor (R = 0) still gets a real address
        if arr.nbytes:
            _check(self.lib, self.lib.cuMemcpyHtoD_v2(ptr, arr.ctypes.data, arr.nbytes), "cuMemcpyHtoD")
        return ptr

    def download(self, ptr: int, shape: tuple, dtype: np.dtype) -> np.ndarray:
        out = np.empty(shape, dtype=dtype)
        if out.nbytes:
            _check(self.lib, self.lib.cuMemcpyDtoH_v2(out.ctypes.data, ptr, out.nbytes), "cuMemcpyDtoH")
        return out

    def synchronize(self) -> None:
        _check(self.lib, self.lib.cuStreamSynchronize(self._stream), "cuStreamSynchronize")

    def close(self) -> None:
        if self._stream.value:
            self.lib.cuStreamDestroy_v2(self._stream)
            self._stream = ctypes.c_void_p()
        if self.ctx.value:
            self.lib.cuDevicePrimaryCtxRelease_v2(self._dev)
            self.ctx = ctypes.c_void_p()
