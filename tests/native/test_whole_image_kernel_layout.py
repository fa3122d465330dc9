"""The whole-image kernel's work layouts under the SIMT emulator, each bit-exact against the CPU
reference and ``spp_eager``: the staged path (a block streams a group of consecutive planes into
shared memory, chunk by chunk, reduces small bins per thread and large bins per warp, and stores
the group's bins in output order) and the per-bin path for planes too large to stage. Sizes sit on
each side of the layout's thresholds; the traffic targets of the rewrite are checked by the counters."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import check_against_reference, make_input

from spp_deploy import bins as B
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


def test_shared_memory_threshold(emulib, reflib):
    """The largest square plane the staged path takes with levels [6, 3, 2, 1] and the next one, which
    goes to the per-bin path (one block per plane, only the finest bins in shared memory): both exact."""
    staged = {}
    for side in (110, 111):
        rng = np.random.default_rng(side)
        for dtype, mode in ((np.float32, "max"), (np.float16, "avg")):
            x = make_input(rng, (1, 3, side, side), mode, dtype, specials=2)
            for order in B.ORDERS:
                assert check_against_reference(emulib, reflib, x, [6, 3, 2, 1], mode, "adaptive", order)
            run = emu.emulated_pyramid(emulib, x, [6, 3, 2, 1], mode, "adaptive", "bin_major")
            staged[side] = run.launch.shared_bytes >= 4 * side * side  # the plane's pixels are in shared memory
            if not staged[side]:
                assert run.launch.grid[0] == 3, "the per-bin path: one block per plane"
    assert staged == {110: True, 111: False}, f"the staging threshold moved: {staged}"


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
    """Adaptive max at [6, 3, 2, 1]: 64x64 planes read at >= 80% load efficiency with every sector
    fetched at most 1.1 times, 13x13 planes at >= 50%; stores coalesced in both orders."""
    big = _traffic(emulib, (1, 32, 64, 64), order)
    assert big.load_efficiency >= 0.8 and big.sectors_read_over_ideal <= 1.1
    assert big.unique_sectors_read == 32 * 64 * 64 * 4 // tr.SECTOR_BYTES
    for dtype in DTYPES:
        small = _traffic(emulib, (1, 64, 13, 13), order, dtype)
        assert small.load_efficiency >= 0.5 and small.sectors_read_over_ideal <= 1.1
        assert small.store_efficiency >= 0.8 and small.sectors_written_over_ideal <= 1.1
