"""The engine builder against a fake ``tensorrt`` module with the real 10.x / 11.x enums: typing and
precision flags, TF32, SPP bodies stripped and plugin layers counted, fp32 pinning, one logger,
parser errors; cache hits that still check the plugin layers, foreign plugin layers, pinning through
the parser's helper layers, R = 0 windows in a profile."""

import onnx
import pytest

import fake_tensorrt
from spp_deploy.contract import EDGE_F32_MARK, plugin_nodes
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import build, cache, metadata, plugin_mode, profiles
from trt_cases import PROF, PROF4, SHAPES, WPROF, fake_trt, layers as _layers


def _fp16_copy(src, dst):
    """The file with fp16 graph I/O (all the builder looks at to decide typing)."""
    m = onnx.load(src)
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    onnx.save(m, dst)
    return dst


def test_fake_trt10_fp16_uses_builder_flag_and_no_tf32(files, tmp_path, no_cache):
    trt = fake_trt("10.16.0")
    res = build.build_engine(files["standard"], tmp_path / "m.engine", fp16=True, trt=trt, **PROF)
    assert (tmp_path / "m.engine").read_bytes() == b"ENGINE" and not res.cache_hit
    assert trt.rec.flags_set == [trt.BuilderFlag.FP16] and trt.rec.flags_cleared == [trt.BuilderFlag.TF32]
    assert trt.rec.network_flags == 0
    assert trt.rec.profiles == [("input", (1, 512, 8, 8), (1, 512, 16, 16), (2, 512, 32, 32))]
    meta = metadata.EngineMeta.load(tmp_path / "m.engine")
    assert meta.precision == "fp16" and meta.tensorrt == "10.16.0"
    again = build.build_engine(files["standard"], tmp_path / "m2.engine", fp16=True, trt=fake_trt("10.16.0"), **PROF)
    assert again.cache_hit and again.cache_key == res.cache_key
    other = build.build_engine(files["standard"], tmp_path / "m3.engine", fp16=False, trt=fake_trt("10.16.0"), **PROF)
    assert not other.cache_hit and other.cache_key != res.cache_key


@pytest.mark.parametrize("version", ["10.16.0", "11.1.0"])
def test_fake_fp16_file_is_strongly_typed_without_fp16_flag(files, tmp_path, no_cache, version):
    """An fp16 file is built strongly typed (its types are the plan); --fp16 must not set BuilderFlag.FP16 then."""
    half = _fp16_copy(files["standard"], tmp_path / "half.onnx")
    trt = fake_trt(version)
    res = build.build_engine(half, tmp_path / "m.engine", fp16=True, trt=trt, **PROF)
    st = trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert trt.rec.network_flags == 1 << int(st) and trt.rec.network.get_flag(st)
    assert not any(f.name == "FP16" for f in trt.rec.flags_set)
    assert trt.rec.flags_cleared == [trt.BuilderFlag.TF32]
    assert res.meta.precision == "fp16" and "--fp16 ignored" in res.note


def test_fake_trt11_is_strongly_typed_and_clears_tf32(files, tmp_path, no_cache):
    """TensorRT 11 keeps BuilderFlag.TF32 (on by default): it is cleared there too."""
    with pytest.raises(UserError, match="fp16 needs an fp16 ONNX"):
        build.build_engine(files["standard"], tmp_path / "m.engine", fp16=True, trt=fake_trt("11.1.0"), **PROF)
    trt = fake_trt("11.1.0")
    build.build_engine(files["standard"], tmp_path / "m.engine", trt=trt, **PROF)
    assert trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED == 0 and trt.rec.network_flags == 1 << 0
    assert trt.rec.flags_set == [] and trt.rec.flags_cleared == [trt.BuilderFlag.TF32]


@pytest.mark.parametrize("version", ["10.14.0", "10.16.0", "11.1.0"])
def test_fake_plugin_mode_strips_bodies_and_counts_plugin_layers(two_spp, tmp_path, no_cache, fresh_plugins, version):
    """With or without the parser's override flag (the parser may inline a body it finds), the SPP
    bodies are stripped, the flag is not set, and every SPP node (two configurations) becomes its
    own plugin layer."""
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    trt = fake_trt(version)
    assert hasattr(trt.OnnxParserFlag, "ENABLE_PLUGIN_OVERRIDE") == (version != "10.14.0")
    res = build.build_engine(two_spp["plugin"], tmp_path / "m.engine", plugin=lib, trt=trt, **PROF4)
    assert trt.rec.loaded == [str(lib.resolve())] and res.meta.plugin_mode and res.meta.plugin == str(lib.resolve())
    assert trt.rec.parser_flags == [] and trt.rec.parser_flag_mask == 0  # set_flag or Polygraphy's flags mask
    assert onnx.load(two_spp["plugin"]).functions and not trt.rec.parsed.functions
    layers = [trt.rec.network.get_layer(i) for i in range(trt.rec.network.num_layers)]
    plugins = [layer.name for layer in layers if layer.type == trt.LayerType.PLUGIN_V3]
    assert sorted(plugins) == sorted(n.name for n in plugin_nodes(trt.rec.parsed)) and len(plugins) == 2


def test_fake_plugin_mode_never_falls_back_silently(two_spp, tmp_path, no_cache, fresh_plugins):
    """An unregistered plugin is a clear error (not the function body), and a parse that lost a
    plugin layer is refused."""
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    with pytest.raises(UserError, match="cannot load plugin library"):
        build.build_engine(two_spp["plugin"], tmp_path / "m.engine", plugin=lib, trt=fake_trt(registered=False), **PROF4)
    with pytest.raises(UserError, match="1 plugin layer.*for 2 SpatialPyramidPool node"):
        build.build_engine(two_spp["plugin"], tmp_path / "m.engine", plugin=lib, trt=fake_trt(drop_plugin_layers=1),
                        **PROF4)
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize("version", ["10.16.0", "11.1.0"])
def test_fake_window_plugin_mode_becomes_a_plugin_layer(window_plugin_file, tmp_path, no_cache, fresh_plugins,
                                                         monkeypatch, version):
    """The window node's body is stripped like the SPP bodies, and the node becomes a plugin layer
    (the fake registry gets both creators from load_library); a lost layer is refused."""
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    trt = fake_trt(version)
    res = build.build_engine(window_plugin_file, tmp_path / "m.engine", plugin=lib, trt=trt, **WPROF)
    assert res.meta.plugin_mode and onnx.load(window_plugin_file).functions and not trt.rec.parsed.functions
    layers = [trt.rec.network.get_layer(i) for i in range(trt.rec.network.num_layers)]
    assert [layer.type for layer in layers] == [trt.LayerType.PLUGIN_V3]
    assert [n.op_type for n in plugin_nodes(trt.rec.parsed)] == ["WindowSpatialPyramidPool"]
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "other-cache"))  # no cache hit: parse again
    with pytest.raises(UserError, match="0 plugin layer.*for 1 WindowSpatialPyramidPool node"):
        build.build_engine(window_plugin_file, tmp_path / "n.engine", plugin=lib,
                        trt=fake_trt(version, drop_plugin_layers=1), **WPROF)


def test_fake_weak_fp16_pins_rounded_edges_to_fp32(two_spp, tmp_path, no_cache):
    """TensorRT 10 weak typing with --fp16 keeps the `rounded` float32 bin-edge layers in fp32."""
    from spp_deploy.contract import EDGE_F32_MARK

    marked = [n.name for n in onnx.load(two_spp["standard"]).graph.node if EDGE_F32_MARK in n.name]
    assert marked and {n.split("/")[-1].split("_")[0] for n in marked} >= {"Cast", "Div", "Mul", "Add", "Round"}
    trt = fake_trt("10.16.0")
    build.build_engine(two_spp["standard"], tmp_path / "m.engine", fp16=True, trt=trt, **PROF4)
    layers = [trt.rec.network.get_layer(i) for i in range(trt.rec.network.num_layers)]
    pinned = [layer for layer in layers if layer.precision == trt.float32]
    assert sorted(layer.name for layer in pinned) == sorted(marked)
    assert all(layer.output_types == {0: "float32"} for layer in pinned if layer.get_output(0).dtype == "float32")
    assert trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in trt.rec.flags_set
    fp32 = fake_trt("10.16.0")
    build.build_engine(two_spp["standard"], tmp_path / "m32.engine", trt=fp32, **PROF4)
    assert not any(fp32.rec.network.get_layer(i).precision for i in range(fp32.rec.network.num_layers))
    assert fp32.rec.flags_set == []


def test_fake_builds_share_one_logger(files, tmp_path, no_cache):
    """TensorRT keeps the logger pointer: every builder gets one process-wide logger
    (Polygraphy's, which it also hands to init_libnvinfer_plugins); ours is one per module too."""
    from polygraphy.backend.trt.util import get_trt_logger

    from spp_deploy.runtime.trt.common import shared_logger

    trt = fake_trt()
    build.build_engine(files["standard"], tmp_path / "a.engine", trt=trt, use_cache=False, **PROF)
    build.build_engine(files["standard"], tmp_path / "b.engine", trt=trt, use_cache=False, **PROF)
    assert len(trt.rec.loggers) == 2 and trt.rec.loggers[0] is trt.rec.loggers[1] is get_trt_logger()
    assert trt.rec.plugin_inits == 2 and shared_logger(trt) is shared_logger(trt)


def test_fake_parser_errors_name_node_op_reason(files, tmp_path, no_cache):
    with pytest.raises(UserError) as ei:
        build.build_engine(files["standard"], tmp_path / "m.engine", trt=fake_trt(parse_ok=False), **PROF)
    msg = str(ei.value)
    assert msg.startswith("TensorRT cannot parse") and "\n" not in msg and "Could not parse ONNX" not in msg
    for part in ("node_spatial_pyramid_pool", "operator: SpatialPyramidPool", "Plugin not found", ": second"):
        assert part in msg, (part, msg)  # each of the parser's errors, as TensorRT words them (through Polygraphy)
    assert not (tmp_path / "m.engine").exists()


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
