"""The SIMT emulator's shared-memory bank-conflict counters (spp_deploy.native.traffic): checked on
hand-written kernels whose conflicts follow from the access pattern alone, then on the real kernels,
whose results must not change when counted. Each test prints the counters (``pytest -s``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from native_checks import bits_equal, build_emulator

from spp_deploy.native import cabi
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr

BANKS, WORD, WARP = 32, 4, 32


@pytest.fixture(scope="module")
def banklib(tmp_path_factory):
    return build_emulator(emu.unavailable_reason(), tr.build_bank_probe, tmp_path_factory.mktemp("bank_probe"))


def _extra_passes(itemsize: int, stride: int, offset: int = 0) -> int:
    """Bank passes beyond the ideal for 32 lanes accessing element offset + lane * stride: the most
    distinct 4-byte words one of 32 banks serves, minus ceil(distinct words / 32)."""
    words = set()
    for lane in range(WARP):
        start = (offset + lane * stride) * itemsize
        words.update(range(start // WORD, (start + itemsize - 1) // WORD + 1))
    per_bank = [0] * BANKS
    for w in words:
        per_bank[w % BANKS] += 1
    return max(per_bank) - math.ceil(len(words) / BANKS)


def _data(dtype, n: int) -> np.ndarray:
    return (np.arange(n) % 251 - 100).astype(dtype)


@pytest.mark.parametrize("dtype,stride,known", [
    ("float32", 1, 0), ("float32", 2, 1), ("float32", 32, 31), ("float32", 33, 0), ("float32", 4, 3),
    ("int32", 2, 1), ("float16", 1, 0), ("float16", 2, 0), ("float16", 64, 31), ("float64", 1, 0),
    ("float64", 2, 2)])
def test_strided_access_conflicts(banklib, dtype, stride, known):
    """Stride-1 float: conflict-free; stride 2: 2-way (one extra pass); stride 32: 32-way (31 extra);
    a padded stride 33: none. Each warp writes once and reads once; the last block's idle warp counts nothing."""
    n, threads = 96, 64  # block 0: two warps; block 1: one live warp
    x = _data(dtype, n)
    run, b = tr.probe_bank_conflicts(banklib, "strided", x, stride, threads)
    print(f"{dtype} stride {stride}: {b.summary()}")
    assert run.status == 0 and run.fault == ""
    assert np.array_equal(run.output, x)
    assert known == _extra_passes(x.itemsize, stride)
    assert b.requests == 2 * (n // WARP)
    assert b.conflicts_per_request == known and b.bank_conflicts == b.requests * known
    assert b.bytes == 2 * n * x.itemsize


def test_broadcast_is_no_conflict(banklib):
    """All lanes reading one word: a broadcast, one pass. Thread 0's write is a one-lane request."""
    n = 128
    x = _data("float32", n)
    run, b = tr.probe_bank_conflicts(banklib, "broadcast", x, 0, threads=64)
    print(f"broadcast: {b.summary()}")
    assert np.array_equal(run.output, np.repeat(x[::64], 64))
    blocks, warps = n // 64, n // WARP
    assert (b.requests, b.wavefronts, b.bank_conflicts) == (blocks + warps, blocks + warps, 0)
    assert b.bytes == 4 * (blocks + warps)


@pytest.mark.parametrize("stride", [1, 2, 8])
def test_views_and_atomics_are_counted(banklib, stride):
    """``name + k``, a const view and ``&name[i]`` for an atomic are counted like ``name[i]``; a view one
    element in shifts every word by one bank, so the conflicts stay those of the stride. The plain
    pointer a kernel converts the accessor to is not counted."""
    n = 64
    x = _data("float32", n)
    run, view = tr.probe_bank_conflicts(banklib, "view", x, stride)
    assert np.array_equal(run.output, x)
    assert view.requests == 2 * (n // WARP)
    assert view.conflicts_per_request == _extra_passes(4, stride, offset=1) == _extra_passes(4, stride)
    run, atomic = tr.probe_bank_conflicts(banklib, "atomic", x, stride)
    print(f"stride {stride}: view {view.summary()}; atomic {atomic.summary()}")
    assert np.array_equal(run.output, x)
    # write, element zeroed, &element for atomicAdd, += (one request), read back: 5 per warp
    assert atomic.requests == 5 * (n // WARP)
    assert atomic.conflicts_per_request == _extra_passes(4, stride)


def test_counting_off_leaves_zero_and_changes_no_result(emulib):
    """The whole-image kernel's nested max levels go through its shared buffer: counted, its requests
    show up and its output bits are those of the uncounted run, whose counters stay zero."""
    rng = np.random.default_rng(3)
    x = tr.aligned_copy(rng.standard_normal((2, 3, 13, 13)).astype(np.float32))
    x[0, 1, 4, 4] = np.nan
    levels = [6, 3, 2, 1]
    lib = emu.open_kernel_emulator(emulib)
    plain = emu.emulated_pyramid(emulib, x, levels, "max", "adaptive", "channel_major")
    assert tr.last_bank_conflicts(lib) == tr.BankConflicts(0, 0, 0, 0)
    run, _ = tr.counted(lib, lambda: emu.emulated_pyramid(emulib, x, levels, "max", "adaptive", "channel_major"))
    b = tr.last_bank_conflicts(lib)
    print(f"whole image 2x3x13x13 {levels} max adaptive: {b.summary()}")
    assert plain.status == run.status == cabi.STATUS_OK and bits_equal(plain.output, run.output)
    assert b.requests > 0 and b.bytes > 0 and b.wavefronts >= b.requests >= 0 and b.bank_conflicts >= 0
