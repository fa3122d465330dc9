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
from spp_deploy.util.errors import UserError
from spp_deploy.ops.pyramid import SpatialPyramidPool
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


# ---- item 5: R = 0 windows -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def window_file(tmp_path_factory):
    from spp_deploy.deploy import export_window_model
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("win") / "head.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=3, stride=16.0, spp_impl="plugin",
                        check_parity=False)
    return path


def test_profile_min_shape_may_hold_zero_windows(window_file, tmp_path, engine_cache):
    """detect sends R = 0 for an image without boxes: a min shape of 0 windows is a legal profile."""
    m = onnx.load(window_file)
    lo, hi = "features:1x3x2x2,windows:0x5", "features:2x3x16x16,windows:64x5"
    prof = profiles.make_profile(m, lo, "features:1x3x8x8,windows:16x5", hi)
    assert prof.shapes["windows"][0] == (0, 5)
    for bad in (dict(opt_s="features:1x3x8x8,windows:0x5"), dict(max_s="features:2x3x16x16,windows:0x5")):
        spec = {"min_s": lo, "opt_s": "features:1x3x8x8,windows:16x5", "max_s": hi, **bad}
        with pytest.raises(UserError, match="must be >= 1"):
            profiles.make_profile(m, **spec)
    w_min, _, w_max = prof.shapes["windows"]
    assert profiles.shape_outside_profile("windows", (0, 5), w_min, w_max) is None
    trt = fake_tensorrt.make()
    build.build_engine(window_file, tmp_path / "w.engine", plugin=engine_cache, trt=trt, min_shape=lo,
                       opt_shape="features:1x3x8x8,windows:16x5", max_shape=hi)
    assert ("windows", (0, 5), (16, 5), (64, 5)) in trt.rec.profiles


def test_empty_tensors_are_bound_to_a_real_buffer(tmp_path):
    """enqueueV3 refuses a null address, and an empty torch tensor's data_ptr() is 0."""
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "m.engine"
    eng.write_bytes(b"engine")
    runner = TrtRunner(eng)
    empty = torch.empty(0, 5)
    assert empty.data_ptr() == 0
    a, b = runner.tensor_address(empty), runner.tensor_address(torch.empty(0, 3, 2))
    assert a != 0 and a == b  # one dummy buffer, reused
    full = torch.ones(2, 5)
    assert runner.tensor_address(full) == full.data_ptr()


# ---- item 6 and part 3: trtexec / Polygraphy take the file as it is ------------------------------

def test_plugin_build_prints_dynamic_plugins(cli, monkeypatch, tmp_path):
    from spp_deploy.native import cmake

    seen = {}

    def fake_build(build_dir, **kw):
        seen.update(kw)
        return tmp_path / "libspp_plugin.so"

    monkeypatch.setattr(cmake, "build_plugins", fake_build)
    code, out, _ = cli("plugin", "build", "--build-dir", tmp_path)
    lib = tmp_path / "libspp_plugin.so"
    assert code == 0 and f"--dynamicPlugins={lib}" in out and "--staticPlugins" not in out
    assert "--strip-functions" in out and f"--plugins {lib}" not in out and seen["static_registration"] is False
    code, out, _ = cli("plugin", "build", "--build-dir", tmp_path, "--static-registration")
    assert code == 0 and seen["static_registration"] is True and f"polygraphy run m.onnx --trt --plugins {lib}" in out


def test_export_strip_functions_writes_the_parser_ready_file(cli, tmp_path, engine_cache):
    out = tmp_path / "seed.onnx"
    code, text, err = cli("export", "--model", "zoo:sppnet-pytorch", "--spp-impl", "plugin", "--strip-functions",
                          "--sizes", "16x16,24x20", "-o", out)
    assert code == 0, err
    m = onnx.load(out)
    assert plugin_nodes(m) and not m.functions and "body/bodies stripped" in text
    trt = fake_tensorrt.make("10.14.0")  # a parser that would inline any body it found
    build.build_engine(out, tmp_path / "m.engine", plugin=engine_cache, trt=trt,
                       min_shape="input:1x512x16x16", opt_shape="input:1x512x16x16", max_shape="input:2x512x32x32")
    assert sum(la.type == trt.LayerType.PLUGIN_V3 for la in _layers(trt)) == len(plugin_nodes(m))
    bad = tmp_path / "standard.onnx"
    code, _, err = cli("export", "--model", "zoo:sppnet-pytorch", "--strip-functions", "--no-check", "-o", bad)
    assert code == 2 and err.count("\n") == 1 and "spp-deploy: error: --strip-functions needs --spp-impl plugin" in err
    assert not bad.exists()


# ---- item 8: the lint of SPP function bodies, per TensorRT version ------------------------------

def test_lint_warns_by_default_about_bodies_per_version(pair, tmp_path, cli):
    from spp_deploy.contract import strip_functions
    from spp_deploy.runtime.trt.lint import lint_tensorrt

    m = onnx.load(pair["plugin"])
    body = [f for f in lint_tensorrt(m) if f.op == "local function"]
    assert len(body) == 1 and body[0].severity == "warning"
    msg = body[0].message
    assert "< 10.7 inlines" in msg and "10.7-10.14 use the plugin if it is registered" in msg
    assert ">= 10.15 use the plugin only for nodes with plugin_namespace or" in msg and "lack it" not in msg
    code, out, _ = cli("check", "--target", "tensorrt", pair["plugin"])  # no -v: warnings are shown
    assert code == 0 and "< 10.7 inlines" in out
    assert not [f for f in lint_tensorrt(strip_functions(m)) if f.op == "local function"]
    node = plugin_nodes(m)[0]
    keep = [a for a in node.attribute if a.name != "plugin_namespace"]
    del node.attribute[:]
    node.attribute.extend(keep)
    found = lint_tensorrt(m)
    errs = [f for f in found if f.severity == "error"]
    assert [f.node for f in errs] == [node.name] and "lacks the plugin_namespace attribute" in errs[0].message
    assert "(1 node(s) lack it)" in [f for f in found if f.op == "local function"][0].message


def test_lint_refuses_fp16_windows_for_the_window_plugin(window_file):
    """The window plugin takes FP32 windows only (review item 2): an FP16 windows input is an error."""
    from spp_deploy.runtime.trt.lint import lint_tensorrt

    m = onnx.load(window_file)
    node = plugin_nodes(m)[0]
    assert not [f for f in lint_tensorrt(m) if f.severity == "error"]
    win = next(vi for vi in m.graph.input if vi.name == node.input[1])
    win.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    errs = [f for f in lint_tensorrt(m) if f.severity == "error"]
    assert [f.node for f in errs] == [node.name] and "FP32 windows only" in errs[0].message
