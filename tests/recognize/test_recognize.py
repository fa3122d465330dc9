"""Recognition of the seed SPP layers, behavioural identification (exact or nothing) and the
temporary rewrite used for export."""

import re

import pytest
import torch
from torch import nn

import source_layers as ref
from spp_deploy.sources import seeds
from spp_deploy.recognize import SppConfig, canonicalize, identify, parse_declaration, scan
from spp_deploy.commands.args import flag_for
from spp_deploy.util.errors import UserError


def _only(reports):
    (r,) = reports
    return r


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


class Unregistered(nn.Module):
    """Nobody registered this one: a hand-written ceil_pad avg pyramid."""

    def forward(self, x):
        return ref.seed000_spatial_pyramid_pool(x, [3, 1], mode="avg")


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


def test_modules_restored_after_rewrite_even_on_error():
    model = seeds.DetectionNetSPP(hidden=4).eval()
    layer = model.spp_layer
    with pytest.raises(RuntimeError, match="^boom$"):  # ours, from inside the block
        with canonicalize(model, torch.randn(1, 3, 64, 64)) as (traced, _):
            assert type(traced.spp_layer).__name__ == "SpatialPyramidPool"
            raise RuntimeError("boom")
    assert model.spp_layer is layer


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


def test_declaration_parsing_and_use():
    path, cfg = parse_declaration("1=levels:4,2,1;rule=ceil_pad;mode=max;order=channel_major")
    assert (path, cfg) == ("1", SppConfig((4, 2, 1), "max", "ceil_pad"))
    assert parse_declaration("a.b=levels=2,1")[1] == SppConfig((2, 1))
    with pytest.raises(UserError, match="unknown bin rule"):
        parse_declaration("x=levels:2;rule=nope")
    with pytest.raises(UserError, match="needs levels"):
        parse_declaration("x=mode:max")
    model = nn.Sequential(nn.Conv2d(3, 4, 1), Unregistered())
    r = _only(scan(model, torch.randn(1, 3, 16, 16), declared={"1": SppConfig((3, 1), "avg", "ceil_pad")}))
    assert r.how == "declared"
    # the command line's declaration strings are accepted as they are, as a list or as mapping values
    for same in (["1=levels:3,1;bins=ceil_pad;mode=avg"], {"1": "levels:3,1;bins=ceil_pad;mode=avg"}):
        assert _only(scan(model, torch.randn(1, 3, 16, 16), declared=same)).config == r.config
    with pytest.raises(UserError, match="is not a module") as e:
        scan(model, None, declared={"nope": cfg})
    assert e.value.option == "spp_layers" and "--" not in str(e.value)
    assert e.value.render(flag_for).startswith("--spp-layer: declared SPP layer 'nope'")


def test_library_messages_name_no_command_line_flag():
    """Library exceptions name the library's arguments (``UserError.option``); only cli.py and
    commands/ name flags (via flag_for)."""
    import ast
    from pathlib import Path

    import spp_deploy

    root = Path(spp_deploy.__file__).parent
    external = {"--extra-index-url", "--build", "--target"}  # pip's and cmake's flags, not ours
    found = []
    for f in root.rglob("*.py"):
        if f.name == "cli.py" or "commands" in f.parts:
            continue
        for r in (n for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Raise)):
            for n in ast.walk(r):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]+", n.value):
                        if flag not in external:
                            found.append(f"{f.relative_to(root)}:{n.lineno}: {flag}")
    assert not found, found


def test_recognition_leaves_the_global_rng_alone():
    """Probing draws from its own seeded generators: exports are repeatable and the user's RNG
    stream is untouched."""
    import wild_layers as W

    for model, x in ((seeds.DetectionNetSPP(hidden=8), torch.randn(1, 3, 32, 32)),
                     (W.Model(W.PadThenPool()), torch.randn(1, 3, 13, 13))):
        state = torch.get_rng_state()
        reports = scan(model, x, tabulate_limit=32)
        assert reports and torch.equal(torch.get_rng_state(), state)
