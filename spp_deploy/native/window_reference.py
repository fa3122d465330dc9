"""The window-SPP plugin's native code from Python: the CPU reference in ``libspp_reference.so``
(projection twin, pyramid, config parser) and the CUDA kernel under the SIMT emulator.

Sources: ``plugins/windowSpatialPyramidPoolPlugin``. The C++ projection (``windowSpp.h``) is the
twin of ``spp_deploy.projection.project_span``; tests compare the two on many boxes. Imports
nothing heavy at module import (numpy inside functions).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from .contract import MAX_NB_LEVELS
from .errors import UserError
from .plugins import STATUS_OK, CField, open_reference_library, serialize_with

WINDOW_EMULATOR_NAME = "libspp_window_kernel_emu.so"
WINDOW_EMULATOR_DRIVER = "windowSpatialPyramidPoolPlugin/windowKernelEmulated.cpp"


class CWindowConfig(ctypes.Structure):
    _fields_ = [("nbLevels", ctypes.c_int32), ("levels", ctypes.c_int32 * MAX_NB_LEVELS), ("projection", ctypes.c_double * 3)]

    def as_tuple(self) -> tuple[tuple[int, ...], tuple[float, float, float]]:
        return tuple(self.levels[: self.nbLevels]), tuple(self.projection)


_DECLARED: set[int] = set()


def _lib(library: Any = None) -> ctypes.CDLL:
    """The reference library with the window functions' signatures declared."""
    lib = open_reference_library(library)
    if id(lib) not in _DECLARED:
        i32, i64, vp, dp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)
        lib.spp_window_level_supported.restype = i32
        lib.spp_window_level_supported.argtypes = [i32]
        lib.spp_window_project.restype = i32
        lib.spp_window_project.argtypes = [vp, i64, i64, i64, i64, dp, vp, vp]
        for fn in (lib.spp_window_reference_forward_f32, lib.spp_window_reference_forward_f16):
            fn.restype = i32
            fn.argtypes = [vp, i64, i64, i64, i64, vp, i64, ctypes.POINTER(i32), i32, dp, vp, i64]
        lib.spp_window_config_parse.restype = i32
        lib.spp_window_config_parse.argtypes = [ctypes.POINTER(CField), i32, ctypes.POINTER(CWindowConfig),
                                                ctypes.c_char_p, i32]
        lib.spp_window_config_serialize.restype = i64
        lib.spp_window_config_serialize.argtypes = [ctypes.POINTER(CWindowConfig), ctypes.c_char_p, i64]
        lib.spp_window_config_deserialize.restype = i32
        lib.spp_window_config_deserialize.argtypes = [ctypes.c_char_p, i64, ctypes.POINTER(CWindowConfig),
                                                      ctypes.c_char_p, i32]
        _DECLARED.add(id(lib))
    return lib


def _projection(projection: Sequence[float]):
    p = [float(v) for v in projection]
    if len(p) != 3:
        raise ValueError(f"projection must be (stride, offset0, offset), got {projection!r}")
    return (ctypes.c_double * 3)(*p)


def _windows(windows: Any):
    import numpy as np

    w = np.ascontiguousarray(np.asarray(windows, dtype=np.float64))
    if w.ndim != 2 or w.shape[1] != 5:
        raise ValueError(f"windows must be [R, 5], got shape {w.shape}")
    return w


def window_level_supported(n: int, library: Any = None) -> bool:
    return bool(_lib(library).spp_window_level_supported(int(n)))


def reference_project(windows: Any, S: int, H: int, W: int, projection: Sequence[float], library: Any = None):
    """windowSpp.h ``projectWindow`` on [R, 5] windows: (cells [R, 5] int64, valid [R] bool)."""
    import numpy as np

    w = _windows(windows)
    cells = np.zeros((w.shape[0], 5), dtype=np.int64)
    valid = np.zeros(w.shape[0], dtype=np.int32)
    rc = _lib(library).spp_window_project(w.ctypes.data, w.shape[0], S, H, W, _projection(projection),
                                          cells.ctypes.data, valid.ctypes.data)
    if rc != STATUS_OK:
        raise ValueError(f"spp_window_project failed with status {rc}")
    return cells, valid.astype(bool)


def reference_window_pyramid(x: Any, windows: Any, levels: Sequence[int], projection: Sequence[float],
                             library: Any = None) -> Any:
    """[R, C * sum(n^2)] of maps x [S, C, H, W] (float32/float16, output the same dtype) and windows
    [R, 5] by the C++ reference; rows of windows the eager op refuses are NaN."""
    import numpy as np

    lib = _lib(library)
    x = np.ascontiguousarray(x)
    if x.ndim != 4 or x.dtype not in (np.float32, np.float16):
        raise TypeError(f"maps must be a 4-D float32/float16 array, got {x.dtype} {x.shape}")
    w = _windows(windows)
    lv = [int(n) for n in levels]
    S, C, H, W = (int(d) for d in x.shape)
    R = w.shape[0]
    out = np.empty((R, C * sum(n * n for n in lv)), dtype=np.float32)
    fn = lib.spp_window_reference_forward_f32 if x.dtype == np.float32 else lib.spp_window_reference_forward_f16
    c_levels = (ctypes.c_int32 * max(1, len(lv)))(*lv)
    status = fn(x.ctypes.data, S, C, H, W, w.ctypes.data, R, c_levels, len(lv), _projection(projection),
                out.ctypes.data, out.size)
    if status != STATUS_OK:
        raise ValueError(f"window SPP reference failed: {lib.spp_status_string(status).decode()} "
                         f"(levels {lv}, projection {list(projection)})")
    return out.astype(x.dtype)


def parse_window_fields(fields: Sequence[tuple[str, int, bytes, int]], library: Any = None):
    """The window plugin's createPlugin parser on (name, type, data, length) fields:
    ``(levels, projection)``; ``ValueError`` with the parser's message."""
    lib = _lib(library)
    keep = []
    arr = (CField * max(1, len(fields)))()
    for i, (name, ftype, data, length) in enumerate(fields):
        buf = ctypes.create_string_buffer(bytes(data), max(1, len(data)))
        keep.append(buf)
        arr[i] = CField(name.encode() if isinstance(name, str) else name, ctypes.cast(buf, ctypes.c_void_p), ftype,
                        length)
    cfg = CWindowConfig()
    err = ctypes.create_string_buffer(512)
    if lib.spp_window_config_parse(arr, len(fields), ctypes.byref(cfg), err, 512) != STATUS_OK:
        raise ValueError(err.value.decode())
    return cfg.as_tuple()


def serialize_window_config(levels: Sequence[int], projection: Sequence[float], library: Any = None) -> bytes:
    lib = _lib(library)
    cfg = CWindowConfig()
    cfg.nbLevels = len(levels)
    for i, n in enumerate(list(levels)[:MAX_NB_LEVELS]):
        cfg.levels[i] = int(n)
    cfg.projection[:] = [float(v) for v in projection]
    return serialize_with(lib.spp_window_config_serialize, cfg, "window SPP")


def deserialize_window_config(blob: bytes, library: Any = None):
    lib = _lib(library)
    cfg = CWindowConfig()
    err = ctypes.create_string_buffer(512)
    if lib.spp_window_config_deserialize(blob, len(blob), ctypes.byref(cfg), err, 512) != STATUS_OK:
        raise ValueError(err.value.decode())
    return cfg.as_tuple()


# ---- the CUDA kernel under the SIMT emulator ---------------------------------------------------------------


def build_window_emulator(build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None) -> Path:
    """``build_dir/libspp_window_kernel_emu.so``: windowSpatialPyramidPoolKernel.cu compiled as host
    C++ with the SIMT emulator (``spp_deploy.simt.build_emulated_library``)."""
    from .simt import build_emulated_library

    return build_emulated_library(WINDOW_EMULATOR_DRIVER, Path(build_dir) / WINDOW_EMULATOR_NAME, source_root)


class EmulatedWindowRun(NamedTuple):
    status: int
    output: Any  # numpy array (the buffer as the kernel left it)
    launch: Any  # spp_deploy.simt.LaunchInfo
    fault: str


_EMU: dict[str, ctypes.CDLL] = {}


def _emulator(path: str | os.PathLike) -> ctypes.CDLL:
    from .simt import LaunchInfo

    key = str(Path(path).resolve())
    if key not in _EMU:
        lib = ctypes.CDLL(key)
        i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
        lib.spp_window_emu_abi_version.restype = i32
        lib.spp_window_emu_forward.restype = i32
        lib.spp_window_emu_forward.argtypes = [
            vp, i32, vp, i32, i64, i64, i64, i64, i64, ctypes.POINTER(i32), i32, ctypes.POINTER(ctypes.c_double), vp,
            i32, ctypes.c_uint64, ctypes.c_uint32, ctypes.POINTER(LaunchInfo), ctypes.c_char_p, i32]
        if lib.spp_window_emu_abi_version() != 1:
            raise UserError(f"{key}: unsupported window kernel emulator ABI version")
        _EMU[key] = lib
    return _EMU[key]


def emulated_window_pyramid(library: str | os.PathLike, x: Any, windows: Any, levels: Sequence[int],
                            projection: Sequence[float], out: Any = None, schedule: str = "forward", seed: int = 0,
                            clamp_grid_x: int = 0) -> EmulatedWindowRun:
    """The emulated window kernel on maps x [S, C, H, W] and windows [R, 5] (each float32 or
    float16, as the plugin takes them). ``out`` (optional): the output buffer, x's dtype, written in
    place (a view into a guarded buffer detects stray writes)."""
    import numpy as np

    from .simt import SCHEDULES, LaunchInfo

    lib = _emulator(library)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(windows)
    for name, a, nd in (("maps", x, 4), ("windows", w, 2)):
        if a.ndim != nd or a.dtype not in (np.float32, np.float16):
            raise TypeError(f"{name} must be a {nd}-D float32/float16 array, got {a.dtype} {a.shape}")
    S, C, H, W = (int(d) for d in x.shape)
    R = int(w.shape[0])
    lv = [int(n) for n in levels]
    if out is None:
        out = np.empty((R, C * sum(n * n for n in lv)), dtype=x.dtype)
    if out.dtype != x.dtype or not out.flags.c_contiguous:
        raise TypeError("out must be C-contiguous with the maps' dtype")
    launch = LaunchInfo()
    err = ctypes.create_string_buffer(1024)
    status = lib.spp_window_emu_forward(
        x.ctypes.data, int(x.dtype == np.float16), w.ctypes.data, int(w.dtype == np.float16), S, C, H, W, R,
        (ctypes.c_int32 * max(1, len(lv)))(*lv), len(lv), _projection(projection), out.ctypes.data,
        SCHEDULES.index(schedule), seed, clamp_grid_x, ctypes.byref(launch), err, len(err))
    return EmulatedWindowRun(int(status), out, launch, err.value.decode())
