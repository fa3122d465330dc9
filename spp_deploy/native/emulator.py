"""The CUDA kernels run on the CPU by the host SIMT emulator (``plugins/simt``).

No GPU is needed: a kernel's ``.cu`` source is compiled as host C++ with ``-DSIMT_EMULATION``
(CUDA's host headers for ``__half``), every block's threads run as fibers with real barrier and
warp-shuffle semantics, and the launch goes through the same launcher the TensorRT plugin calls.
It checks the kernel's logic (thread mapping, shuffles, shared-memory indexing, fp16 conversion),
not its speed or memory races. Both plugins' kernels: ``emulated_pyramid`` (whole-image SPP) and
``emulated_window_pyramid`` (window SPP). Imports nothing heavy at module import (numpy inside
functions).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..contract import MODE_CODES, ORDER_CODES, RULE_CODES
from ..util.errors import UserError
from .cabi import int32_array, open_declared
from .cmake import run_tool
from .library import plugin_source_dir
from .window_reference import projection_array

KERNEL_EMULATOR_NAME = "libspp_kernel_emu.so"
WINDOW_EMULATOR_NAME = "libspp_window_kernel_emu.so"
STATUS_EMULATOR_FAULT = 100
SCHEDULES = ("forward", "reverse", "shuffled")

# Host compiler flags: exact IEEE float32 (no FMA contraction, no fast-math), like the device build.
_CXX_FLAGS = ["-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-ffp-contract=off",
              "-fno-fast-math", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-DSIMT_EMULATION=1"]


def cuda_include_dir() -> Path | None:
    """A CUDA toolkit include directory with ``cuda_fp16.h`` ($CUDA_HOME, $CUDA_PATH, nvcc's, /usr/local/cuda)."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parent.parent))
    roots.append("/usr/local/cuda")
    for r in roots:
        if r and (Path(r) / "include" / "cuda_fp16.h").is_file():
            return Path(r) / "include"
    return None


def _cxx() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def unavailable_reason() -> str | None:
    """Why the emulator cannot be built on this machine (no C++ compiler, no CUDA headers), or None."""
    if _cxx() is None:
        return "no C++ compiler (g++/c++ or $CXX) found"
    if cuda_include_dir() is None:
        return "CUDA headers (cuda_fp16.h) not found: set CUDA_HOME to a CUDA toolkit"
    return None


def build_emulated_library(
    driver: str | os.PathLike, output: str | os.PathLike, source_root: str | os.PathLike | None = None,
    cxx: str | None = None,
) -> Path:
    """Compile one kernel driver (``plugins/<plugin>/<driver>.cpp``, which ``#include``s its ``.cu``)
    with the emulator into the shared library ``output`` (one compiler call). ``driver`` is relative
    to ``source_root``, a ``plugins/`` tree (default: this checkout's; tests pass a copy holding a
    deliberately broken kernel)."""
    cxx = cxx or _cxx()
    inc = cuda_include_dir()
    reason = unavailable_reason() if cxx is None or inc is None else None
    if reason:
        raise UserError(f"cannot build the kernel emulator: {reason}")
    src = Path(source_root) if source_root is not None else plugin_source_dir()
    drv = src / driver
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_tool([cxx, *_CXX_FLAGS, "-isystem", str(inc), "-I", str(drv.parent), str(drv),
              str(src / "simt" / "simtEmu.cpp"), "-o", str(out)], "building the kernel emulator")
    return out


def build_kernel_emulator(
    build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None, cxx: str | None = None
) -> Path:
    """The whole-image SPP kernel under the emulator: ``build_dir/libspp_kernel_emu.so``."""
    return build_emulated_library("spatialPyramidPoolPlugin/sppKernelEmulated.cpp",
                                  Path(build_dir) / KERNEL_EMULATOR_NAME, source_root, cxx)


def build_window_emulator(build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None) -> Path:
    """The window-SPP kernel (windowSpatialPyramidPoolKernel.cu) under the emulator:
    ``build_dir/libspp_window_kernel_emu.so``."""
    return build_emulated_library("windowSpatialPyramidPoolPlugin/windowKernelEmulated.cpp",
                                  Path(build_dir) / WINDOW_EMULATOR_NAME, source_root)


class LaunchInfo(ctypes.Structure):
    """The emulated launch: grid/block/shared bytes as the launcher asked, blocks run along x."""

    _fields_ = [
        ("launches", ctypes.c_int64),
        ("grid", ctypes.c_uint32 * 3),
        ("block", ctypes.c_uint32 * 3),
        ("shared_bytes", ctypes.c_int64),
        ("grid_x_run", ctypes.c_uint32),
        ("cuda_error", ctypes.c_int32),
    ]


class EmulatedRun(NamedTuple):
    status: int  # the launcher's (contract.Status), or STATUS_EMULATOR_FAULT
    output: Any  # numpy array (the buffer as the kernel left it)
    launch: LaunchInfo
    fault: str


# What every driver's forward takes after its own arguments: output, schedule, seed, grid clamp,
# the launch record and the fault message buffer (plugins/simt/simtDriver.h).
_RUN_ARGTYPES = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, ctypes.c_uint32, ctypes.POINTER(LaunchInfo),
                 ctypes.c_char_p, ctypes.c_int32]


def _declare_forward(fn: Any, own: list) -> None:
    fn.restype, fn.argtypes = ctypes.c_int32, [*own, *_RUN_ARGTYPES]


def open_kernel_emulator(path: str | os.PathLike) -> ctypes.CDLL:
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    own = [vp, i32, i64, i64, i64, i64, ctypes.POINTER(i32), i32, i32, i32, i32]
    return open_declared(path, lambda lib: _declare_forward(lib.spp_emu_forward, own), "spp_emu_abi_version",
                         "kernel emulator")


def open_window_emulator(path: str | os.PathLike) -> ctypes.CDLL:
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    own = [vp, i32, vp, i32, i64, i64, i64, i64, i64, ctypes.POINTER(i32), i32, ctypes.POINTER(ctypes.c_double)]
    return open_declared(path, lambda lib: _declare_forward(lib.spp_window_emu_forward, own),
                         "spp_window_emu_abi_version", "window kernel emulator")


def _run(forward: Any, own_args: tuple, out: Any, schedule: str, seed: int, clamp_grid_x: int) -> EmulatedRun:
    launch = LaunchInfo()
    err = ctypes.create_string_buffer(1024)
    status = forward(*own_args, out.ctypes.data, SCHEDULES.index(schedule), seed, clamp_grid_x, ctypes.byref(launch),
                     err, len(err))
    return EmulatedRun(int(status), out, launch, err.value.decode())


def _output(out: Any, rows: int, channels: int, levels: Sequence[int], dtype: Any) -> Any:
    """``out``, or a fresh [rows, channels * sum(n^2)] buffer; it must be C-contiguous of ``dtype``."""
    import numpy as np

    if out is None:
        out = np.empty((rows, channels * sum(n * n for n in levels)), dtype=dtype)
    if out.dtype != dtype or not out.flags.c_contiguous:
        raise TypeError("out must be C-contiguous with the input's dtype")
    return out


def emulated_pyramid(
    library: str | os.PathLike,
    x: Any,
    levels: Sequence[int],
    mode: str,
    rule: str,
    order: str,
    out: Any = None,
    schedule: str = "forward",
    seed: int = 0,
    clamp_grid_x: int = 0,
) -> EmulatedRun:
    """Run the emulated whole-image kernel on an NCHW float32/float16 array.

    ``out`` (optional) is the output buffer, same dtype, at least ``B * C * sum(n^2)`` elements,
    written in place (pass a view into a larger, guarded buffer to detect stray writes).
    """
    import numpy as np

    lib = open_kernel_emulator(library)
    x = np.ascontiguousarray(x)
    if x.ndim != 4 or x.dtype not in (np.float32, np.float16):
        raise TypeError(f"emulated_pyramid needs a 4-D float32/float16 array, got {x.dtype} {x.shape}")
    B, C, H, W = (int(d) for d in x.shape)
    lv = [int(n) for n in levels]
    out = _output(out, B, C, lv, x.dtype)
    own = (x.ctypes.data, int(x.dtype == np.float16), B, C, H, W, int32_array(lv), len(lv), MODE_CODES[mode],
           RULE_CODES[rule], ORDER_CODES[order])
    return _run(lib.spp_emu_forward, own, out, schedule, seed, clamp_grid_x)


def emulated_window_pyramid(library: str | os.PathLike, x: Any, windows: Any, levels: Sequence[int],
                            projection: Sequence[float], out: Any = None, schedule: str = "forward", seed: int = 0,
                            clamp_grid_x: int = 0) -> EmulatedRun:
    """The emulated window kernel on maps x [S, C, H, W] and windows [R, 5] (each float32 or
    float16, as the plugin takes them). ``out`` (optional): the output buffer, x's dtype, written in
    place (a view into a guarded buffer detects stray writes)."""
    import numpy as np

    lib = open_window_emulator(library)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(windows)
    for name, a, nd in (("maps", x, 4), ("windows", w, 2)):
        if a.ndim != nd or a.dtype not in (np.float32, np.float16):
            raise TypeError(f"{name} must be a {nd}-D float32/float16 array, got {a.dtype} {a.shape}")
    S, C, H, W = (int(d) for d in x.shape)
    R = int(w.shape[0])
    lv = [int(n) for n in levels]
    out = _output(out, R, C, lv, x.dtype)
    own = (x.ctypes.data, int(x.dtype == np.float16), w.ctypes.data, int(w.dtype == np.float16), S, C, H, W, R,
           int32_array(lv), len(lv), projection_array(projection))
    return _run(lib.spp_window_emu_forward, own, out, schedule, seed, clamp_grid_x)
