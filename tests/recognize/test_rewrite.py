"""The temporary rewrite for export (``recognize/rewrite.py``): modules restored even on error,
and the caller's RNG left alone."""

import pytest
import torch

from spp_deploy.sources import seeds
from spp_deploy.recognize import canonicalize, scan


def test_modules_restored_after_rewrite_even_on_error():
    model = seeds.DetectionNetSPP(hidden=4).eval()
    layer = model.spp_layer
    with pytest.raises(RuntimeError, match="^boom$"):  # ours, from inside the block
        with canonicalize(model, torch.randn(1, 3, 64, 64)) as (traced, _):
            assert type(traced.spp_layer).__name__ == "SpatialPyramidPool"
            raise RuntimeError("boom")
    assert model.spp_layer is layer


def test_recognition_leaves_the_global_rng_alone():
    """Probing draws from its own seeded generators: exports are repeatable and the user's RNG
    stream is untouched."""
    import wild_layers as W

    for model, x in ((seeds.DetectionNetSPP(hidden=8), torch.randn(1, 3, 32, 32)),
                     (W.Model(W.PadThenPool()), torch.randn(1, 3, 13, 13))):
        state = torch.get_rng_state()
        reports = scan(model, x, tabulate_limit=32)
        assert reports and torch.equal(torch.get_rng_state(), state)
