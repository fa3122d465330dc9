"""``localize``: tamper one weight or one node of an exported file and the report names the
module it belongs to; an untampered file names none (``validate --localize``, export's message)."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from exports import export_modes
from tamper import scoped_nodes as _scoped_nodes
from tamper import tamper_weight as _tamper_weight
from torch import nn

from spp_deploy import SpatialPyramidPool, export_onnx
from spp_deploy.runtime.localize import localize
from spp_deploy.util.errors import ParityError, UserError

HERE = f"{Path(__file__).resolve()}:make_net"


class Net(nn.Module):
    """Conv features -> SPP in the middle -> MLP head; an in-place ReLU overwrites the conv's output."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3))
        self.spp = SpatialPyramidPool([2, 1], rule="adaptive")
        self.head = nn.Sequential(nn.Linear(8 * 5, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.head(self.spp(self.features(x)))


def make_net() -> Net:
    torch.manual_seed(0)
    return Net().eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return export_modes(make_net(), torch.randn(1, 3, 16, 16), tmp_path_factory.mktemp("localize"))


def _x(shape=(1, 3, 19, 23)):
    return np.random.default_rng(1).standard_normal(shape, dtype=np.float32)


def _leaf_paths(model: nn.Module) -> list[str]:
    return [p for p, m in model.named_modules() if p and not list(m.children())]


def test_untampered_file_names_no_module(files):
    model = make_net()
    for path in files.values():
        result = localize(model, path, _x())
        assert result.first is None
        assert "no module's output differs" in result.describe()
        assert set(_leaf_paths(model)) <= {r.module for r in result.rows}  # every leaf compared, SPP included


@pytest.mark.parametrize("impl", ["standard", "plugin"])
@pytest.mark.parametrize("module", ["features.2", "head.0"])  # before and after the SPP layer
def test_tampered_weight_is_named(files, tmp_path, impl, module):
    model = make_net()
    bad = tmp_path / "bad.onnx"
    _tamper_weight(files[impl], bad, module)
    result = localize(model, bad, _x())
    first = result.first
    assert first is not None and first.module == module
    assert first.kind == type(model.get_submodule(module)).__name__
    assert first.comparison.max_abs > 0.01
    order = [r.module for r in result.rows]
    assert all(r.comparison.passed for r in result.rows[:order.index(module)])  # everything before it agrees
    assert f"first differing module {module!r}" in result.describe()


def test_tampered_node_is_named(files, tmp_path):
    m = onnx.load(files["standard"])
    (relu,) = _scoped_nodes(m, "features.1")
    relu.op_type = "Abs"  # one node changed: negative activations come through
    bad = tmp_path / "bad.onnx"
    onnx.save(m, bad)
    first = localize(make_net(), bad, _x()).first
    assert first.module == "features.1" and first.ops == ["Abs"]


def test_tampered_spp_lowering_names_the_spp_layer(files, tmp_path):
    m = onnx.load(files["standard"])
    reduce_max = [n for n in m.graph.node if n.op_type == "ReduceMax" and not n.metadata_props]
    assert reduce_max  # the lowering's nodes carry no scopes of their own
    for n in reduce_max:
        n.op_type = "ReduceMin"
    bad = tmp_path / "bad.onnx"
    onnx.save(m, bad)
    result = localize(make_net(), bad, _x())
    assert result.first.module == "spp" and result.first.kind == "SpatialPyramidPool"
    assert "ReduceMin" in result.first.ops and "Gather" in result.first.ops  # the lowering's ops, attributed to it
    assert [r.module for r in result.rows].index("spp") > [r.module for r in result.rows].index("features.2")


def test_file_without_scopes_is_one_line(files, tmp_path):
    m = onnx.load(files["standard"])
    for n in m.graph.node:
        del n.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, bare)
    with pytest.raises(UserError) as e:
        localize(make_net(), bare, _x())
    assert e.value.option == "onnx" and "no PyTorch module scopes" in str(e.value)


class Sneaky(nn.Module):
    """Adds 1 while being exported: the file differs from the model here and nowhere else."""

    def forward(self, x):
        return x + 1 if torch.compiler.is_exporting() else x


class SneakyNet(Net):
    def __init__(self) -> None:
        super().__init__()
        self.sneaky = Sneaky()

    def forward(self, x):
        return self.head(self.spp(self.sneaky(self.features(x))))


def test_export_parity_failure_names_the_module(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    with pytest.raises(ParityError) as e:
        # dynamo only: the TorchScript route traces without is_exporting() and would pass
        export_onnx(SneakyNet().eval(), torch.randn(1, 3, 16, 16), path, routes=("dynamo",))
    assert "first differing module 'sneaky'" in str(e.value) and "file not written" in str(e.value)
    assert not path.exists()


def test_validate_localize_cli(files, tmp_path, cli):
    bad = tmp_path / "bad.onnx"
    _tamper_weight(files["standard"], bad, "features.2")
    report = tmp_path / "r.json"
    code, out, err = cli("validate", "--model", HERE, "--onnx", bad, "--sizes", "20x24", "--localize",
                         "--json", report)
    assert code == 1, err
    assert "first differing module 'features.2' (Conv2d)" in out
    assert json.loads(report.read_text())["localize"]["first"] == "features.2"
    code, out, err = cli("validate", "--model", HERE, "--onnx", files["standard"], "--sizes", "20x24", "--localize")
    assert code == 0, err
    assert "no module's output differs" in out
