"""The module paths from before ops/, sources/ and util/ still import: the same module objects,
with a DeprecationWarning naming the new path, and no module executed twice."""

import importlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import spp_deploy
from spp_deploy.util.moved import MOVED

ROOT = Path(spp_deploy.__file__).resolve().parent.parent


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_path_is_the_new_module_and_warns(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # imported by an earlier test: import it afresh
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} moved to {new}")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new  # the real module keeps its identity
    assert Path(module.__file__).resolve() == ROOT / (new.replace(".", "/") + ".py")


def test_from_import_of_an_old_name_is_the_same_object(monkeypatch):
    from spp_deploy.ops.pyramid import SpatialPyramidPool

    monkeypatch.delitem(sys.modules, "spp_deploy.op", raising=False)
    monkeypatch.delattr(spp_deploy, "op", raising=False)
    with pytest.warns(DeprecationWarning, match="spp_deploy.ops.pyramid"):
        from spp_deploy import op
    from spp_deploy.op import SpatialPyramidPool as Old

    assert Old is SpatialPyramidPool and op.SpatialPyramidPool is Old


def test_no_module_runs_twice_and_custom_ops_keep_their_names():
    """Importing every old and new path in one process executes each file once (an audit hook
    sees every module body run) and registers each torch.library op once, under its old name."""
    code = """
import json, sys, warnings
runs = {}
def hook(event, args):
    if event == "exec" and hasattr(args[0], "co_filename") and args[0].co_name == "<module>":
        runs[args[0].co_filename] = runs.get(args[0].co_filename, 0) + 1
sys.addaudithook(hook)
warnings.simplefilter("ignore", DeprecationWarning)
import importlib
from spp_deploy.util.moved import MOVED
for old, new in sorted(MOVED.items()):
    importlib.import_module(new); importlib.import_module(old)
import torch
ops = [n for n in ("spatial_pyramid_pool", "tabulated_pyramid_pool", "window_spatial_pyramid_pool",
                   "size_dependent_pool") if hasattr(torch.ops.spp_deploy, n)]
print(json.dumps({"runs": {f: n for f, n in runs.items() if "spp_deploy" in f}, "ops": ops}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["runs"] and all(n == 1 for n in out["runs"].values()), out["runs"]
    ran = {Path(f).resolve().relative_to(ROOT / "spp_deploy").as_posix() for f in out["runs"]}
    assert {"ops/pyramid.py", "ops/window_pyramid.py", "util/errors.py", "sources/zoo.py"} <= ran
    assert out["ops"] == ["spatial_pyramid_pool", "tabulated_pyramid_pool", "window_spatial_pyramid_pool",
                          "size_dependent_pool"]


def test_a_pickle_naming_the_old_module_loads(monkeypatch):
    """A model pickled before the move names ``spp_deploy.op``; it loads as today's class."""
    from spp_deploy.ops.pyramid import SpatialPyramidPool

    layer = SpatialPyramidPool(levels=(2, 1), mode="avg", rule="ceil_pad")
    data = pickle.dumps(layer, protocol=2)
    old = data.replace(b"spp_deploy.ops.pyramid\n", b"spp_deploy.op\n")
    assert old != data and b"spp_deploy.op\n" in old
    monkeypatch.delitem(sys.modules, "spp_deploy.op", raising=False)
    with pytest.warns(DeprecationWarning, match="spp_deploy.ops.pyramid"):
        loaded = pickle.loads(old)
    x = torch.randn(1, 2, 7, 5)
    assert type(loaded) is SpatialPyramidPool and torch.equal(loaded(x), layer(x))

