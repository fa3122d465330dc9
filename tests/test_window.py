"""Eager window SPP (SPP-net detection pooling) against the straightforward reference written
from the spec (tests/support/window_oracle.py): bit-identical, degenerate windows included."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import window_oracle as ref
from window_oracle import random_maps, random_windows
from spp_deploy.ops.projection import ZF5, ZF5_LAYERS, WindowProjection
from spp_deploy.ops.window_pyramid import EXACT_LEVELS, WindowSpatialPyramidPool, project_windows

SEEDS = st.integers(0, 2**32 - 1)
LEVEL_SETS = [(1, 2, 3, 6), (6, 3, 2, 1), (1,), (4, 2, 1), (3,), (16, 8, 4), (2, 6), (2, 1, 2)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_zf5_projection_from_layers():
    assert (ZF5.stride, ZF5.offset0, ZF5.offset) == (16.0, 21.0, 6.5)
    assert WindowProjection.receptive_field(ZF5_LAYERS) == 139
    # one stride-2 layer with a 3x3 kernel and pad 1: centre of cell 1 is pixel 1
    assert WindowProjection.from_layers([(3, 2, 1)]) == WindowProjection(2.0, 1.0)
    with pytest.raises(ValueError, match="layer 1"):
        WindowProjection.from_layers([(3, 1, 1), (0, 1, 0)])


def test_exact_levels_are_the_float32_exact_ones():
    """Re-derive the supported levels: where both float32 orders of the bin edges (the released
    code's and ONNX Runtime MaxRoiPool's) equal exact integer arithmetic for every h <= 4096."""
    h = np.arange(1, 4097)
    hf = h.astype(np.float32)
    exact = []
    for n in range(1, 17):
        ok = True
        for yy in range(n):
            lo, hi = (yy * h) // n, -((-(yy + 1) * h) // n)
            code = (np.floor(np.float32(yy) / np.float32(n) * hf), np.ceil(np.float32(yy + 1) / np.float32(n) * hf))
            size = hf / np.float32(n)
            roi = (np.floor(np.float32(yy) * size), np.ceil(np.float32(yy + 1) * size))
            ok &= all(np.array_equal(a, b) for a, b in zip(code + roi, (lo, hi, lo, hi)))
        if ok:
            exact.append(n)
    assert tuple(exact) == EXACT_LEVELS


@settings(max_examples=60, deadline=None)
@given(S=st.integers(1, 3), C=st.integers(1, 4), H=st.integers(1, 30), W=st.integers(1, 30),
       R=st.sampled_from([0, 1, 2, 17, 64]), levels=st.sampled_from(LEVEL_SETS),
       specials=st.booleans(), seed=SEEDS)
def test_matches_reference(S, C, H, W, R, levels, specials, seed):
    rng = np.random.default_rng(seed)
    x = random_maps(rng, S, C, H, W, specials)
    win = random_windows(rng, R, S, H, W)
    out = WindowSpatialPyramidPool(levels)(torch.from_numpy(x), torch.from_numpy(win)).numpy()
    assert _same(out, ref.pool(x, win, levels))


@settings(max_examples=20, deadline=None)
@given(H=st.integers(1, 25), W=st.integers(1, 25), seed=SEEDS)
def test_identity_projection_and_other_nets(H, W, seed):
    """Windows already in cells (projection None) and a projection derived from other layers."""
    rng = np.random.default_rng(seed)
    x = random_maps(rng, 2, 3, H, W, False)
    cells = np.stack([rng.integers(0, 2, 40), rng.integers(-3, W + 3, 40), rng.integers(-3, H + 3, 40),
                      rng.integers(-3, W + 3, 40), rng.integers(-3, H + 3, 40)], 1).astype(np.float64)
    out = WindowSpatialPyramidPool((1, 2, 3, 6), projection=None)(torch.from_numpy(x), torch.from_numpy(cells))
    assert _same(out.numpy(), ref.pool(x, cells, projection=(1.0, 1.0, 0.0)))
    proj = WindowProjection.from_layers([(5, 2, 2), (3, 2, 1)], offset=2.0)
    win = random_windows(rng, 40, 2, H, W, stride=proj.stride)
    out = WindowSpatialPyramidPool((2, 1), projection=proj)(torch.from_numpy(x), torch.from_numpy(win))
    assert _same(out.numpy(), ref.pool(x, win, (2, 1), (proj.stride, proj.offset0, proj.offset)))


def test_thousands_of_windows():
    rng = np.random.default_rng(1)
    x = random_maps(rng, 1, 2, 41, 55, True)
    win = random_windows(rng, 3000, 1, 41, 55)
    out = WindowSpatialPyramidPool()(torch.from_numpy(x), torch.from_numpy(win)).numpy()
    assert _same(out, ref.pool(x, win))


@settings(max_examples=40, deadline=None)
@given(H=st.integers(1, 40), W=st.integers(1, 40), seed=SEEDS)
def test_projection_keeps_the_cells_whose_centre_is_in_the_shrunk_box(H, W, seed):
    """The spec's meaning of the projection, checked where nothing collapses or clamps: cell j is
    kept iff offset0 + S*(j-1) lies in (x0 + offset - S/2, x1 - offset + S/2)."""
    rng = np.random.default_rng(seed)
    win = random_windows(rng, 200, 1, H, W)
    cells = project_windows(torch.from_numpy(win), H, W, ZF5).numpy()
    for (_, x0, y0, x1, y1), (_, left, top, right, bottom) in zip(win, cells):
        for lo, hi, first, last, size in ((x0, x1, left, right, W), (y0, y1, top, bottom, H)):
            centres = [j for j in range(-50, size + 50)
                       if lo + 6.5 - 8 < 21 + 16 * (j - 1) < hi - 6.5 + 8]
            assert 1 <= first <= last <= size
            if centres and 1 <= centres[0] and centres[-1] <= size:
                assert (first, last) == (centres[0], centres[-1])
            elif not centres:  # inverted: one cell, the C midpoint, clamped
                f = math.floor((lo - 21 + 6.5) / 16 + 0.5) + 1
                la = math.ceil((hi - 21 - 6.5) / 16 - 0.5) + 1
                mid = int((f + la) / 2)
                assert first == last == min(max(mid, 1), size)


def test_zero_based_option_shifts_by_one():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(random_maps(rng, 1, 3, 20, 20, False))
    win = torch.from_numpy(random_windows(rng, 100, 1, 20, 20))
    shifted = win.clone()
    shifted[:, 1:] -= 1
    a = WindowSpatialPyramidPool()(x, win)
    b = WindowSpatialPyramidPool(one_based=False)(x, shifted)
    assert torch.equal(a, b)


@pytest.mark.parametrize("levels, windows, match", [
    ((1, 5), [[0, 1, 1, 9, 9]], "level 5 is not supported"),
    ((1,), [[0, 1, 1, 9]], r"windows must be \[R, 5\]"),
    ((1,), [[0, 1, float("nan"), 9, 9]], "NaN"),
    ((1,), [[1, 1, 1, 9, 9]], r"index must be an integer in \[0, 1\)"),
    ((1,), [[0.5, 1, 1, 9, 9]], "index must be an integer"),
])
def test_bad_input(levels, windows, match):
    with pytest.raises(ValueError, match=match):
        WindowSpatialPyramidPool(levels)(torch.zeros(1, 2, 4, 4), torch.tensor(windows, dtype=torch.float64))


def test_each_degenerate_case_by_name():
    """Named cases on a 7 x 9 map (image about 142 x 174 px at stride 16): every one is pooled
    like the reference, and the projection shows the case (one cell, clamped to the border)."""
    H, W = 7, 9
    cases = {
        "tiny, inverted after projection": [0, 60, 60, 66, 66],
        "one pixel": [0, 80, 80, 80, 80],
        "partly outside (left/top)": [0, -200, -150, 60, 70],
        "partly outside (right/bottom)": [0, 100, 90, 900, 700],
        "wholly outside left": [0, -400, 10, -300, 50],
        "wholly outside below": [0, 10, 500, 60, 620],
        "covers everything": [0, -1e6, -1e6, 1e6, 1e6],
        "x2 < x1": [0, 120, 40, 30, 90],
    }
    rng = np.random.default_rng(7)
    x = random_maps(rng, 1, 4, H, W, True)
    win = np.array(list(cases.values()), dtype=np.float64)
    out = WindowSpatialPyramidPool()(torch.from_numpy(x), torch.from_numpy(win)).numpy()
    assert _same(out, ref.pool(x, win))
    cells = dict(zip(cases, project_windows(torch.from_numpy(win), H, W, ZF5).tolist()))
    assert cells["tiny, inverted after projection"][1] == cells["tiny, inverted after projection"][3]
    assert cells["wholly outside left"][1:4:2] == [1, 1] and cells["wholly outside below"][2:5:2] == [H, H]
    assert cells["covers everything"][1:] == [1, 1, W, H]
    assert cells["x2 < x1"][1] == cells["x2 < x1"][3]
    one = WindowSpatialPyramidPool()(torch.from_numpy(x), torch.from_numpy(win[:1]))
    assert torch.equal(one, torch.from_numpy(out[:1]))  # R = 1 is row 0 of the batch


def test_adaptive_bins_span_at_most_ceil_plus_one():
    """The exported sparse table keeps blocks up to ceil(H / n) + 1 cells (export/window.py):
    no adaptive bin of a window of h <= H cells is longer."""
    from spp_deploy.ops import bins

    h = np.arange(1, 3000)[:, None]
    for n in EXACT_LEVELS:
        ab = bins.axis_bins("adaptive", h, n)
        assert ((ab.end - ab.start) <= -(-h // n) + 1).all()
