"""Memory-traffic counters of the SIMT emulator (``plugins/simt``): what a profiler would count.

No GPU has been lent to measure the kernels, so the emulator, which already runs the real ``.cu``
with one fiber per thread, counts per run (every launch of one launcher call, pre-passes included)
the global load/store requests (one per warp instruction), the distinct 32-byte sectors each
touches, the unique sectors of the run, and the float64 operations of ``simt::f64`` values (one
per PTX instruction: FP64 is 1/2 to 1/64 rate on GPUs). From them: load/store efficiency (bytes
requested / bytes in the sectors fetched) and sectors moved over the ideal (every sector the run
touches moved once). Counting is off unless asked for.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

from .cabi import open_declared
from .emulator import EmulatedRun, _declare_forward, _run, build_emulated_library

PROBE_NAME = "libsimt_traffic_probe.so"
SECTOR_BYTES = 32
PROBE_KINDS = {"gather": 0, "gather_fp16": 1, "broadcast": 2}
FP64_PROBE_NAME = "libsimt_fp64_probe.so"


class TrafficCounters(ctypes.Structure):
    """``simt::TrafficCounters`` (plugins/simt/simtEmu.h): one run's global-memory traffic and FP64 operations."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "load_requests", "load_sectors", "load_bytes", "store_requests", "store_sectors", "store_bytes",
        "unique_sectors_read", "unique_sectors_written", "fp64_ops")]


class Traffic(NamedTuple):
    """One run's counters (every launch of one launcher call) and the ratios a profiler reports."""

    load_requests: int
    load_sectors: int
    load_bytes: int
    store_requests: int
    store_sectors: int
    store_bytes: int
    unique_sectors_read: int
    unique_sectors_written: int
    fp64_ops: int  # float64 operations (simt::f64), one per PTX instruction

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    @property
    def sectors_per_load(self) -> float:
        return self._ratio(self.load_sectors, self.load_requests)

    @property
    def sectors_per_store(self) -> float:
        return self._ratio(self.store_sectors, self.store_requests)

    @property
    def load_efficiency(self) -> float:
        """Bytes the lanes asked for / bytes in the sectors fetched (1.0: every fetched byte used)."""
        return self._ratio(self.load_bytes, self.load_sectors * SECTOR_BYTES)

    @property
    def store_efficiency(self) -> float:
        return self._ratio(self.store_bytes, self.store_sectors * SECTOR_BYTES)

    @property
    def sectors_read_over_ideal(self) -> float:
        """Sectors fetched by all load requests / unique sectors read (1.0: each read once, no cache needed)."""
        return self._ratio(self.load_sectors, self.unique_sectors_read)

    @property
    def sectors_written_over_ideal(self) -> float:
        return self._ratio(self.store_sectors, self.unique_sectors_written)

    def summary(self) -> str:
        """One line for test and benchmark output."""
        return (f"loads {self.load_requests} req x {self.sectors_per_load:.2f} sectors, eff {self.load_efficiency:.1%}, "
                f"read/ideal {self.sectors_read_over_ideal:.2f}; stores {self.store_requests} req x "
                f"{self.sectors_per_store:.2f} sectors, eff {self.store_efficiency:.1%}, "
                f"written/ideal {self.sectors_written_over_ideal:.2f}; fp64 ops {self.fp64_ops}")


def aligned_empty(shape: Any, dtype: Any, alignment: int = 256) -> Any:
    """An uninitialised C-contiguous array starting on an ``alignment``-byte boundary, as
    ``cudaMalloc`` returns (numpy's own alignment would put sector boundaries mid-warp)."""
    import numpy as np

    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dt.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + count * dt.itemsize].view(dt).reshape(shape)


def aligned_copy(a: Any, alignment: int = 256) -> Any:
    """``a`` copied into an ``aligned_empty`` array."""
    out = aligned_empty(a.shape, a.dtype, alignment)
    out[...] = a
    return out


def _declare_traffic(lib: ctypes.CDLL) -> ctypes.CDLL:
    if not getattr(lib, "_traffic_declared", False):
        lib.simt_emu_count_traffic.restype, lib.simt_emu_count_traffic.argtypes = None, [ctypes.c_int32]
        lib.simt_emu_traffic.restype = None
        lib.simt_emu_traffic.argtypes = [ctypes.POINTER(TrafficCounters)]
        lib._traffic_declared = True
    return lib


def counted(lib: ctypes.CDLL, run: Callable[[], EmulatedRun]) -> tuple[EmulatedRun, Traffic]:
    """``run()`` (one emulated launch through ``lib``, an opened emulator) with the traffic counted:
    its result and the launch's counters. Counting is switched off again afterwards."""
    _declare_traffic(lib)
    lib.simt_emu_count_traffic(1)
    try:
        result = run()
    finally:
        lib.simt_emu_count_traffic(0)
    return result, last_traffic(lib)


def last_traffic(lib: ctypes.CDLL) -> Traffic:
    """The counters of ``lib``'s last run (all zero when it ran uncounted)."""
    c = TrafficCounters()
    _declare_traffic(lib).simt_emu_traffic(ctypes.byref(c))
    return Traffic(*(int(getattr(c, name)) for name, _ in TrafficCounters._fields_))


# ---- shared-memory bank conflicts ---------------------------------------------------------------
# Dynamic shared memory reached through SIMT_DYNAMIC_SHARED's accessor (plugins/simt/simtEmu.h,
# simt::Shared) is counted with the global traffic: per warp instruction, the bank passes
# (wavefronts) its lanes need over 32 banks of 4-byte words. A kernel whose lanes hit one bank with
# different words serialises; the counters say how much before any GPU runs it.

BANK_PROBE_NAME = "libsimt_bank_probe.so"
BANK_PROBE_KINDS = {"strided": 0, "broadcast": 1, "view": 2, "atomic": 3}
BANK_PROBE_DTYPES = ("float32", "float16", "int32", "float64")


class SharedCounters(ctypes.Structure):
    """``simt::SharedCounters`` (plugins/simt/simtEmu.h): one run's dynamic shared-memory traffic."""

    _fields_ = [(name, ctypes.c_uint64) for name in ("requests", "wavefronts", "bank_conflicts", "bytes")]


class BankConflicts(NamedTuple):
    """One run's shared-memory requests (every launch of one launcher call) and the extra bank passes they cost."""

    requests: int
    wavefronts: int
    bank_conflicts: int  # wavefronts beyond ceil(distinct words / 32), summed over requests
    bytes: int

    @property
    def conflicts_per_request(self) -> float:
        """Extra bank passes per shared-memory request (0.0: conflict-free; 31.0: every request 32-way)."""
        return Traffic._ratio(self.bank_conflicts, self.requests)

    def summary(self) -> str:
        """One line for test and benchmark output."""
        return (f"shared {self.requests} req, {self.wavefronts} wavefronts, "
                f"{self.conflicts_per_request:.2f} bank conflicts/req")


def last_bank_conflicts(lib: ctypes.CDLL) -> BankConflicts:
    """The shared-memory counters of ``lib``'s last run (all zero when it ran uncounted)."""
    if not getattr(lib, "_bank_declared", False):
        lib.simt_emu_shared_traffic.restype = None
        lib.simt_emu_shared_traffic.argtypes = [ctypes.POINTER(SharedCounters)]
        lib._bank_declared = True
    c = SharedCounters()
    lib.simt_emu_shared_traffic(ctypes.byref(c))
    return BankConflicts(*(int(getattr(c, name)) for name, _ in SharedCounters._fields_))


def build_bank_probe(build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None) -> Path:
    """The hand-written bank-conflict kernels (plugins/simt/simtBankProbe.cpp): ``build_dir/libsimt_bank_probe.so``."""
    return build_emulated_library("simt/simtBankProbe.cpp", Path(build_dir) / BANK_PROBE_NAME, source_root)


def probe_bank_conflicts(library: str | os.PathLike, kind: str, x: Any, stride: int,
                         threads: int = 64) -> tuple[EmulatedRun, BankConflicts]:
    """A probe kernel over ``x`` (one thread per element; float32, float16, int32 or float64):
    ``strided`` writes element t * stride of shared memory and reads it back, ``view`` the same
    through a view one element in, ``atomic`` adds to it atomically (``x`` back in each case),
    ``broadcast`` has every lane read the one element its block's thread 0 wrote (the block's first
    element). Its output and counted shared-memory traffic."""
    import numpy as np

    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    own = [vp, i32, i32, i64, i64, i32]
    lib = open_declared(library, lambda lib: _declare_forward(lib.simt_bank_probe_forward, own),
                        "simt_bank_probe_abi_version", "bank-conflict probe")
    x = aligned_copy(np.ascontiguousarray(x))
    out = aligned_empty(x.shape, x.dtype)
    own = (x.ctypes.data, BANK_PROBE_KINDS[kind], BANK_PROBE_DTYPES.index(x.dtype.name), x.size, stride, threads)
    run, _ = counted(lib, lambda: _run(lib.simt_bank_probe_forward, own, out, "forward", 0, 0))
    return run, last_bank_conflicts(lib)


# ---- roofline estimate --------------------------------------------------------------------------
# A memory-bound kernel cannot beat the time its DRAM traffic takes at peak bandwidth. The counted
# sectors give that traffic before any GPU runs; gpu_check later measures how close a GPU comes.

#: Peak DRAM bandwidth in GB/s (vendor data sheets), the one place these numbers live.
PEAK_DRAM_GBPS = {"H100 SXM": 3350.0, "A100 80GB": 2040.0, "L4": 300.0, "T4": 320.0}


def moved_bytes(t: Traffic) -> int:
    """Bytes in the sectors the launch's requests read and wrote: DRAM traffic with no cache reuse."""
    return (t.load_sectors + t.store_sectors) * SECTOR_BYTES


def unique_bytes(t: Traffic) -> int:
    """Bytes in the distinct sectors the launch read and wrote: DRAM traffic when each moves once."""
    return (t.unique_sectors_read + t.unique_sectors_written) * SECTOR_BYTES


def roofline_us(nbytes: float, peaks: dict[str, float] | None = None) -> dict[str, float]:
    """Microseconds ``nbytes`` of DRAM traffic take at each GPU's peak bandwidth."""
    return {gpu: nbytes / (gbps * 1e9) * 1e6 for gpu, gbps in (peaks or PEAK_DRAM_GBPS).items()}


def build_traffic_probe(build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None) -> Path:
    """The hand-written probe kernels (plugins/simt/simtTrafficProbe.cpp): ``build_dir/libsimt_traffic_probe.so``."""
    return build_emulated_library("simt/simtTrafficProbe.cpp", Path(build_dir) / PROBE_NAME, source_root)


def open_traffic_probe(path: str | os.PathLike) -> ctypes.CDLL:
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    own = [vp, i64, i32, i64, i64, i32]
    return open_declared(path, lambda lib: _declare_forward(lib.simt_probe_forward, own), "simt_probe_abi_version",
                         "traffic probe")


def probe_traffic(library: str | os.PathLike, kind: str, x: Any, n: int, stride: int,
                  threads: int = 64) -> tuple[EmulatedRun, Traffic]:
    """A probe kernel over ``x`` (float32, float16 for ``gather_fp16``) with ``n`` threads: ``gather``
    out[i] = x[i * stride], ``broadcast`` out[i * stride] = x[0]; its output and counted traffic."""
    import numpy as np

    lib = open_traffic_probe(library)
    x = aligned_copy(np.ascontiguousarray(x))
    out = aligned_empty(n * (stride if kind == "broadcast" else 1), x.dtype)
    own = (x.ctypes.data, x.size, PROBE_KINDS[kind], n, stride, threads)
    return counted(lib, lambda: _run(lib.simt_probe_forward, own, out, "forward", 0, 0))


def build_fp64_probe(build_dir: str | os.PathLike, source_root: str | os.PathLike | None = None) -> Path:
    """The FP64-counting probe kernel (plugins/simt/simtFp64Probe.cpp): ``build_dir/libsimt_fp64_probe.so``."""
    return build_emulated_library("simt/simtFp64Probe.cpp", Path(build_dir) / FP64_PROBE_NAME, source_root)


def probe_fp64(library: str | os.PathLike, x: Any, iterations: int, threads: int = 64) -> tuple[EmulatedRun, Traffic]:
    """The FP64 probe over float32 ``x``, one thread per element: ``iterations`` times
    ``acc = (acc + x) / 3``, then ``floor(acc) - 1`` where ``x > 0``; its float64 output and counters."""
    import numpy as np

    lib = open_declared(library, lambda lib: _declare_forward(
        lib.simt_fp64_probe_forward, [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32]),
        "simt_fp64_probe_abi_version", "FP64 probe")
    x = aligned_copy(np.ascontiguousarray(x, dtype=np.float32))
    out = aligned_empty(x.size, np.float64)
    own = (x.ctypes.data, x.size, iterations, threads)
    return counted(lib, lambda: _run(lib.simt_fp64_probe_forward, own, out, "forward", 0, 0))
