"""Behavioural identification (``recognize/probe.py``): exact or nothing; near misses and
ambiguous probes are left alone."""

import pytest
import torch
from torch import nn

import source_layers as ref
from recognize_cases import Unregistered, only as _only
from spp_deploy.recognize import SppConfig, canonicalize, identify, scan


class NearMiss(nn.Module):
    def __init__(self, scale=1.0000001, mode="max"):
        super().__init__()
        self.scale, self.mode = scale, mode

    def forward(self, x):
        return ref.adaptive_pyramid(x, [4, 2, 1], self.mode) * self.scale


class GlobalPoolPlus(nn.Module):
    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1) + 1e-7


def test_behavioural_identification_of_unregistered_layer():
    r = _only(scan(nn.Sequential(nn.Conv2d(3, 4, 1), Unregistered()), torch.randn(1, 3, 16, 16)))
    assert (r.how, r.status, r.config) == ("behaviour", "match", SppConfig((3, 1), "avg", "ceil_pad"))


@pytest.mark.parametrize("layer", [NearMiss(), NearMiss(mode="avg"), GlobalPoolPlus()])
def test_near_miss_is_not_rewritten(layer):
    model = nn.Sequential(nn.Conv2d(3, 4, 1), layer)
    r = scan(model, torch.randn(1, 3, 16, 16))[0]
    # no whole-layer rewrite; a near miss built from adaptive pools exports through its calls (op-level)
    assert r.path == "1" and not r.rewrites and (r.status, r.how) in (("none", "behaviour"), ("match", "op-level"))
    with canonicalize(model, torch.randn(1, 3, 16, 16)) as (traced, _):
        assert traced[1] is layer


def test_global_pool_identified_as_one_level():
    m = identify(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), 4)
    assert m.status == "match" and m.config == SppConfig((1,), "avg", "adaptive")


def test_ambiguous_when_probes_cannot_separate():
    # Only 8x8 inputs: adaptive and ceil_pad bins coincide there, so no guess is made.
    m = identify(lambda x: ref.adaptive_pyramid(x, [4, 2, 1]), 3, sizes=[(8, 8), (16, 16), (4, 4), (12, 12)])
    assert m.status == "ambiguous" and len(m.candidates) >= 2
