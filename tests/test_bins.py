"""The Python bin rules against the spec's stated facts and an independent reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle import edges
from spp_deploy.ops import bins


def test_ceil_pad_undefined_sizes_match_spec():
    expected = {2: [1], 3: [1, 2], 4: [1, 2, 3, 5, 9], 6: [1, 2, 3, 4, 5, 7, 8, 9, 13, 14, 15, 19, 25]}
    for n, sizes in expected.items():
        assert bins.illegal_sizes("ceil_pad", n, 200) == sizes


def test_ceil_pad_example_from_spec():
    ab = bins.axis_bins("ceil_pad", 13, 4)
    assert list(zip(ab.start.tolist(), ab.end.tolist())) == [(0, 2), (2, 6), (6, 10), (10, 13)]


def test_rounded_ties_round_half_to_even():
    # S odd for n=2: the middle edge is S/2 = x.5, rounded to the even neighbour.
    for S in (5, 7, 9, 11):
        ab = bins.axis_bins("rounded", S, 2)
        mid = S / 2
        even = int(np.floor(mid)) if int(np.floor(mid)) % 2 == 0 else int(np.ceil(mid))
        assert ab.end[0] == even and ab.start[1] == even


def test_floor_kernel_fixed_length_only():
    # k = H // n from the height; W must satisfy n*k <= W < (n+1)*k
    assert bins.is_defined("floor_kernel", 16, 16, [1, 2, 4])
    assert not bins.is_defined("floor_kernel", 16, 20, [1, 2, 4])  # n=4, k=4: 20 // 4 = 5 bins
    assert not bins.is_defined("floor_kernel", 3, 16, [4])  # k = 0: source raises


@pytest.mark.parametrize("rule", bins.RULES)
@settings(max_examples=300, deadline=None)
@given(S=st.integers(1, 300), H=st.integers(1, 300), n=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14]))
def test_axis_bins_match_independent_reference(rule, S, H, n):
    ref = edges(rule, S, n, H if rule == "floor_kernel" else S)
    ab = bins.axis_bins(rule, S, n, H if rule == "floor_kernel" else S)
    assert bool(ab.valid) == (ref is not None)
    if ref is not None:
        assert ab.start.tolist() == [r[0] for r in ref]
        assert ab.end.tolist() == [r[1] for r in ref]


def test_errors_name_rule_size_and_level():
    with pytest.raises(ValueError, match=r"'rounded'.*W=3.*level 4"):
        bins.check_size("rounded", 10, 3, [1, 4])
    with pytest.raises(ValueError, match="unknown bin rule 'keras'"):
        bins.get_rule("keras")
    with pytest.raises(ValueError, match="levels must be >= 1"):
        bins.validate_config([4, 0], "max", "adaptive", "channel_major")
    assert bins.validate_config([bins.MAX_LEVEL], "max", "adaptive", "channel_major") == (64,)
    with pytest.raises(ValueError, match=r"levels must be <= 64 \(the TensorRT limit\), got \[4, 65\]"):
        bins.validate_config([4, 65], "max", "adaptive", "channel_major")
    with pytest.raises(ValueError, match="unknown SPP mode"):
        bins.validate_config([4], "min", "adaptive", "channel_major")
