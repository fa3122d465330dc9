"""SPP functions called in ``forward`` (``recognize/functions.py``): patched while exporting,
restored afterwards."""

import torch

from recognize_cases import only as _only
from spp_deploy.sources import seeds
from spp_deploy.recognize import SppConfig, canonicalize, scan


def test_function_patched_and_restored():
    model = seeds.SPP_NET(ndf=2, hidden=4).eval()
    x = torch.randn(1, 16, 16, 17)
    r = _only(scan(model, x))
    assert r.how == "function" and r.config == SppConfig((4, 2, 1), "max", "ceil_pad")
    want = model(x)
    original = seeds.spatial_pyramid_pool
    with canonicalize(model, x) as (traced, _):
        assert seeds.spatial_pyramid_pool is not original
        assert torch.equal(traced(x), want)
    assert seeds.spatial_pyramid_pool is original
