"""The SIMT emulator's memory-traffic counters (spp_deploy.native.traffic): checked on hand-written
kernels whose traffic follows from the access pattern alone, then on the real kernels, whose
results must not change when counted. Each test prints the counted traffic (``pytest -s``)."""

from __future__ import annotations

import numpy as np
import pytest
from native_checks import bits_equal, build_emulator

from spp_deploy.native import cabi
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr
from spp_deploy.ops.projection import ZF5

SECTOR = tr.SECTOR_BYTES


@pytest.fixture(scope="module")
def probelib(tmp_path_factory):
    return build_emulator(emu.unavailable_reason(), tr.build_traffic_probe, tmp_path_factory.mktemp("traffic_probe"))


def _expected_sectors_per_request(itemsize: int, stride: int) -> int:
    """Distinct 32-byte sectors touched by 32 lanes reading element lane * stride of an aligned array."""
    return len({lane * stride * itemsize // SECTOR for lane in range(32)})


@pytest.mark.parametrize("stride,known", [(1, 4), (32, 32), (2, 8), (8, 32)])
def test_gather_sectors_per_request(probelib, stride, known):
    """A coalesced copy of 32 floats is 4 sectors per request, a stride-32 gather 32: the issue's known answers."""
    n = 96  # three warps
    x = np.random.default_rng(stride).standard_normal(n * stride).astype(np.float32)
    run, t = tr.probe_traffic(probelib, "gather", x, n, stride)
    print(f"gather stride {stride}: {t.summary()}")
    assert run.status == 0 and run.fault == ""
    assert np.array_equal(run.output, x[::stride][:n])
    assert known == _expected_sectors_per_request(4, stride)
    assert t.load_requests == n // 32 and t.sectors_per_load == known
    assert t.load_bytes == 4 * n and t.load_efficiency == pytest.approx(4 * 32 / (known * SECTOR))
    assert t.unique_sectors_read == t.load_sectors and t.sectors_read_over_ideal == 1.0
    # stores are coalesced whatever the stride
    assert t.store_requests == n // 32 and t.sectors_per_store == 4 and t.store_efficiency == 1.0
    assert t.unique_sectors_written == n * 4 // SECTOR
    assert tr.probe_traffic(probelib, "gather", x, n, stride)[1] == t, "counters are per launch, not summed over runs"


def test_half_copy_and_partial_warp(probelib):
    """fp16: 32 lanes x 2 bytes are 2 sectors; a last warp of 8 lanes is one request of 16 bytes (1 sector)."""
    n = 40
    x = np.arange(n, dtype=np.float16)
    run, t = tr.probe_traffic(probelib, "gather_fp16", x, n, 1, threads=64)
    print(f"fp16 copy: {t.summary()}")
    assert np.array_equal(run.output, x)
    assert t.load_requests == 2 and t.load_sectors == 2 + 1 and t.load_bytes == 2 * n
    assert t.load_efficiency == pytest.approx(2 * n / (3 * SECTOR))


def test_broadcast_and_scattered_stores(probelib):
    """All lanes reading one float: 1 sector and 4 distinct bytes per request; stores 8 floats apart: 32 sectors."""
    n = 64
    x = np.array([3.5], dtype=np.float32)
    run, t = tr.probe_traffic(probelib, "broadcast", x, n, 8)
    print(f"broadcast: {t.summary()}")
    assert np.array_equal(run.output[::8], np.full(n, 3.5, np.float32))
    assert (t.load_requests, t.load_sectors, t.load_bytes, t.unique_sectors_read) == (2, 2, 8, 1)
    assert t.sectors_read_over_ideal == 2.0
    assert t.sectors_per_store == 32 and t.store_efficiency == pytest.approx(4 / SECTOR)


def _pyramid(lib, x, levels, mode, rule, order, count: bool):
    out = tr.aligned_empty((x.shape[0], x.shape[1] * sum(n * n for n in levels)), x.dtype)
    call = lambda: emu.emulated_pyramid(lib, x, levels, mode, rule, order, out=out)
    if not count:
        return call(), None
    return tr.counted(emu.open_kernel_emulator(lib), call)


def test_whole_image_kernel_known_traffic(emulib):
    """One 32x32 fp32 plane, one bin: a warp reads each 128-byte row in one request (4 sectors, all
    bytes used) and lane 0 writes one float."""
    x = tr.aligned_copy(np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32))
    run, t = _pyramid(emulib, x, [1], "avg", "floor_kernel", "channel_major", count=True)
    print(f"whole image 1x1x32x32 [1]: {t.summary()}")
    assert run.status == cabi.STATUS_OK
    assert (t.load_requests, t.sectors_per_load, t.load_efficiency) == (32, 4.0, 1.0)
    assert t.unique_sectors_read == x.nbytes // SECTOR and t.sectors_read_over_ideal == 1.0
    assert (t.store_requests, t.store_sectors, t.store_bytes, t.unique_sectors_written) == (1, 1, 4, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("mode,rule", [("max", "adaptive"), ("avg", "adaptive")])
def test_counting_changes_no_result(emulib, dtype, mode, rule):
    """The counters observe: output bits identical with and without them; every input sector read,
    every output element written; counting off leaves the counters at zero."""
    rng = np.random.default_rng(1)
    x = tr.aligned_copy(rng.standard_normal((2, 5, 13, 13)).astype(dtype))
    levels = [6, 3, 2, 1]
    plain, _ = _pyramid(emulib, x, levels, mode, rule, "bin_major", count=False)
    assert not any(tr.last_traffic(emu.open_kernel_emulator(emulib)))
    run, t = _pyramid(emulib, x, levels, mode, rule, "bin_major", count=True)
    print(f"whole image 2x5x13x13 {levels} {mode} {rule} {np.dtype(dtype).name}: {t.summary()}")
    assert plain.status == run.status == cabi.STATUS_OK and bits_equal(plain.output.copy(), run.output)
    assert t.unique_sectors_read == -(-x.nbytes // SECTOR)
    assert t.unique_sectors_written == -(-run.output.nbytes // SECTOR)
    assert t.store_bytes == run.output.nbytes
    assert 0 < t.load_efficiency <= 1 and 0 < t.store_efficiency <= 1


def test_window_kernel_counted(wemulib):
    """The window kernel: same output counted or not; every output byte written once by its requests,
    and every map byte once into the workspace (the maps copied channels-last before pooling)."""
    rng = np.random.default_rng(2)
    x = tr.aligned_copy(rng.standard_normal((1, 8, 12, 14)).astype(np.float32))
    win = np.array([[0, 0, 0, 100, 80], [0, 40, 20, 200, 180], [0, 5, 5, 30, 30]], np.float32)
    levels = (6, 3, 2, 1)
    out = lambda: tr.aligned_empty((3, 8 * 50), np.float32)
    plain = emu.emulated_window_pyramid(wemulib, x, win, levels, ZF5.as_list(), out=out())
    run, t = tr.counted(emu.open_window_emulator(wemulib),
                        lambda: emu.emulated_window_pyramid(wemulib, x, win, levels, ZF5.as_list(), out=out()))
    print(f"window 1x8x12x14, 3 windows {levels}: {t.summary()}")
    assert plain.status == run.status == cabi.STATUS_OK and bits_equal(plain.output, run.output)
    assert t.store_bytes == run.output.nbytes + x.nbytes
    assert t.unique_sectors_written == run.output.nbytes // SECTOR + -(-x.nbytes // SECTOR)
    assert t.load_requests > 0 and 0 < t.load_efficiency <= 1
