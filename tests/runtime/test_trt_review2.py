"""What the second review of the TensorRT path found (issue 22, part 2), against the fake
``tensorrt`` module (tests/support/fake_tensorrt.py): the engine cache key knows how the engine
was built, the plugin-layer check runs on cache hits and counts only SPP plugin layers, fp16 edge
pinning follows the dataflow through the parser's helper layers, R = 0 windows, the printed
trtexec line, and the version-aware lint of SPP function bodies."""

import onnx
import pytest
import torch

import fake_tensorrt

import spp_deploy
from spp_deploy import export_onnx
from spp_deploy.contract import EDGE_F32_MARK, plugin_nodes
from spp_deploy.errors import UserError
from spp_deploy.op import SpatialPyramidPool
from spp_deploy.runtime.trt import build, cache, plugin_mode, profiles

SHAPES = dict(min_shape="input:1x3x8x8", opt_shape="input:1x3x16x16", max_shape="input:2x3x32x32")


class Pair(torch.nn.Module):
    """Two SPP layers on one input (one `rounded`, whose edges are float32 math)."""

    def __init__(self):
        super().__init__()
        self.a = SpatialPyramidPool((2, 1), "max", "rounded", "bin_major")
        self.b = SpatialPyramidPool((3,), "avg", "ceil_pad", "channel_major")

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    paths = {m: d / f"{m}.onnx" for m in ("standard", "plugin")}
    for mode, path in paths.items():
        export_onnx(Pair(), torch.randn(1, 3, 12, 12), path, spp_impl=mode, check_parity=False, recognize=False)
    return paths


@pytest.fixture
def engine_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"\x7fELF")
    return lib


def _layers(trt):
    net = trt.rec.network
    return [net.get_layer(i) for i in range(net.num_layers)]


# ---- item 1: the cache key and cache hits ---------------------------------------------------------

def test_cache_key_includes_build_recipe_and_spp_deploy_version():
    prof = profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8))})
    args = (b"onnx", "10.16.0", "H100", "9.0", "fp16", [prof], None)
    here = cache.engine_cache_key(*args)
    assert here == cache.engine_cache_key(*args, recipe=cache.BUILD_RECIPE, spp_version=spp_deploy.__version__)
    others = {cache.engine_cache_key(*args, recipe=cache.BUILD_RECIPE - 1),
              cache.engine_cache_key(*args, spp_version=spp_deploy.__version__ + ".post1")}
    assert len(others) == 2 and here not in others


def test_engine_of_an_older_recipe_is_not_served(pair, tmp_path, engine_cache, monkeypatch):
    """An engine cached by an older builder (say, TF32 on or unpinned edges) is rebuilt, not copied."""
    monkeypatch.setattr(cache, "BUILD_RECIPE", cache.BUILD_RECIPE - 1)
    old = build.build_engine(pair["standard"], tmp_path / "old.engine", fp16=True, trt=fake_tensorrt.make(), **SHAPES)
    monkeypatch.undo()
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    trt = fake_tensorrt.make()
    new = build.build_engine(pair["standard"], tmp_path / "new.engine", fp16=True, trt=trt, **SHAPES)
    assert not old.cache_hit and not new.cache_hit and new.cache_key != old.cache_key
    assert trt.BuilderFlag.TF32 in trt.rec.flags_cleared  # really built again
    again = build.build_engine(pair["standard"], tmp_path / "again.engine", fp16=True, trt=fake_tensorrt.make(),
                               **SHAPES)
    assert again.cache_hit and again.cache_key == new.cache_key


def test_cache_hit_still_checks_the_plugin_layers(pair, tmp_path, engine_cache):
    """A cached engine is not served for a file whose SPP nodes the parser did not make plugin layers."""
    first = build.build_engine(pair["plugin"], tmp_path / "a.engine", plugin=engine_cache, trt=fake_tensorrt.make(),
                               **SHAPES)
    assert not first.cache_hit and (cache.cache_dir() / f"{first.cache_key}.engine").is_file()
    with pytest.raises(UserError, match="1 plugin layer.*for 2 SpatialPyramidPool node"):
        build.build_engine(pair["plugin"], tmp_path / "b.engine", plugin=engine_cache,
                           trt=fake_tensorrt.make(drop_plugin_layers=1), **SHAPES)
    assert not (tmp_path / "b.engine").exists()
    hit = build.build_engine(pair["plugin"], tmp_path / "c.engine", plugin=engine_cache, trt=fake_tensorrt.make(),
                             **SHAPES)
    assert hit.cache_hit and (tmp_path / "c.engine").read_bytes() == b"ENGINE"


# ---- item 4: only IPluginV3 layers named after an SPP node count --------------------------------

def test_foreign_plugin_layers_do_not_hide_a_missing_spp_layer(pair, tmp_path, engine_cache):
    """The parser's own plugins (ROIAlign_TRT) and users' plugins are not SPP layers."""
    nodes = plugin_nodes(onnx.load(pair["plugin"]))
    trt = fake_tensorrt.make(drop_plugin_layers=1, foreign_plugins=1)
    with pytest.raises(UserError) as ei:
        build.build_engine(pair["plugin"], tmp_path / "m.engine", plugin=engine_cache, trt=trt, **SHAPES)
    assert "1 plugin layer(s) for 2 SpatialPyramidPool node(s)" in str(ei.value) and nodes[0].name in str(ei.value)
    kinds = [la.type for la in _layers(trt)]
    assert kinds.count(trt.LayerType.PLUGIN_V3) == len(nodes)  # what the old count would have accepted
    ok = fake_tensorrt.make(foreign_plugins=3)
    build.build_engine(pair["plugin"], tmp_path / "n.engine", plugin=engine_cache, trt=ok, use_cache=False, **SHAPES)
    assert plugin_mode.count_plugin_layers(ok, ok.rec.network) == len(nodes) + 3
    assert plugin_mode.count_plugin_layers(ok, ok.rec.network, [n.name for n in nodes]) == len(nodes)


# ---- item 3: fp16 edge pinning by dataflow ---------------------------------------------------------

def test_weak_fp16_pins_the_parsers_broadcast_helpers(pair, tmp_path, engine_cache):
    """The `rounded` rule's S/n reaches the marked Mul/Add through ONNXTRT_Broadcast shuffles the
    parser names itself: those are pinned to fp32 too, and no ordinary layer off the edge path is."""
    trt = fake_tensorrt.make("10.16.0", helper_layers=True)
    build.build_engine(pair["standard"], tmp_path / "m.engine", fp16=True, trt=trt, **SHAPES)
    layers = _layers(trt)
    node_names = {n.name for n in onnx.load(pair["standard"]).graph.node}
    producer = {la.get_output(j).name: la for la in layers for j in range(la.num_outputs)}
    marked = {la.name for la in layers if EDGE_F32_MARK in la.name}
    pinned = {la.name for la in layers if la.precision == trt.float32}
    assert marked and marked <= pinned
    assert not (pinned - marked) & node_names  # only the parser's helpers besides the marked layers
    fed = [producer[t.name] for la in layers if la.name in marked for t in la._ins
           if t.dtype == "float32" and t.name in producer and producer[t.name].name not in marked]
    broadcasts = [la for la in fed if la.name.startswith("ONNXTRT_Broadcast")]
    assert broadcasts and all(la.name in pinned and la.output_types == {0: "float32"} for la in fed)
    from_edges = [b for b in broadcasts if producer.get(b._ins[0].name) and producer[b._ins[0].name].name in marked]
    assert from_edges  # S/n (a marked Div's output) broadcast into a marked Mul/Add
    assert trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in trt.rec.flags_set
    fp32 = fake_tensorrt.make("10.16.0", helper_layers=True)
    build.build_engine(pair["standard"], tmp_path / "m32.engine", trt=fp32, use_cache=False, **SHAPES)
    assert not any(la.precision for la in _layers(fp32))
