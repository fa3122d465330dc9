"""Hypothesis strategies for one random SPP case (input size, levels, flatten order, data seed),
shared by the tests that check native code (CPU reference, emulated kernel) case by case."""

from __future__ import annotations

from hypothesis import strategies as st

from spp_deploy.ops import bins as B


def pyramid_case(max_side: int, levels: st.SearchStrategy) -> dict[str, st.SearchStrategy]:
    """``@given(**pyramid_case(...))`` keywords: h, w in 1..max_side, batch b in 1..2, channels c in
    1..3, ``levels``, a flatten order and the seed of the input data."""
    return {
        "h": st.integers(1, max_side),
        "w": st.integers(1, max_side),
        "b": st.integers(1, 2),
        "c": st.integers(1, 3),
        "levels": levels,
        "order": st.sampled_from(B.ORDERS),
        "seed": st.integers(0, 2**32 - 1),
    }
