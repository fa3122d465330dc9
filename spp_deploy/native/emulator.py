"""The CUDA kernels run on the CPU by the host SIMT emulator (``plugins/simt``).

No GPU is needed: the kernel's ``.cu`` source is compiled as host C++ with ``-DSIMT_EMULATION``
(CUDA's host headers for ``__half``), every block's threads run as fibers with real barrier and
warp-shuffle semantics, and the launch goes through the same launcher the TensorRT plugin calls.
It checks the kernel's logic (thread mapping, shuffles, shared-memory indexing, fp16 conversion),
not its speed or memory races. Imports nothing heavy at module import (numpy inside functions).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from .errors import UserError
from .plugins import _MODES, _ORDERS, _RULES, first_error_line, plugin_source_dir

KERNEL_EMULATOR_NAME = "libspp_kernel_emu.so"
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
    cmd = [cxx, *_CXX_FLAGS, "-isystem", str(inc), "-I", str(drv.parent), str(drv), str(src / "simt" / "simtEmu.cpp"),
           "-o", str(out)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise UserError(f"building the kernel emulator failed: {first_error_line(proc.stdout)}")
    return out


def build_kernel_emulator(
    build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None, cxx: str | None = None
) -> Path:
    """The whole-image SPP kernel under the emulator: ``build_dir/libspp_kernel_emu.so``."""
    return build_emulated_library("spatialPyramidPoolPlugin/sppKernelEmulated.cpp",
                                  Path(build_dir) / KERNEL_EMULATOR_NAME, source_root, cxx)


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
    status: int
    output: Any  # numpy array (the buffer as the kernel left it)
    launch: LaunchInfo
    fault: str


_CACHE: dict[str, ctypes.CDLL] = {}


def open_kernel_emulator(path: str | os.PathLike) -> ctypes.CDLL:
    key = str(Path(path).resolve())
    if key not in _CACHE:
        lib = ctypes.CDLL(key)
        i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
        lib.spp_emu_abi_version.restype = i32
        lib.spp_emu_forward.restype = i32
        lib.spp_emu_forward.argtypes = [vp, i32, i64, i64, i64, i64, ctypes.POINTER(i32), i32, i32, i32, i32, vp,
                                        i32, ctypes.c_uint64, ctypes.c_uint32, ctypes.POINTER(LaunchInfo),
                                        ctypes.c_char_p, i32]
        if lib.spp_emu_abi_version() != 1:
            raise UserError(f"{key}: unsupported kernel emulator ABI version")
        _CACHE[key] = lib
    return _CACHE[key]


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
    """Run the emulated CUDA kernel on an NCHW float32/float16 array.

    ``out`` (optional) is the output buffer, same dtype, at least ``B * C * sum(n^2)`` elements,
    written in place (pass a view into a larger, guarded buffer to detect stray writes).
    Returns the launcher status (``plugins.STATUS_*``, or ``STATUS_EMULATOR_FAULT``), the output,
    the launch record and the fault message.
    """
    import numpy as np

    lib = open_kernel_emulator(library)
    x = np.ascontiguousarray(x)
    if x.ndim != 4 or x.dtype not in (np.float32, np.float16):
        raise TypeError(f"emulated_pyramid needs a 4-D float32/float16 array, got {x.dtype} {x.shape}")
    B, C, H, W = (int(d) for d in x.shape)
    lv = [int(n) for n in levels]
    if out is None:
        out = np.empty((B, C * sum(n * n for n in lv)), dtype=x.dtype)
    if out.dtype != x.dtype or not out.flags.c_contiguous:
        raise TypeError("out must be C-contiguous with the input's dtype")
    c_levels = (ctypes.c_int32 * max(1, len(lv)))(*lv)
    launch = LaunchInfo()
    err = ctypes.create_string_buffer(1024)
    status = lib.spp_emu_forward(
        x.ctypes.data, 1 if x.dtype == np.float16 else 0, B, C, H, W, c_levels, len(lv), _MODES[mode], _RULES[rule],
        _ORDERS[order], out.ctypes.data, SCHEDULES.index(schedule), seed, clamp_grid_x, ctypes.byref(launch), err,
        len(err),
    )
    return EmulatedRun(int(status), out, launch, err.value.decode())


# ---- the emulator's self-test kernel (plugins/simt/simtSelfTest.cu) --------------------------------

SELFTEST_LIBRARY_NAME = "libsimt_selftest_emu.so"
SELFTEST_BLOCK = (16, 4)  # simtSelfTest.h kBLOCK_X, kBLOCK_Y
SELFTEST_BLOCKS = 3
SELFTEST_THREADS = SELFTEST_BLOCK[0] * SELFTEST_BLOCK[1] * SELFTEST_BLOCKS
SELFTEST_FIELDS = 16


def build_selftest_emulator(build_dir: str | os.PathLike) -> Path:
    return build_emulated_library("simt/simtSelfTestEmulated.cpp", Path(build_dir) / SELFTEST_LIBRARY_NAME)


def run_selftest_emulated(library: str | os.PathLike, inp: Any, schedule: str = "forward", seed: int = 0):
    """(output [threads, fields] int32, status, fault) of the self-test kernel under the emulator."""
    import numpy as np

    lib = ctypes.CDLL(str(Path(library).resolve()))
    fn = lib.simt_selftest_run
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_int32]
    inp = np.ascontiguousarray(inp, dtype=np.int32)
    out = np.full((SELFTEST_THREADS, SELFTEST_FIELDS), -7, dtype=np.int32)
    err = ctypes.create_string_buffer(512)
    status = fn(inp.ctypes.data, out.ctypes.data, SCHEDULES.index(schedule), seed, err, len(err))
    return out, int(status), err.value.decode()


def selftest_expected(inp: Any):
    """What CUDA's documented semantics give for simtSelfTest.cu on ``inp`` (one int32 per thread).

    Shuffles (CUDA C++ Programming Guide, warp shuffle functions): lanes form segments of ``width``;
    ``__shfl_sync`` reads lane ``srcLane % width`` of the caller's segment; ``_up`` / ``_down`` by
    ``delta`` return the caller's own value when the source falls outside its segment; ``_xor``
    reads ``lane ^ laneMask``. Threads are numbered x-fastest, warps are 32 consecutive threads.
    """
    import numpy as np

    inp = np.asarray(inp, dtype=np.int64)
    n = SELFTEST_BLOCK[0] * SELFTEST_BLOCK[1]
    out = np.zeros((SELFTEST_THREADS, SELFTEST_FIELDS), dtype=np.int64)
    for blk in range(SELFTEST_BLOCKS):
        v = inp[blk * n:(blk + 1) * n]
        for tid in range(n):
            lane = tid % 32
            w = v[tid - lane:tid - lane + 32]
            o = out[blk * n + tid]
            o[0] = w[(lane * 7 + 3) % 32]
            o[1] = w[(lane & ~7) + ((lane + 5) & 7)]
            o[2] = w[lane - 3] if lane % 16 >= 3 else w[lane]
            o[3] = w[lane + 5] if lane % 16 + 5 < 16 else w[lane]
            o[4] = w[lane ^ 9]
            o[5] = w[lane ^ 4]
            ballot = sum(1 << k for k in range(32) if w[k] % 3 == 0)
            o[6] = ballot - (1 << 32) if ballot >= 1 << 31 else ballot
            o[7] = int(bool((w % 97 == 0).any()))
            o[8] = int(bool((w > 0).all()))
            o[9] = w[lane ^ 1] if lane < 16 else -1
            o[10] = v[(tid + 1) % n]
            o[11] = 2 * v[n - 1 - tid]
            o[12] = v.sum()
            o[13] = SELFTEST_BLOCKS * 100 + SELFTEST_BLOCK[0] * 10 + SELFTEST_BLOCK[1]
            o[14] = blk
            o[15] = lane
    return out.astype(np.int32)
