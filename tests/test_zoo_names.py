"""Zoo models are named after their source; a renamed entry still loads under its old name,
with one warning line on the command line and a FutureWarning in Python."""

import json

import pytest
import torch

from spp_deploy.sources import zoo
from spp_deploy.util.errors import Renamed, UserError


@pytest.mark.parametrize("old, new", sorted(zoo.RENAMED.items()))
def test_an_old_name_builds_the_same_model(old, new):
    with pytest.warns(Renamed, match=f"zoo:{old} is now called zoo:{new}"):
        before = zoo.create(old, hidden=8)
    after = zoo.create(new, hidden=8)
    x = torch.randn(1, *zoo.ZOO[new].input_shape[1:])
    assert type(before) is type(after) and torch.equal(before(x), after(x))


def test_old_names_are_not_listed():
    assert not set(zoo.RENAMED) & set(zoo.zoo_names())
    assert set(zoo.RENAMED.values()) <= set(zoo.zoo_names())
    with pytest.raises(UserError) as e:
        zoo.get_entry("nope")
    assert not any(old in str(e.value) for old in zoo.RENAMED)


def test_the_cli_loads_an_old_name_with_one_warning_line(cli):
    (old, new), = zoo.RENAMED.items()
    code, out, err = cli("inspect", "--model", f"zoo:{old}", "--json")
    assert code == 0, err
    assert err.splitlines() == [f"spp-deploy: warning: zoo:{old} is now called zoo:{new} (the old name will be removed)"]
    code, new_out, new_err = cli("inspect", "--model", f"zoo:{new}", "--json")
    before, after = json.loads(out), json.loads(new_out)
    assert code == 0 and new_err == "" and (before.pop("model"), after.pop("model")) == (f"zoo:{old}", f"zoo:{new}")
    assert before == after


def test_quiet_drops_the_warning(cli):
    (old, _), = zoo.RENAMED.items()
    code, _, err = cli("-q", "inspect", "--model", f"zoo:{old}", "--json")
    assert code == 0 and err == ""
