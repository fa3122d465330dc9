"""Eager canonical op: bit-exact (max) against the seed implementations and the slow reference;
avg within the worst-case rounding error of its summation order (never a lucky tolerance).

Every random input inside ``@given`` comes from a seed that hypothesis draws, so a failing example
replays exactly."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle as reference
import source_layers as seeds
from spp_deploy import SpatialPyramidPool
from spp_deploy.ops import bins

LEVEL_SETS = [[1], [2, 1], [4, 2, 1], [6, 3, 2, 1], [5, 3], [7, 1], [3, 2]]


SEEDS = st.integers(0, 2**32 - 1)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical including NaN positions."""
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _assert_avg_equal(out: torch.Tensor, ref: torch.Tensor, x: torch.Tensor) -> None:
    """Two float64 average pools of x (any summation orders) agree within the worst case: a sum
    of k <= H*W terms is within k * eps * sum|x| of the exact one (Higham, eq. 4.4), for each
    side; a wrong bin or divisor is off by far more (~1e-6 and up, at these sizes)."""
    assert out.dtype == ref.dtype == torch.float64
    H, W = x.shape[-2:]
    atol = 2 * (H * W + H + W + 2) * torch.finfo(torch.float64).eps * x.abs().max().item()
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)


def _seed_input(seed: int, mode: str, *shape: int) -> torch.Tensor:
    """Random input for comparing with a seed: float64 for avg, whose two summation orders then
    agree within ``_assert_avg_equal``'s bound; float32 for max (compared bit for bit)."""
    x = _randn(seed, *shape)
    return x.double() if mode == "avg" else x


def _assert_same_as_seed(op: SpatialPyramidPool, x: torch.Tensor, ref: torch.Tensor, mode: str) -> None:
    """Max: bit-identical to the seed's output; avg: within the summation-order bound."""
    if mode == "max":
        assert torch.equal(op(x), ref)
    else:
        _assert_avg_equal(op(x), ref, x)


@settings(max_examples=150, deadline=None)
@given(
    H=st.integers(1, 300), W=st.integers(1, 300), rule=st.sampled_from(bins.RULES),
    mode=st.sampled_from(bins.MODES), order=st.sampled_from(bins.ORDERS),
    levels=st.sampled_from(LEVEL_SETS), seed=SEEDS,
)
def test_matches_slow_reference(H, W, rule, mode, order, levels, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, H, W), dtype=np.float32)
    ref = reference.pyramid(x, levels, mode, rule, order)
    op = SpatialPyramidPool(levels, mode, rule, order)
    if ref is None:
        with pytest.raises(ValueError, match=rule):
            op(torch.from_numpy(x))
        return
    out = op(torch.from_numpy(x)).numpy()
    if mode == "max":
        assert _same(out, ref)
    else:  # float32 and float64, each within its summation-order bound of the exact means
        reference.assert_within(out, ref, reference.avg_error_bound(x, levels, rule, order))
        x64 = x.astype(np.float64)
        out64 = op(torch.from_numpy(x64)).numpy()
        assert out64.dtype == np.float64
        reference.assert_within(out64, reference.pyramid(x64, levels, mode, rule, order),
                                reference.avg_error_bound(x64, levels, rule, order))


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 200), W=st.integers(1, 200), levels=st.sampled_from(LEVEL_SETS), mode=st.sampled_from(bins.MODES),
       seed=SEEDS)
def test_adaptive_equals_torch_adaptive_pooling(H, W, levels, mode, seed):
    x = _seed_input(seed, mode, 2, 4, H, W)
    _assert_same_as_seed(SpatialPyramidPool(levels, mode, "adaptive"), x, seeds.adaptive_pyramid(x, levels, mode), mode)


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 200), W=st.integers(1, 200), mode=st.sampled_from(bins.MODES), seed=SEEDS)
def test_ceil_pad_equals_seed000(H, W, mode, seed):
    x = _seed_input(seed, mode, 1, 3, H, W)
    op = SpatialPyramidPool([4, 2, 1], mode, "ceil_pad")
    try:
        ref = seeds.seed000_spatial_pyramid_pool(x, [4, 2, 1], mode)
    except RuntimeError:
        with pytest.raises(ValueError):
            op(x)
        return
    _assert_same_as_seed(op, x, ref, mode)


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 120), W=st.integers(1, 120), mode=st.sampled_from(bins.MODES), seed=SEEDS)
def test_floor_kernel_equals_seed003_where_fixed_length(H, W, mode, seed):
    x = _seed_input(seed, mode, 1, 2, H, W)
    op = SpatialPyramidPool([1, 2, 4], mode, "floor_kernel")
    expected_len = 2 * 21
    try:
        ref = seeds.seed003_spp_layer(x, 3, mode)
    except RuntimeError:
        ref = None
    if ref is None or ref.shape[1] != expected_len:  # source raises or is not fixed-length
        with pytest.raises(ValueError, match="floor_kernel"):
            op(x)
        return
    _assert_same_as_seed(op, x, ref, mode)


@pytest.mark.parametrize("rule", bins.RULES)
def test_nan_propagates_like_torch(rule):
    x = torch.randn(1, 2, 24, 24)
    x[0, 0, 5, 7] = float("nan")
    x[0, 1, 23, 0] = float("nan")
    levels = [1, 2, 4]
    out = SpatialPyramidPool(levels, "max", rule)(x).numpy()
    ref = reference.pyramid(x.numpy(), levels, "max", rule, "channel_major")
    assert _same(out, ref)
    assert np.isnan(out).sum() == np.isnan(ref).sum() > 0
    if rule == "adaptive":
        assert _same(out, seeds.adaptive_pyramid(x, levels).numpy())


def test_fp16_input_max_is_exact():
    x = torch.randn(2, 3, 37, 29)
    out = SpatialPyramidPool([4, 2, 1], "max", "rounded")(x.half())
    ref = SpatialPyramidPool([4, 2, 1], "max", "rounded")(x.half().float())
    assert out.dtype == torch.float16 and torch.equal(out.float(), ref)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="unknown bin rule"):
        SpatialPyramidPool([4], rule="keras")
    with pytest.raises(ValueError, match="unknown flatten order"):
        SpatialPyramidPool([4], order="rows")
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        SpatialPyramidPool([4])(torch.randn(3, 8, 8))
