"""The whole-image SPP plugin's CPU reference (``libspp_reference.so``, C ABI) from Python: the
pyramid, one axis' bins from ``sppBins.h``, and the plugin's config parser and blob format.

The tests' oracle for the C++ side: the same bin math the CUDA kernel uses, on the CPU. Imports
nothing heavy at module import (numpy inside functions); the library opens on first use.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Sequence

from ..contract import MAX_NB_LEVELS, MODE_CODES, ORDER_CODES, RULE_CODES
from ..util.errors import UserError
from .cabi import STATUS_OK, declare_config_functions, deserialize_with, int32_array, open_declared, parse_with, \
    serialize_with, set_levels
from .library import REFERENCE_LIB_ENV, REFERENCE_LIBRARY_NAME, find_reference_library


def code_of(table: dict[str, int], value: str, what: str) -> int:
    """The C ABI's code of a mode / bin rule / order name; ``ValueError`` naming the known ones."""
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r} (known: {', '.join(table)})") from None


class CConfig(ctypes.Structure):
    _fields_ = [
        ("nbLevels", ctypes.c_int32),
        ("levels", ctypes.c_int32 * MAX_NB_LEVELS),
        ("mode", ctypes.c_int32),
        ("rule", ctypes.c_int32),
        ("order", ctypes.c_int32),
    ]

    def as_tuple(self) -> tuple[tuple[int, ...], str, str, str]:
        inv = lambda d, v: next(k for k, x in d.items() if x == v)  # noqa: E731
        return (
            tuple(self.levels[: self.nbLevels]),
            inv(MODE_CODES, self.mode),
            inv(RULE_CODES, self.rule),
            inv(ORDER_CODES, self.order),
        )


def _declare(lib: ctypes.CDLL) -> None:
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    p_i32, p_i64 = ctypes.POINTER(i32), ctypes.POINTER(i64)
    lib.spp_status_string.restype = ctypes.c_char_p
    lib.spp_status_string.argtypes = [i32]
    lib.spp_feature_count.restype = i64
    lib.spp_feature_count.argtypes = [i64, p_i32, i32]
    lib.spp_axis_bins.restype = i32
    lib.spp_axis_bins.argtypes = [i32, i64, i32, i64, p_i64, p_i64, p_i64]
    lib.spp_size_error.restype = i32
    lib.spp_size_error.argtypes = [i32, i64, i64, p_i32, i32]
    for fn in (lib.spp_reference_forward_f32, lib.spp_reference_forward_f16):
        fn.restype = i32
        fn.argtypes = [vp, i64, i64, i64, i64, p_i32, i32, i32, i32, i32, vp, i64]
    declare_config_functions(lib, "spp", CConfig)


def open_reference_library(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """The reference library with its C signatures declared (opened once per path); default:
    ``library.find_reference_library()``."""
    p = Path(path) if path is not None else find_reference_library()
    if p is None:
        raise UserError(f"{REFERENCE_LIBRARY_NAME} not found (set {REFERENCE_LIB_ENV} or run "
                        "spp_deploy.native.cmake.build_reference())")
    return open_declared(p, _declare, "spp_abi_version", "reference")


def reference_pyramid(
    x: Any,
    levels: Sequence[int],
    mode: str,
    rule: str,
    order: str,
    library: str | os.PathLike | None = None,
) -> Any:
    """The SPP vector [B, C*sum(n^2)] of an NCHW float32/float16 numpy array via the C++ reference.

    float16 input gives float16 output (fp32 accumulation, one final rounding, like the plugin).
    Raises ``ValueError`` on illegal sizes or configurations.
    """
    import numpy as np

    lib = open_reference_library(library)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"SPP expects a [B, C, H, W] array, got shape {x.shape}")
    if x.dtype == np.float32:
        fn = lib.spp_reference_forward_f32
    elif x.dtype == np.float16:
        fn = lib.spp_reference_forward_f16
    else:
        raise TypeError(f"reference_pyramid supports float32 and float16 input, got {x.dtype}")
    x = np.ascontiguousarray(x)
    lv = [int(n) for n in levels]
    if not 1 <= len(lv) <= MAX_NB_LEVELS:
        raise ValueError(f"pyramid levels must have 1..{MAX_NB_LEVELS} entries, got {lv}")
    if any(not 1 <= n <= 64 for n in lv):
        raise ValueError(f"pyramid levels must be in 1..64, got {lv}")
    m = code_of(MODE_CODES, mode, "SPP mode")
    r = code_of(RULE_CODES, rule, "bin rule")
    o = code_of(ORDER_CODES, order, "flatten order")
    B, C, H, W = (int(d) for d in x.shape)
    if H < 1 or W < 1:
        raise ValueError(f"SPP needs H, W >= 1, got {H}x{W}")
    c_levels = int32_array(lv)
    bad = lib.spp_size_error(r, H, W, c_levels, len(lv))
    if bad > 0:
        raise ValueError(
            f"bin rule {rule!r} is not defined (or not fixed-length) at input {H}x{W} for pyramid level {lv[bad - 1]}"
        )
    out = np.empty((B, C * sum(n * n for n in lv)), dtype=np.float32)
    status = fn(x.ctypes.data, B, C, H, W, c_levels, len(lv), m, r, o, out.ctypes.data, out.size)
    if status != STATUS_OK:
        msg = lib.spp_status_string(status).decode()
        raise ValueError(f"SPP reference failed: {msg} (input {B}x{C}x{H}x{W}, levels {lv}, {rule})")
    return out.astype(np.float16) if x.dtype == np.float16 else out


def reference_axis_bins(rule: str, size: int, n: int, height: int | None = None, library: Any = None):
    """(start, end, span, valid) of one axis from the C++ header (for cross-checks with bins.py)."""
    import numpy as np

    lib = open_reference_library(library)
    start, end, span = (np.zeros(n, dtype=np.int64) for _ in range(3))
    p = ctypes.POINTER(ctypes.c_int64)
    rc = lib.spp_axis_bins(
        code_of(RULE_CODES, rule, "bin rule"), int(size), int(n), int(size if height is None else height),
        start.ctypes.data_as(p), end.ctypes.data_as(p), span.ctypes.data_as(p),
    )
    if rc < 0:
        raise ValueError(f"bad arguments to spp_axis_bins: {rule}, {size}, {n}")
    return start, end, span, bool(rc)


def parse_config_fields(fields: Sequence[tuple[str, int, bytes, int]], library: Any = None):
    """Run the plugin's field parser on (name, type, data bytes, length) tuples.

    Returns ``(levels, mode, rule, order)``; raises ``ValueError`` with the parser's message.
    """
    return parse_with(open_reference_library(library).spp_config_parse, fields, CConfig())


def serialize_config(levels: Sequence[int], mode: str, rule: str, order: str, library: Any = None) -> bytes:
    """The plugin's engine blob for this configuration (``ValueError`` if the C side refuses it)."""
    cfg = CConfig()
    set_levels(cfg, levels)
    cfg.mode = code_of(MODE_CODES, mode, "mode")
    cfg.rule = code_of(RULE_CODES, rule, "bin rule")
    cfg.order = code_of(ORDER_CODES, order, "order")
    return serialize_with(open_reference_library(library).spp_config_serialize, cfg, "SPP")


def deserialize_config(blob: bytes, library: Any = None):
    """``(levels, mode, rule, order)`` of an engine blob; ``ValueError`` with the C side's message."""
    return deserialize_with(open_reference_library(library).spp_config_deserialize, blob, CConfig())
