"""The SIMT emulator's FP64 operation counter (``simt::f64``, ``Traffic.fp64_ops``): checked on a
hand-written kernel whose count follows from its code and its input, then on the window kernel,
which must project each window once (a count per window that depends neither on the channels nor
on the number of windows). Each test prints what it counted (``pytest -s``)."""

from __future__ import annotations

import numpy as np
import pytest
from native_checks import bits_equal, build_emulator
from window_oracle import random_maps, random_windows

from spp_deploy.native import cabi
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr
from spp_deploy.ops.projection import ZF5


@pytest.fixture(scope="module")
def fp64lib(tmp_path_factory):
    return build_emulator(emu.unavailable_reason(), tr.build_fp64_probe, tmp_path_factory.mktemp("fp64_probe"))


def _probe_expected(x: np.ndarray, iterations: int) -> tuple[np.ndarray, int]:
    """The probe's output, computed in numpy float64 with the same operations, and its operation
    count from its code: a cvt, 2 per iteration, a compare, and floor + sub where x > 0."""
    acc = np.zeros(x.size)
    xd = x.astype(np.float64)
    for _ in range(iterations):
        acc = (acc + xd) / 3.0
    acc = np.where(xd > 0, np.floor(acc) - 1.0, acc)
    return acc, x.size * (2 + 2 * iterations) + 2 * int((xd > 0).sum())


@pytest.mark.parametrize("n,iterations,threads", [(96, 3, 64), (40, 0, 32), (257, 5, 128)])
def test_probe_count_follows_from_the_code(fp64lib, n, iterations, threads):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    run, t = tr.probe_fp64(fp64lib, x, iterations, threads)
    expected, ops = _probe_expected(x, iterations)
    print(f"fp64 probe n={n} iterations={iterations}: {t.fp64_ops} ops")
    assert run.status == 0 and run.fault == ""
    assert np.array_equal(run.output, expected), "the counting type changed a result"
    assert t.fp64_ops == ops
    assert tr.probe_fp64(fp64lib, x, iterations, threads)[1].fp64_ops == ops, "counts are per run, not summed over runs"


def test_counting_off_counts_nothing(fp64lib):
    x = np.linspace(-2, 2, 64, dtype=np.float32)
    tr.probe_fp64(fp64lib, x, 2)
    lib = cabi.open_declared(fp64lib, lambda lib: None, "simt_fp64_probe_abi_version", "FP64 probe")
    # an uncounted run through the same library: the counters of that run are all zero
    run = emu._run(lib.simt_fp64_probe_forward, (x.ctypes.data, x.size, 2, 64), tr.aligned_empty(64, np.float64),
                   "forward", 0, 0)
    assert run.status == 0 and np.array_equal(run.output, _probe_expected(x, 2)[0])
    assert tr.last_traffic(lib).fp64_ops == 0


def _window_ops(lib, C: int, windows: np.ndarray, levels=(6, 3, 2, 1)) -> tuple[emu.EmulatedRun, tr.Traffic]:
    x = tr.aligned_copy(random_maps(np.random.default_rng(C), 2, C, 11, 13, False))
    out = tr.aligned_empty((windows.shape[0], C * sum(n * n for n in levels)), np.float32)
    return tr.counted(emu.open_window_emulator(lib),
                      lambda: emu.emulated_window_pyramid(lib, x, windows, levels, ZF5.as_list(), out=out))


def test_window_kernel_projects_each_window_once(wemulib):
    """The same windows over 3 and 40 channels, and twice as many windows: the FP64 count is linear in
    the windows and blind to the channels, and at most 100 operations per window."""
    win = random_windows(np.random.default_rng(4), 6, 2, 11, 13).astype(np.float32)
    win[:, 0] = np.arange(6) % 2
    counts = {}
    for C, w in ((3, win), (40, win), (3, np.concatenate([win, win]))):
        run, t = _window_ops(wemulib, C, w)
        assert run.status == cabi.STATUS_OK, run.fault
        counts[C, w.shape[0]] = t.fp64_ops
    print(f"window kernel fp64 ops (C, R) -> count: {counts}")
    assert counts[3, 6] == counts[40, 6] > 0
    assert counts[3, 12] == 2 * counts[3, 6]
    assert counts[3, 6] / 6 <= 100


def test_window_kernel_counted_output_unchanged(wemulib):
    """Counting FP64 operations changes no output bit (the counting type computes in double)."""
    win = random_windows(np.random.default_rng(5), 9, 2, 11, 13).astype(np.float32)
    counted_run, _ = _window_ops(wemulib, 5, win)
    x = tr.aligned_copy(random_maps(np.random.default_rng(5), 2, 5, 11, 13, False))
    plain = emu.emulated_window_pyramid(wemulib, x, win, (6, 3, 2, 1), ZF5.as_list())
    assert bits_equal(plain.output, counted_run.output)
