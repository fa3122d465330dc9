"""The window kernel's bandwidth layout under the SIMT emulator: the maps copied channels-last into
a workspace, one projection per window, channels in tiles of 32 lanes, each level's block of the
row written contiguously. Its edge cases (whole-map and one-cell windows, refused windows between
valid ones, channel counts around the tile, several maps, fp16) against the spec oracle
(tests/support/window_oracle.py) and the eager op, and the workspace it needs and fills."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
from native_checks import bits_equal
from window_oracle import pool, random_maps, random_windows

from spp_deploy.native import cabi
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr
from spp_deploy.ops.projection import ZF5, WindowProjection
from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

IDENTITY = WindowProjection.identity()  # windows given in 1-based cells
SENTINEL = {np.float32: np.uint32(0x7FBADBAD), np.float16: np.uint16(0x7D5A)}


def _pooled(lib, x: np.ndarray, win: np.ndarray, levels, proj: WindowProjection, **kw) -> emu.EmulatedRun:
    """The emulated kernel into a sentinel-guarded buffer: status OK, every element written, nothing
    outside; valid rows bit-identical to the spec oracle and the eager op."""
    R, F = win.shape[0], x.shape[1] * sum(n * n for n in levels)
    bits = SENTINEL[x.dtype.type]
    buf = np.full(R * F + 32, bits, dtype=bits.dtype)
    out = buf[16:16 + R * F].view(x.dtype).reshape(R, F)
    run = emu.emulated_window_pyramid(lib, x, win, levels, proj.as_list(), out=out, **kw)
    assert run.status == cabi.STATUS_OK, (run.status, run.fault)
    assert (buf[:16] == bits).all() and (buf[16 + R * F:] == bits).all(), "write outside the output"
    assert not (buf[16:16 + R * F] == bits).any(), "an output element was never written"
    valid = np.isfinite(win.astype(np.float64)).all(1) & (win[:, 0] == np.floor(win[:, 0])) & (win[:, 0] >= 0) \
        & (win[:, 0] < x.shape[0])
    assert np.isnan(run.output[~valid]).all(), "a refused window's row is not NaN"
    if valid.any():
        oracle = pool(x, win[valid].astype(np.float64), levels, tuple(proj.as_list()))
        assert bits_equal(run.output[valid], oracle), "differs from the spec oracle"
        eager = WindowSpatialPyramidPool(levels, projection=proj)(torch.from_numpy(x), torch.from_numpy(win[valid]))
        assert bits_equal(run.output[valid], eager.numpy()), "differs from the eager op"
    return run


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("C", [1, 31, 33, 70])
def test_channel_counts_around_the_tile(wemulib, C, dtype):
    """Channel tiles of 32 lanes: one channel, one short of a tile, one over, two tiles and a part;
    windows on three maps."""
    rng = np.random.default_rng(C)
    x = (random_maps(rng, 3, C, 9, 11, True) * (100 if dtype == np.float16 else 1)).astype(dtype)
    win = random_windows(rng, 7, 3, 9, 11).astype(np.float32)
    for levels in ((6, 3, 2, 1), (4, 2, 1), (8, 3, 3)):
        _pooled(wemulib, x, win, levels, ZF5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_whole_map_and_one_cell_windows(wemulib, dtype):
    """A window beyond the map on every side pools the whole map (level 1: the map's max from 0); a
    one-cell window gives that cell's value from 0 in every bin of every level."""
    rng = np.random.default_rng(7)
    S, C, H, W = 2, 5, 6, 9
    x = rng.standard_normal((S, C, H, W)).astype(dtype)
    win = np.array([[1, -50, -50, 500, 500], [0, 3, 4, 3, 4], [1, 9, 6, 9, 6], [0, 1, 1, 1, 1]], np.float32)
    levels = (1, 2, 3, 6)
    run = _pooled(wemulib, x, win, levels, IDENTITY)
    whole = np.maximum(x[1].reshape(C, -1).max(1), 0)
    assert bits_equal(run.output[0, :C], whole.astype(dtype))
    for r, (s, cx, cy) in enumerate([(0, 3, 4), (1, 9, 6), (0, 1, 1)], start=1):
        cell = np.maximum(x[s, :, cy - 1, cx - 1], 0).astype(dtype)
        expected = np.concatenate([np.repeat(cell, n * n) for n in levels])
        assert bits_equal(run.output[r], expected)


def test_refused_windows_between_valid_ones_on_few_blocks(wemulib):
    """Blocks looping over windows rewrite the shared cells each time: refused and valid windows
    interleaved, with 1 and 2 blocks, in every schedule."""
    rng = np.random.default_rng(8)
    x = random_maps(rng, 2, 35, 10, 12, True)
    win = random_windows(rng, 9, 2, 10, 12).astype(np.float32)
    win[1, 0], win[4, 2], win[5, 0], win[7, 3] = np.nan, np.inf, 2, -np.inf
    for clamp in (1, 2):
        for schedule in emu.SCHEDULES:
            _pooled(wemulib, x, win, (6, 3, 2, 1), ZF5, clamp_grid_x=clamp, schedule=schedule, seed=clamp)


def _workspace_size(lib_path, dtype, S, C, H, W) -> int:
    lib = emu.open_window_emulator(lib_path)
    fn = lib.spp_window_emu_workspace_size
    fn.restype, fn.argtypes = ctypes.c_int64, [ctypes.c_int32, *[ctypes.c_int64] * 4]
    return int(fn(0 if dtype == np.float32 else 1, S, C, H, W))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_workspace_holds_the_maps_channels_last(wemulib, dtype):
    """The workspace is the maps' bytes rounded up to 256 (none for empty maps), and the run writes
    each map element into it exactly once besides the output (the counted stores), reading the maps
    and the workspace in full sectors."""
    item = np.dtype(dtype).itemsize
    for shape in ((1, 3, 5, 7), (2, 64, 9, 11), (3, 33, 1, 1)):
        size = _workspace_size(wemulib, dtype, *shape)
        assert size % 256 == 0 and 0 <= size - np.prod(shape) * item < 256
    assert _workspace_size(wemulib, dtype, 2, 4, 0, 5) == 0 and _workspace_size(wemulib, dtype, 0, 4, 3, 5) == 0
    rng = np.random.default_rng(9)
    x = tr.aligned_copy(rng.standard_normal((2, 64, 9, 11)).astype(dtype))
    win = tr.aligned_copy(random_windows(rng, 12, 2, 9, 11).astype(np.float32))
    out = tr.aligned_empty((12, 64 * 50), dtype)
    run, t = tr.counted(emu.open_window_emulator(wemulib),
                        lambda: emu.emulated_window_pyramid(wemulib, x, win, (6, 3, 2, 1), ZF5.as_list(), out=out))
    print(f"window 2x64x9x11 {np.dtype(dtype).name}, 12 windows: {t.summary()}")
    assert run.status == cabi.STATUS_OK and run.launch.launches == 2
    assert t.store_bytes == out.nbytes + x.nbytes
    assert t.unique_sectors_written == out.nbytes // tr.SECTOR_BYTES + -(-x.nbytes // tr.SECTOR_BYTES)
    assert t.load_efficiency >= 0.5 and t.store_efficiency >= 0.5
