"""The real window-SPP CUDA kernel source (windowSpatialPyramidPoolKernel.cu), run by the host SIMT
emulator over the grid its launcher computes (the function the plugin's enqueue calls), against the
C++ reference and the eager op: bit-identical on random window sets. Checks the kernel's logic
(thread mapping, channel chunks, shared-memory indexing and barriers, fp16 conversion, NaN rows),
not its speed or memory races."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_checks import bits_equal, build_emulator
from spp_deploy.native import cabi, emulator as emu, library as native_lib, window_reference as wref
from spp_deploy.ops.projection import ZF5, WindowProjection
from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool
from window_oracle import random_maps, random_windows

GUARD = 16
PROJECTIONS = [ZF5, WindowProjection.identity(), WindowProjection(3.0, -2.5, 0.75)]
LEVEL_SETS = [(1, 2, 3, 6), (6, 3, 2, 1), (1,), (4, 2, 1), (3,), (16, 8, 4), (2, 6), (6, 4), (8, 3, 3), (3, 6, 6)]


def _build(build_dir: Path, source_root: Path | None = None) -> Path:
    return build_emulator(emu.unavailable_reason(), emu.build_window_emulator, build_dir, source_root)


def expected_launch(R: int, C: int, levels) -> tuple[int, int]:
    """(blocks, shared bytes) of the pooling launch the kernel's plan gives: one block per window;
    shared memory holds the window's cells (8 words) and, per channel tile of 32, every distinct
    level read from the maps (levels that divide the finest one are derived) in rows of 33 words."""
    finest = max(levels)
    first = levels.index(finest)
    derived = {i for i, n in enumerate(levels) if i != first and finest % n == 0}
    staged = sum(n * n for n in {n for i, n in enumerate(levels) if i not in derived})
    return R, 4 * (8 + 33 * staged)


def run_checked(lib, reflib, x, win, levels, proj, **kw) -> emu.EmulatedRun:
    """The kernel writing into the middle of a sentinel-filled buffer, compared bit for bit with the
    C++ reference and the eager op; every output written, nothing outside it."""
    R, F = win.shape[0], x.shape[1] * sum(n * n for n in levels)
    it = np.uint32 if x.dtype == np.float32 else np.uint16
    sentinel = it(0x7FBADBAD) if it is np.uint32 else it(0x7D5A)
    buf = np.full(R * F + 2 * GUARD, sentinel, dtype=it)
    out = buf[GUARD:GUARD + R * F].view(x.dtype).reshape(R, F)
    run = emu.emulated_window_pyramid(lib, x, win, levels, proj.as_list(), out=out, **kw)
    assert run.status == cabi.STATUS_OK, (run.status, run.fault)
    assert (buf[:GUARD] == sentinel).all() and (buf[GUARD + R * F:] == sentinel).all(), "write outside the output"
    assert not (buf[GUARD:GUARD + R * F] == sentinel).any(), "an output element was never written"
    blocks, smem = expected_launch(R, x.shape[1], list(levels))
    if R and F:
        transposed = x.shape[0] * x.shape[2] * x.shape[3] > 0  # the maps copied channels-last first
        assert run.launch.launches == 1 + transposed and tuple(run.launch.block) == (256, 1, 1)
        assert (run.launch.grid[0], run.launch.shared_bytes) == (blocks, smem)
        assert run.launch.grid_x_run == (kw.get("clamp_grid_x") or blocks)
    else:
        assert run.launch.launches == 0
    w64 = win.astype(np.float64)
    ref = wref.reference_window_pyramid(x, w64, levels, proj.as_list(), reflib)
    what = (levels, proj, x.shape, x.dtype, win.dtype)
    assert bits_equal(run.output, ref), f"outputs differ from the reference {what}"
    valid = wref.reference_project(w64, *x.shape[0:1], *x.shape[2:], proj.as_list(), reflib)[1]
    eager = WindowSpatialPyramidPool(levels, projection=proj)(torch.from_numpy(x), torch.from_numpy(win[valid]))
    assert bits_equal(run.output[valid], eager.numpy()), "outputs differ from the eager op"
    return run


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(S=st.integers(1, 3), C=st.integers(1, 20), H=st.integers(1, 24), W=st.integers(1, 24),
       R=st.sampled_from([1, 2, 9, 40]), levels=st.sampled_from(LEVEL_SETS), specials=st.booleans(),
       p=st.sampled_from(range(len(PROJECTIONS))), fp16=st.booleans(), win16=st.booleans(),
       schedule=st.sampled_from(emu.SCHEDULES), seed=st.integers(0, 2**32 - 1))
def test_emulated_kernel_matches_reference(wemulib, reflib, S, C, H, W, R, levels, specials, p, fp16, win16,
                                           schedule, seed):
    rng = np.random.default_rng(seed)
    proj = PROJECTIONS[p]
    x = random_maps(rng, S, C, H, W, specials)
    if fp16:
        x = (x * 100).astype(np.float16)
    win = random_windows(rng, R, S, H, W, stride=proj.stride)
    if win16:  # fp16 windows: pixel coordinates as half (the plugin widens them exactly)
        win = np.clip(win, -60000, 60000).astype(np.float16)
    else:
        win = win.astype(np.float32)
    run_checked(wemulib, reflib, x, win, levels, proj, schedule=schedule, seed=seed)


def test_refused_windows_give_nan_rows(wemulib, reflib):
    x = random_maps(np.random.default_rng(1), 2, 3, 9, 9, False)
    good = [1, 20, 20, 90, 120]
    win = np.array([good, [2, *good[1:]], [-1, *good[1:]], [0.5, *good[1:]], [np.nan, *good[1:]],
                    [0, np.inf, 20, 90, 90], [0, 20, 20, 90, -np.inf], good], dtype=np.float32)
    for levels in ((1, 2, 3, 6), (3,)):  # derived levels too: they must not turn NaN into 0
        run = run_checked(wemulib, reflib, x, win, levels, ZF5)
        assert np.isnan(run.output[1:-1]).all() and not np.isnan(run.output[[0, -1]]).any()


def test_empty_inputs_launch_nothing(wemulib, reflib):
    x = random_maps(np.random.default_rng(2), 1, 3, 5, 5, False)
    run_checked(wemulib, reflib, x, np.zeros((0, 5), np.float32), (1, 2), ZF5)
    run = emu.emulated_window_pyramid(wemulib, x[:, :0], np.array([[0, 1, 1, 9, 9]], np.float32), (1, 2),
                                     ZF5.as_list())
    assert run.status == cabi.STATUS_OK and run.launch.launches == 0 and run.output.shape == (1, 0)


def test_grid_stride_loop(wemulib, reflib):
    """Fewer blocks than (window, channel chunk) pairs: blocks loop, reusing shared memory."""
    rng = np.random.default_rng(3)
    x = random_maps(rng, 2, 17, 13, 19, True)
    win = random_windows(rng, 11, 2, 13, 19).astype(np.float32)
    for clamp in (1, 2, 5):
        for schedule in emu.SCHEDULES:
            run_checked(wemulib, reflib, x, win, (1, 2, 3, 6), ZF5, clamp_grid_x=clamp, schedule=schedule, seed=clamp)


def test_bad_configuration_launches_nothing(wemulib):
    x = np.ones((1, 2, 8, 8), dtype=np.float32)
    win = np.array([[0, 1, 1, 50, 50]], dtype=np.float32)
    for levels, proj in (([5], ZF5.as_list()), ([0], ZF5.as_list()), (list(range(1, 18)), ZF5.as_list()),
                         ([2], [0.0, 21.0, 6.5]), ([2], [16.0, float("nan"), 6.5])):
        run = emu.emulated_window_pyramid(wemulib, x, win, levels, proj, out=np.zeros(10**4, dtype=np.float32))
        assert run.status == cabi.STATUS_BAD_CONFIG and run.launch.launches == 0, (levels, proj)


# ---- the emulator catches broken kernels ----------------------------------------------------------

MUTATIONS = {
    "missing-syncthreads": ("                __syncthreads();\n                // 2) Each level's",
                            "                // 2) Each level's", "differ"),
    "transpose-without-barrier": ("        }\n        __syncthreads();\n        for (int32_t j = row0; j < kTILE; j += rows) // position",
                                  "        }\n        for (int32_t j = row0; j < kTILE; j += rows) // position", "differ"),
    # Two floats short: the last word of the last padded row is never used. (The emulator's guard
    # after shared memory is 64 bytes: a larger overrun would corrupt the host heap, not be reported.)
    "shared-memory-too-small": ("(kCELL_WORDS + static_cast<size_t>(plan.stagedBins) * kPAD);",
                                "(kCELL_WORDS + static_cast<size_t>(plan.stagedBins) * kPAD - 2);",
                                "shared memory"),
    "max-starts-at-minus-infinity": ("float acc = 0.0F;\n                    if (lane < tc)",
                                     "float acc = -INFINITY;\n                    if (lane < tc)", "differ"),
    "wrong-channel-in-tile": ("(y * W + x) * C + c0 + lane)", "(y * W + x) * C + c0)", "differ"),
    "refused-window-row-not-nan": ("storeF(row, i, nan);", "storeF(row, i, 0.0F);", "differ"),
}


@pytest.fixture(scope="module")
def plugin_tree_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugins_copy_window")
    for sub in ("spatialPyramidPoolPlugin", "simt", "windowSpatialPyramidPoolPlugin", "common"):
        shutil.copytree(native_lib.plugin_source_dir() / sub, root / sub)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_emulator_catches_broken_kernel(plugin_tree_copy, reflib, tmp_path, name):
    old, new, expected = MUTATIONS[name]
    rel = Path("windowSpatialPyramidPoolPlugin") / "windowSpatialPyramidPoolKernel.cu"
    pristine = (native_lib.plugin_source_dir() / rel).read_text()
    assert pristine.count(old) == 1, f"mutation {name!r} no longer applies: update MUTATIONS to the kernel"
    (plugin_tree_copy / rel).write_text(pristine.replace(old, new))
    try:
        lib = _build(tmp_path, plugin_tree_copy)
    finally:
        (plugin_tree_copy / rel).write_text(pristine)
    rng = np.random.default_rng(6)
    x = random_maps(rng, 2, 9, 15, 17, True) - np.float32(1.5)  # mostly negative: a max from 0 matters
    win = random_windows(rng, 12, 2, 15, 17).astype(np.float32)
    win[3, 0] = np.nan
    caught = []
    for schedule in emu.SCHEDULES:
        try:
            run_checked(lib, reflib, x, win, (1, 2, 3, 6), ZF5, schedule=schedule, seed=7)
        except AssertionError as e:
            caught.append(str(e).splitlines()[0])
    assert caught, f"the broken kernel ({name}) passed every comparison"
    assert any(expected in c for c in caught), caught
