"""The whole-image kernel's work layouts under the SIMT emulator, each bit-exact against the CPU
reference and ``spp_eager``: the staged path (a block streams a group of consecutive planes into
shared memory, whole planes or strips of rows, reduces small bins per thread and large bins per warp,
and stores the group's bins in output order) and the per-bin path for rows too wide to stage. Sizes
sit on each side of the layout's thresholds; the traffic targets of the rewrite are checked by the
counters."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import check_against_reference, make_input

from spp_deploy.ops import bins as B
from spp_deploy.native import emulator as emu
from spp_deploy.native import traffic as tr

DTYPES = [np.float32, np.float16]


def _all_variants(emulib, reflib, shape, levels, rule, seed, **kw) -> None:
    """Every mode, order and dtype of one shape, with NaN and infinities in the input."""
    rng = np.random.default_rng(seed)
    for dtype in DTYPES:
        for mode in B.MODES:
            x = make_input(rng, shape, mode, dtype, specials=3)
            for order in B.ORDERS:
                assert check_against_reference(emulib, reflib, x, levels, mode, rule, order, **kw)


@pytest.mark.parametrize("shape,levels,rule", [
    ((3, 7, 1, 1), [4, 2, 1], "adaptive"),       # 1x1 planes, more bins than pixels
    ((1, 1, 1, 1), [1], "adaptive"),             # a single pixel
    ((2, 19, 13, 13), [6, 3, 2, 1], "adaptive"),  # 38 planes: a full group, a partial one, groups across batches
    ((3, 13, 9, 11), [3, 2, 1], "rounded"),      # odd plane size: every plane starts at an odd element
    ((2, 5, 16, 17), [4], "floor_kernel"),       # bins leave pixels out
    ((1, 37, 24, 24), [4, 2, 1], "ceil_pad"),    # several chunks per group, the last one short
    ((1, 5, 8, 4), [1], "adaptive"),             # a 32-element bin: one thread
    ((1, 5, 11, 3), [1], "adaptive"),            # a 33-element bin: one warp
    ((1, 2, 130, 131), [4, 2, 1], "ceil_pad"),    # strips of rows, bins spanning two strips
    ((1, 3, 150, 97), [5, 3, 1], "rounded"),     # strips, overlapping bins
])
def test_staged_layouts(emulib, reflib, shape, levels, rule):
    _all_variants(emulib, reflib, shape, levels, rule, seed=sum(shape))


def test_groups_loop_over_the_grid(emulib, reflib):
    """Fewer blocks than groups of planes: each block takes several groups, chunked, reusing shared memory."""
    _all_variants(emulib, reflib, (1, 70, 24, 24), [4, 2, 1], "adaptive", seed=1, clamp_grid_x=1)


def test_misaligned_input(emulib, reflib):
    """An input that starts one element past an aligned address (a view into a larger buffer)."""
    rng = np.random.default_rng(2)
    for dtype in DTYPES:
        for mode in B.MODES:
            base = make_input(rng, (1, 2 * 11 * 13 * 9 + 1), mode, dtype, specials=0).reshape(-1)
            x = base[1:].reshape(2, 11, 13, 9)
            x[1, 3, 6, 4] = np.nan
            assert x.ctypes.data % tr.SECTOR_BYTES != 0
            for order in B.ORDERS:
                assert check_against_reference(emulib, reflib, x, [3, 1], mode, "adaptive", order)


# shape, levels, the path the launch must take: whole planes staged, strips of rows, or per bin.
THRESHOLDS = [
    ((1, 3, 110, 110), [6, 3, 2, 1], "whole"),    # the largest square plane staged whole
    ((1, 3, 111, 111), [6, 3, 2, 1], "strips"),   # the next one: staged in strips of rows
    ((1, 3, 2, 12281), [1], "strips"),            # the widest row that fits beside the edges and a bin
    ((1, 3, 2, 12282), [1], "per-bin"),           # one more column: one block per plane, from global memory
]


@pytest.mark.parametrize("shape,levels,path", THRESHOLDS, ids=[p for *_, p in THRESHOLDS])
def test_staging_thresholds(emulib, reflib, shape, levels, path):
    """Sizes on each side of both staging thresholds (48 KiB of shared memory), all exact; the launch's
    shared memory shows the path: a whole plane, at least a row (strips), or neither (per bin)."""
    rng = np.random.default_rng(shape[-1])
    H, W = shape[2:]
    for dtype, mode in ((np.float32, "max"), (np.float16, "avg")):
        x = make_input(rng, shape, mode, dtype, specials=2)
        for order in B.ORDERS:
            assert check_against_reference(emulib, reflib, x, levels, mode, "adaptive", order)
        launch = emu.emulated_pyramid(emulib, x, levels, mode, "adaptive", "bin_major").launch
        staged = launch.shared_bytes // 4  # words: a staged piece holds at least a row
        taken = "per-bin" if staged < W else "whole" if staged >= H * W else "strips"
        assert taken == path, f"the staging threshold moved: {shape} took the {taken} path"


def _traffic(emulib, shape, order, dtype=np.float32) -> tr.Traffic:
    x = tr.aligned_copy(np.random.default_rng(0).standard_normal(shape).astype(dtype))
    out = tr.aligned_empty((shape[0], shape[1] * 50), dtype)
    run, t = tr.counted(emu.open_kernel_emulator(emulib), lambda: emu.emulated_pyramid(
        emulib, x, [6, 3, 2, 1], "max", "adaptive", order, out=out))
    assert run.status == 0, run.fault
    print(f"{shape} {order} {np.dtype(dtype).name}: {t.summary()}")
    return t


@pytest.mark.parametrize("order", B.ORDERS)
def test_traffic_targets(emulib, order):
    """Adaptive max at [6, 3, 2, 1]: 64x64 planes (and 128x128, staged in strips) read at >= 80% load
    efficiency with every sector fetched at most 1.1 times, 13x13 planes at >= 50%; stores coalesced
    in both orders."""
    big = _traffic(emulib, (1, 32, 64, 64), order)
    assert big.load_efficiency >= 0.8 and big.sectors_read_over_ideal <= 1.1
    assert big.unique_sectors_read == 32 * 64 * 64 * 4 // tr.SECTOR_BYTES
    strips = _traffic(emulib, (1, 8, 128, 128), order)  # planes staged in strips of rows
    assert strips.load_efficiency >= 0.8 and strips.sectors_read_over_ideal <= 1.1
    for dtype in DTYPES:
        small = _traffic(emulib, (1, 64, 13, 13), order, dtype)
        assert small.load_efficiency >= 0.5 and small.sectors_read_over_ideal <= 1.1
        assert small.store_efficiency >= 0.8 and small.sectors_written_over_ideal <= 1.1
