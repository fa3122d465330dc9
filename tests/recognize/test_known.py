"""Layers recognized by type or structure (``recognize/known.py``): the seed layers, the Keras
port, adaptive pyramids, and ultralytics SPP rewritten to the bit-identical SPPF."""

import pytest
import torch
from torch import nn

from recognize_cases import only as _only
from spp_deploy.sources import seeds
from spp_deploy.recognize import SppConfig, canonicalize, scan


@pytest.mark.parametrize("layer,expect,how", [
    (seeds.SPPLayer(3), SppConfig((1, 2, 4), "max", "floor_kernel"), "type"),
    (seeds.SPPLayer(2, "avg_pool"), SppConfig((1, 2), "avg", "floor_kernel"), "type"),
    (seeds.KerasSpatialPyramidPooling([1, 2, 4]), SppConfig((1, 2, 4), "max", "rounded", "bin_major"), "type"),
    (seeds.AdaptivePyramidPool((6, 3, 2, 1)), SppConfig((6, 3, 2, 1), "max", "adaptive"), "structure"),
    (seeds.AdaptivePyramidPool((4, 2, 1), "avg"), SppConfig((4, 2, 1), "avg", "adaptive"), "structure"),
])
def test_known_layers_recognized_inside_a_model(layer, expect, how):
    model = nn.Sequential(nn.Conv2d(3, 5, 3), layer)
    r = _only(scan(model, torch.randn(1, 3, 20, 20)))
    assert (r.path, r.status, r.config, r.channels, r.how) == ("1", "match", expect, 5, how)
    assert r.action == "replace with canonical op"


def test_yolo_spp_rewritten_to_sppf_bit_identical():
    model = seeds.YoloSppNet().eval()
    x = torch.randn(2, 3, 72, 100)
    r = _only(scan(model, x))
    assert r.kind == "ultralytics SPP" and r.action.startswith("rewrite to SPPF")
    with torch.no_grad():
        want = model(x)
        with canonicalize(model, x) as (traced, _):
            assert type(traced.spp).__name__ == "SPPFRewrite"
            assert torch.equal(traced(x), want)
    off = _only(scan(model, x, sppf=False))
    assert off.action == "export as is (keeps H, W)"
    assert _only(scan(seeds.YoloSppNet(fast=True), x)).kind == "ultralytics SPPF"
