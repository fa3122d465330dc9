"""The SIMT emulator's own check (``plugins/simt/simtSelfTest.cu``): a kernel using every
modelled primitive, run emulated, against what CUDA's documentation says it computes.

``benchmarks/gpu_check.py`` runs the same kernel on a GPU against ``selftest_expected``, which
checks the emulator's model against the hardware. Imports nothing heavy at module import.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from .emulator import SCHEDULES, build_emulated_library

SELFTEST_LIBRARY_NAME = "libsimt_selftest_emu.so"
SELFTEST_BLOCK = (16, 4)  # simtSelfTest.h kBLOCK_X, kBLOCK_Y
SELFTEST_BLOCKS = 3
SELFTEST_THREADS = SELFTEST_BLOCK[0] * SELFTEST_BLOCK[1] * SELFTEST_BLOCKS
SELFTEST_FIELDS = 16


def build_selftest_emulator(build_dir: str | os.PathLike) -> Path:
    """``build_dir/libsimt_selftest_emu.so``: the self-test kernel under the emulator."""
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
