"""The CUDA driver API through ctypes: the GPU's name and compute capability when torch has no
CUDA (a CPU-only torch next to a working TensorRT), for the engine cache key and the engine/GPU
mismatch check. Buffers and streams are Polygraphy's (``TrtRunner``). Nothing is loaded at import.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

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
