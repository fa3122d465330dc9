"""``localize`` with TensorRT: a debug engine built from the ONNX file through the Polygraphy build
chain with the modules' tensors marked as network outputs, run, and compared module by module.

No TensorRT here: the fake ``tensorrt`` (tests/support/fake_tensorrt.py) parses and marks, its
builder serializes the parsed graph with the network's marked outputs, and ONNX Runtime runs that
in place of the engine. So what the engine returns is exactly what was marked in the network."""

import json
from pathlib import Path
from typing import ClassVar

import fake_tensorrt
import numpy as np
import onnx
import pytest
import torch
from tamper import tamper_weight
from torch import nn

from spp_deploy import SpatialPyramidPool, export_onnx
from spp_deploy.runtime.localize import localize
from spp_deploy.runtime.ort_runner import OrtRunner

pytest.importorskip("polygraphy")

HERE = f"{Path(__file__).resolve()}:make_model"


class PoolNet(nn.Module):
    """conv -> relu -> SPP (in the middle) -> linear -> tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.act = nn.ReLU()
        self.pool = SpatialPyramidPool([3, 1], rule="adaptive")
        self.fc = nn.Linear(6 * 10, 4)
        self.out = nn.Tanh()

    def forward(self, x):
        return self.out(self.fc(self.pool(self.act(self.conv(x)))))


def make_model() -> PoolNet:
    torch.manual_seed(3)
    return PoolNet().eval()


class OrtEngine(OrtRunner):
    """The engine file (the fake builder's serialized network: ONNX) run by ONNX Runtime."""

    built: ClassVar[list] = []  # the engines' graphs, in build order

    def __init__(self, engine_path, plugin=None, profile_index=0, trt=None):
        path = Path(engine_path)
        assert Path(f"{path}.json").is_file()  # our build wrote the engine's metadata
        onnx_copy = path.with_suffix(".as.onnx")
        onnx_copy.write_bytes(path.read_bytes())
        OrtEngine.built.append(onnx.load(onnx_copy))
        self.profiles = json.loads(Path(f"{path}.json").read_text())["profiles"][0]
        super().__init__(onnx_copy, "cpu")
        self.name = "trt"

    def profile(self, name):
        lo, _, hi = self.profiles[name]
        return tuple(lo), tuple(hi)

    def input_specs(self):  # numpy dtypes, as TensorRT's runner gives them
        return {n: (np.dtype(np.float32), dims) for n, (_, dims) in super().input_specs().items()}


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    from spp_deploy.runtime import backends
    from spp_deploy.runtime.trt import build, common, runner

    trt = fake_tensorrt.make("10.16.0")

    def serialize(builder, network, config):  # the parsed graph, its outputs those marked in the network
        g = trt.rec.parsed.graph
        types = {vi.name: vi.type.tensor_type.elem_type
                 for vi in onnx.shape_inference.infer_shapes(trt.rec.parsed).graph.value_info}
        types.update({o.name: o.type.tensor_type.elem_type for o in g.output})
        marked = [network.get_output(i).name for i in range(network.num_outputs)]
        del g.output[:]
        g.output.extend(onnx.helper.make_tensor_value_info(n, types[n], None) for n in marked)
        return trt.rec.parsed.SerializeToString()

    trt.Builder.build_serialized_network = serialize
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    for mod in (build, common):
        monkeypatch.setattr(mod, "import_tensorrt", lambda what="": trt)
    monkeypatch.setattr(runner, "TrtRunner", OrtEngine)
    real = backends.unavailable_reason
    monkeypatch.setattr(backends, "unavailable_reason", lambda b: None if b == "trt" else real(b))
    OrtEngine.built = []
    return trt


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("loctrt") / "m.onnx"
    export_onnx(make_model(), torch.randn(1, 3, 14, 14), path, check_parity=False)
    return path


def _x():
    return np.random.default_rng(5).standard_normal((1, 3, 17, 21), dtype=np.float32)


def _tampered(src: Path, dst: Path, module: str) -> Path:
    """``module``'s weight changed in one element; for the SPP layer, its lowering's max a min."""
    if module != "pool":
        tamper_weight(src, dst, module)
        return dst
    m = onnx.load(src)
    unscoped = [n for n in m.graph.node if n.op_type == "ReduceMax" and not n.metadata_props]
    assert unscoped  # the lowering's nodes: no scopes of their own, they count as the SPP layer's
    for n in unscoped:
        n.op_type = "ReduceMin"
    onnx.save(m, dst)
    return dst


def test_untampered_engine_names_no_module(fake_trt, onnx_file, tmp_path):
    model = make_model()
    result = localize(model, onnx_file, _x(), backend="trt")
    assert result.first is None and result.backend == "trt"
    leaves = {p for p, m in model.named_modules() if p and not list(m.children())}
    assert leaves <= {r.module for r in result.rows}
    (engine,) = OrtEngine.built
    outs = [o.name for o in engine.graph.output]
    file_outs = [o.name for o in onnx.load(onnx_file).graph.output]
    assert outs[:len(file_outs)] == file_outs  # the file's outputs stay first
    assert {r.tensor for r in result.rows} <= set(outs) and len(outs) > len(file_outs)
    shape = (1, 3, 17, 21)
    assert fake_trt.rec.profiles == [("input", shape, shape, shape)]  # this input's shape only
    assert not (tmp_path / "engines").exists()  # a debug engine is never cached


@pytest.mark.parametrize("module", ["conv", "pool", "fc"])  # before, at and after the SPP layer
def test_tampered_engine_names_the_module(fake_trt, onnx_file, tmp_path, module):
    model = make_model()
    result = localize(model, _tampered(onnx_file, tmp_path / "bad.onnx", module), _x(), backend="trt")
    assert result.first is not None and result.first.module == module
    assert result.first.kind == type(model.get_submodule(module)).__name__
    order = [r.module for r in result.rows]
    assert all(r.comparison.passed for r in result.rows[:order.index(module)])
    assert f"localize (trt, input 1x3x17x21): first differing module {module!r}" in result.describe()


def test_debug_engine_takes_the_engines_precision(fake_trt, onnx_file, tmp_path):
    from spp_deploy.runtime.trt.build import build_engine

    engine = tmp_path / "fp16.engine"
    build_engine(onnx_file, engine, opt_shape="input:1x3x17x21", fp16=True, use_cache=False)
    fake_trt.rec.flags_set.clear()
    localize(make_model(), onnx_file, _x(), backend="trt", engine=engine, atol=1.0)
    assert fake_trt.BuilderFlag.FP16 in fake_trt.rec.flags_set


def test_validate_localize_on_an_engine(fake_trt, onnx_file, tmp_path, cli):
    from spp_deploy.runtime.trt.build import build_engine

    bad = _tampered(onnx_file, tmp_path / "bad.onnx", "fc")
    engine = tmp_path / "bad.engine"
    build_engine(bad, engine, opt_shape="input:1x3x20x24", use_cache=False)
    report = tmp_path / "r.json"
    code, out, err = cli("validate", "--model", HERE, "--onnx", bad, "--engine", engine, "--backends", "trt",
                         "--sizes", "20x24", "--localize", "--json", report)
    assert code == 1, err
    assert "localize (trt, input 1x3x20x24): first differing module 'fc' (Linear)" in out
    assert json.loads(report.read_text())["localize"]["backend"] == "trt"
    code, out, err = cli("validate", "--model", HERE, "--engine", engine, "--backends", "trt", "--sizes", "20x24",
                         "--localize")
    assert code == 1 and "give it with --onnx" in out
