"""The window-SPP plugin's CPU reference in ``libspp_reference.so`` from Python: the window
projection twin, the per-window pyramid, and the plugin's config parser and blob format.

Sources: ``plugins/windowSpatialPyramidPoolPlugin``. The C++ projection (``windowSpp.h``) is the
twin of ``spp_deploy.ops.projection.project_span``; tests compare the two on many boxes. Imports
nothing heavy at module import (numpy inside functions).
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

from ..contract import MAX_NB_LEVELS
from .cabi import STATUS_OK, declare_config_functions, deserialize_with, int32_array, parse_with, serialize_with, \
    set_levels
from .reference import open_reference_library


class CWindowConfig(ctypes.Structure):
    _fields_ = [("nbLevels", ctypes.c_int32), ("levels", ctypes.c_int32 * MAX_NB_LEVELS),
                ("projection", ctypes.c_double * 3)]

    def as_tuple(self) -> tuple[tuple[int, ...], tuple[float, float, float]]:
        return tuple(self.levels[: self.nbLevels]), tuple(self.projection)


_DECLARED: set[int] = set()


def _lib(library: Any = None) -> ctypes.CDLL:
    """The reference library with the window functions' signatures declared too."""
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
        declare_config_functions(lib, "spp_window", CWindowConfig)
        _DECLARED.add(id(lib))
    return lib


def projection_array(projection: Sequence[float]) -> ctypes.Array:
    """``(stride, offset0, offset)`` as the C ABI's ``double[3]``."""
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
    rc = _lib(library).spp_window_project(w.ctypes.data, w.shape[0], S, H, W, projection_array(projection),
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
    status = fn(x.ctypes.data, S, C, H, W, w.ctypes.data, R, int32_array(lv), len(lv), projection_array(projection),
                out.ctypes.data, out.size)
    if status != STATUS_OK:
        raise ValueError(f"window SPP reference failed: {lib.spp_status_string(status).decode()} "
                         f"(levels {lv}, projection {list(projection)})")
    return out.astype(x.dtype)


def parse_window_fields(fields: Sequence[tuple[str, int, bytes, int]], library: Any = None):
    """The window plugin's createPlugin parser on (name, type, data, length) fields:
    ``(levels, projection)``; ``ValueError`` with the parser's message."""
    return parse_with(_lib(library).spp_window_config_parse, fields, CWindowConfig())


def serialize_window_config(levels: Sequence[int], projection: Sequence[float], library: Any = None) -> bytes:
    """The window plugin's engine blob for this configuration."""
    cfg = CWindowConfig()
    set_levels(cfg, levels)
    cfg.projection[:] = [float(v) for v in projection]
    return serialize_with(_lib(library).spp_window_config_serialize, cfg, "window SPP")


def deserialize_window_config(blob: bytes, library: Any = None):
    """``(levels, projection)`` of an engine blob; ``ValueError`` with the C side's message."""
    return deserialize_with(_lib(library).spp_window_config_deserialize, blob, CWindowConfig())
