"""What the emulated whole-image kernel's tests share: a run into a guarded output buffer, inputs
whose avg sums are exact in any order, and the bit-exact comparison with the CPU reference and
``spp_eager`` (tests/native/test_kernel_emulation.py, test_whole_image_kernel_layout.py)."""

from __future__ import annotations

import numpy as np
import torch

from spp_deploy.ops import bins as B
from spp_deploy.native import cabi
from spp_deploy.native import emulator as emu
from spp_deploy.native import reference as cref
from spp_deploy.ops.pyramid import spp_eager

GUARD = 16
SENTINEL = np.uint32(0x7FBADBAD)  # a NaN payload neither the kernel nor the inputs produce


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint16)


def assert_bit_equal(actual: np.ndarray, expected: np.ndarray, what="") -> None:
    """Same NaN positions, identical bits everywhere else (NaN payloads are not compared)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan_a, nan_e = np.isnan(actual.astype(np.float32)), np.isnan(expected.astype(np.float32))
    assert np.array_equal(nan_a, nan_e), f"NaN positions differ {what}"
    diff = (_bits(actual) != _bits(expected)) & ~nan_a
    assert not diff.any(), f"{int(diff.sum())} of {diff.size} outputs differ {what}: first at {np.argwhere(diff)[0]}"


def run_guarded(lib, x, levels, mode, rule, order, **kw) -> emu.EmulatedRun:
    """The kernel writing into the middle of a sentinel-filled buffer: every output must be written,
    nothing outside it."""
    F = B.feature_count(x.shape[1], levels)
    n = x.shape[0] * F
    itype = np.uint32 if x.dtype == np.float32 else np.uint16
    sentinel = SENTINEL if itype is np.uint32 else np.uint16(0x7D5A)
    buf = np.full(n + 2 * GUARD, sentinel, dtype=itype)
    out = buf[GUARD:GUARD + n].view(x.dtype).reshape(x.shape[0], F)
    run = emu.emulated_pyramid(lib, x, levels, mode, rule, order, out=out, **kw)
    assert (buf[:GUARD] == sentinel).all() and (buf[GUARD + n:] == sentinel).all(), "write outside the output"
    if run.status == cabi.STATUS_OK:
        assert not (buf[GUARD:GUARD + n] == sentinel).any(), "an output element was never written"
    return run


def make_input(rng, shape, mode, dtype, specials: int) -> np.ndarray:
    """max: normal data (fp16: scaled); avg: integers in [-64, 64] (sums exact in float32 whatever
    the order). ``specials`` NaN / +-inf at random places."""
    if mode == "avg":
        x = rng.integers(-64, 65, shape).astype(dtype)
    else:
        x = (rng.standard_normal(shape) * (100 if dtype == np.float16 else 1)).astype(dtype)
    flat = x.reshape(-1)
    for k in range(specials):
        flat[rng.integers(0, flat.size)] = (np.nan, np.inf, -np.inf)[k % 3]
    return x


def check_against_reference(emulib, reflib, x, levels, mode, rule, order, **kw) -> bool:
    H, W = x.shape[2:]
    run = run_guarded(emulib, x, levels, mode, rule, order, **kw)
    if not B.is_defined(rule, H, W, levels):
        assert run.status == cabi.STATUS_ILLEGAL_SIZE and run.launch.launches == 0, (run.status, run.fault)
        return False
    assert run.status == cabi.STATUS_OK, (run.status, run.fault)
    launch = run.launch
    assert launch.launches == 1 and tuple(launch.block) == (256, 1, 1)
    # a block per group of consecutive planes (per plane where a plane is too large to stage), none idle
    assert 1 <= launch.grid[0] <= x.shape[0] * x.shape[1]
    assert launch.grid_x_run == (kw.get("clamp_grid_x") or launch.grid[0])
    ref = cref.reference_pyramid(x, levels, mode, rule, order, library=reflib)
    assert_bit_equal(run.output, ref, (rule, mode, order, levels, x.shape, x.dtype))
    if mode == "max":  # and thereby the Python op (float16 max is exact in float32)
        eager = spp_eager(torch.from_numpy(x.astype(np.float32)), list(levels), mode, rule, order).numpy()
        assert_bit_equal(run.output, eager.astype(x.dtype), "vs spp_eager")
    return True
