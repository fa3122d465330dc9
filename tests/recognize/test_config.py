"""Declared SPP layers (``recognize/config.py``): ``--spp-layer`` / ``spp_layers`` strings parsed
and used by ``scan``."""

import pytest
import torch
from torch import nn

from recognize_cases import Unregistered, only as _only
from spp_deploy.commands.args import flag_for
from spp_deploy.util.errors import UserError
from spp_deploy.recognize import SppConfig, parse_declaration, scan


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
