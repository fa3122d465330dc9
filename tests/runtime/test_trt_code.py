"""TensorRT code paths: the pure helpers, the builder against a fake ``tensorrt`` module with the
real 10.x / 11.x enums (typing and precision flags, TF32, SPP bodies stripped and plugin layers
counted, plugin registration, fp32 pinning, parser errors), one-line errors for bad input before TensorRT is
needed, and real execution tests that skip with the install hint when TensorRT is absent."""

import importlib.util

import numpy as np
import onnx
import pytest
import torch

import fake_tensorrt

from spp_deploy.sources import zoo
from spp_deploy.ops.pyramid import SpatialPyramidPool
from spp_deploy.util.errors import UserError
from spp_deploy import export_onnx
from spp_deploy.contract import plugin_nodes
from spp_deploy.runtime.trt import build, cache, metadata, plugin_mode, precision, profiles
from spp_deploy.runtime.trt.common import INSTALL_HINT, TensorRTMissing, import_tensorrt

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
NAME = "sppnet-pytorch"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("trt")
    e = zoo.get_entry(NAME)
    out = {}
    for mode in ("standard", "plugin"):
        out[mode] = d / f"{mode}.onnx"
        export_onnx(zoo.create(NAME), torch.randn(*e.input_shape), out[mode], spp_impl=mode, check_parity=False)
    return out



# ---- shapes and profiles -------------------------------------------------------------------------

def test_parse_shape_spec_trtexec_syntax():
    assert profiles.parse_shape_spec("input:1x3x64x64") == {"input": (1, 3, 64, 64)}
    assert profiles.parse_shape_spec("a:1x2, b:3") == {"a": (1, 2), "b": (3,)}
    assert profiles.parse_shape_spec("ns:in:2x4") == {"ns:in": (2, 4)}
    for bad, msg in [("1x3x64x64", "expected name:dims"), ("x:1x0", ">= 1"), ("x:1xax3", "bad dims"),
                     ("x:1,x:2", "given twice"), ("", "empty")]:
        with pytest.raises(UserError, match=msg):
            profiles.parse_shape_spec(bad)


def test_make_profile_checks_against_the_model(files):
    m = onnx.load(files["standard"])
    p = profiles.make_profile(m, "input:1x512x8x8", "input:2x512x16x16", "input:4x512x64x64")
    assert p.shapes["input"] == ((1, 512, 8, 8), (2, 512, 16, 16), (4, 512, 64, 64))
    assert profiles.make_profile(m, None, "input:1x512x16x16", None).shapes["input"][0] == (1, 512, 16, 16)
    cases = [
        (("x:1x512x8x8", "x:1x512x8x8", "x:1x512x8x8"), "names input 'x'"),
        (("input:1x512x8", "input:1x512x8", "input:1x512x8"), "has rank 3"),
        (("input:1x3x8x8", "input:1x3x8x8", "input:1x3x8x8"), "dim 1 is fixed to 512"),
        (("input:1x512x64x8", "input:1x512x16x16", "input:1x512x32x32"), "min <= opt <= max"),
        ((None, None, None), "dynamic dims"),
        (("input:1x512x8x8", None, None), "both a min and a max shape"),
    ]
    for (mn, op, mx), msg in cases:
        with pytest.raises(UserError, match=msg):
            profiles.make_profile(m, mn, op, mx)


def test_shape_outside_profile_message():
    assert profiles.shape_outside_profile("input", (1, 3, 64, 64), (1, 3, 32, 32), (4, 3, 128, 128)) is None
    why = profiles.shape_outside_profile("input", (1, 3, 300, 64), (1, 3, 32, 32), (4, 3, 128, 128))
    assert "outside the engine's profile [1x3x32x32 .. 4x3x128x128] (dim 2: 300 not in 32..128)" in why
    assert "rank 3" in profiles.shape_outside_profile("input", (3, 64, 64), (1, 3, 32, 32), (4, 3, 128, 128))


# ---- cache keys and metadata ---------------------------------------------------------------------

def test_engine_cache_key_covers_every_ingredient():
    prof = profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))})
    base = dict(onnx_bytes=b"model", trt_version="10.16.0", gpu_name="H100", compute_capability="9.0",
                precision="fp32", profiles=[prof], plugin_sha256=None)
    k = cache.engine_cache_key(**base)
    assert k == cache.engine_cache_key(**base) and len(k) == 64
    variants = [
        {"onnx_bytes": b"model2"}, {"trt_version": "11.1.0"}, {"gpu_name": "A100"}, {"compute_capability": "8.0"},
        {"precision": "fp16"}, {"plugin_sha256": "ab" * 32},
        {"profiles": [profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 33, 32))})]},
    ]
    keys = {cache.engine_cache_key(**{**base, **v}) for v in variants}
    assert len(keys) == len(variants) and k not in keys


def test_engine_metadata_mismatch(tmp_path):
    meta = metadata.EngineMeta("10.16.0", "NVIDIA H100", "9.0", "fp32", [], "00")
    eng = tmp_path / "m.engine"
    meta.save(eng)
    back = metadata.EngineMeta.load(eng)
    assert back.tensorrt == "10.16.0" and back.compute_capability == "9.0"
    assert metadata.engine_mismatch(back, "10.16.0", {"name": "NVIDIA H100", "compute_capability": "9.0"}) is None
    assert "built with TensorRT 10.16.0, this is TensorRT 11.1.0" in metadata.engine_mismatch(back, "11.1.0", {"compute_capability": "9.0"})
    assert "compute capability 9.0" in metadata.engine_mismatch(back, "10.16.0", {"name": "A10", "compute_capability": "8.6"})


# ---- bad input before TensorRT is needed ---------------------------------------------------------

def test_build_bad_inputs_are_one_line(files, tmp_path, cli):
    corrupt = tmp_path / "c.onnx"
    corrupt.write_bytes(b"\x00garbage\xff" * 5)
    prof = ["--min-shape", "input:1x512x8x8", "--opt-shape", "input:1x512x16x16", "--max-shape", "input:2x512x32x32"]
    cases = [
        ([corrupt, *prof], "not a valid ONNX file"),
        ([tmp_path / "none.onnx", *prof], "ONNX file not found"),
        ([files["plugin"], *prof], "plugin-mode file"),
        ([files["standard"], "--min-shape", "input:1x512x64x64", "--opt-shape", "input:1x512x16x16",
          "--max-shape", "input:2x512x32x32"], "min <= opt <= max"),
        ([files["standard"], "--opt-shape", "image:1x512x16x16"], "names input 'image'"),
        ([files["standard"], *prof, "--plugin", tmp_path / "nope.so"], "plugin library not found"),
    ]
    for argv, msg in cases:
        code, _, err = cli("build", *argv, "-o", tmp_path / "m.engine")
        assert code == 2 and msg in err and err.count("\n") == 1, (msg, err)
    assert not (tmp_path / "m.engine").exists()


def test_plugin_mode_missing_library_respects_env(files, monkeypatch, tmp_path):
    monkeypatch.delenv("SPP_DEPLOY_PLUGIN_LIB", raising=False)
    monkeypatch.chdir(tmp_path)
    m = onnx.load(files["plugin"])
    with pytest.raises(UserError, match="no plugin library was found"):
        plugin_mode.resolve_plugin(m, None)
    assert plugin_mode.resolve_plugin(onnx.load(files["standard"]), None) is None
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    monkeypatch.setenv("SPP_DEPLOY_PLUGIN_LIB", str(lib))  # found through spp_deploy.native.library
    assert plugin_mode.resolve_plugin(m, None) == lib


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed: the missing-TensorRT message cannot appear")
def test_tensorrt_commands_say_it_is_missing(files, tmp_path, cli):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 512, 16, 16), np.float32))
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"corrupt engine")
    for argv in (["build", files["standard"], "--opt-shape", "input:1x512x16x16", "-o", tmp_path / "e.engine"],
                 ["run", "--engine", eng, "-i", x],
                 ["validate", "--model", f"zoo:{NAME}", "--engine", eng, "--sizes", "16x16"]):
        code, _, err = cli(*argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "TensorRT is not installed" in err and 'pip install -c constraints.txt -e ".[tensorrt]"' in err
    with pytest.raises(TensorRTMissing):
        import_tensorrt()


# ---- the builder against a fake tensorrt module (real 10.x / 11.x enum values) --------------------

def fake_trt(version="10.16.0", **kw):
    return fake_tensorrt.make(version, **kw)


class TwoSpp(torch.nn.Module):
    """Two SPP configurations in one model (one `rounded`): two plugin nodes, two function bodies."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 1)
        self.a = SpatialPyramidPool((2, 1), "max", "rounded", "channel_major")
        self.b = SpatialPyramidPool((3,), "max", "adaptive", "bin_major")

    def forward(self, x):
        x = self.conv(x)
        return torch.cat([self.a(x), self.b(x)], 1)


@pytest.fixture(scope="module")
def two_spp(tmp_path_factory):
    d = tmp_path_factory.mktemp("two")
    out = {}
    for mode in ("standard", "plugin"):
        out[mode] = d / f"{mode}.onnx"
        export_onnx(TwoSpp(), torch.randn(1, 4, 16, 16), out[mode], spp_impl=mode, check_parity=False, recognize=False)
    return out


PROF = dict(min_shape="input:1x512x8x8", opt_shape="input:1x512x16x16", max_shape="input:2x512x32x32")
PROF4 = dict(min_shape="input:1x4x8x8", opt_shape="input:1x4x16x16", max_shape="input:2x4x32x32")


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fresh_plugins(monkeypatch):
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})


def _fp16_copy(src, dst):
    """The file with fp16 graph I/O (all the builder looks at to decide typing)."""
    m = onnx.load(src)
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    onnx.save(m, dst)
    return dst


def test_plan_precision_decides_from_typing():
    assert precision.plan_precision(10, True, False, True) == precision.PrecisionPlan(False, True, "fp16")
    assert precision.plan_precision(10, True, False, False) == precision.PrecisionPlan(False, False, "fp32")
    p = precision.plan_precision(10, True, True, True)  # fp16 file: strongly typed, so no FP16 flag
    assert p.strongly_typed and not p.fp16_flag and p.precision == "fp16" and "--fp16 ignored" in p.note
    assert precision.plan_precision(11, False, True, False) == precision.PrecisionPlan(True, False, "fp16")
    with pytest.raises(UserError, match="fp16 needs an fp16 ONNX"):
        precision.plan_precision(11, False, False, True)


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
    """Item 1: an fp16 file is built strongly typed; --fp16 must not set BuilderFlag.FP16 then."""
    half = _fp16_copy(files["standard"], tmp_path / "half.onnx")
    trt = fake_trt(version)
    res = build.build_engine(half, tmp_path / "m.engine", fp16=True, trt=trt, **PROF)
    st = trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert trt.rec.network_flags == 1 << int(st) and trt.rec.network.get_flag(st)
    assert not any(f.name == "FP16" for f in trt.rec.flags_set)
    assert trt.rec.flags_cleared == [trt.BuilderFlag.TF32]
    assert res.meta.precision == "fp16" and "--fp16 ignored" in res.note


def test_fake_trt11_is_strongly_typed_and_clears_tf32(files, tmp_path, no_cache):
    """Item 3: TensorRT 11 keeps BuilderFlag.TF32 (on by default): it is cleared there too."""
    with pytest.raises(UserError, match="fp16 needs an fp16 ONNX"):
        build.build_engine(files["standard"], tmp_path / "m.engine", fp16=True, trt=fake_trt("11.1.0"), **PROF)
    trt = fake_trt("11.1.0")
    build.build_engine(files["standard"], tmp_path / "m.engine", trt=trt, **PROF)
    assert trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED == 0 and trt.rec.network_flags == 1 << 0
    assert trt.rec.flags_set == [] and trt.rec.flags_cleared == [trt.BuilderFlag.TF32]


@pytest.mark.parametrize("version", ["10.14.0", "10.16.0", "11.1.0"])
def test_fake_plugin_mode_strips_bodies_and_counts_plugin_layers(two_spp, tmp_path, no_cache, fresh_plugins, version):
    """Item 4: with or without the parser's override flag, the SPP bodies are stripped, the flag is
    not set, and every SPP node (two configurations) becomes its own plugin layer."""
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


@pytest.fixture(scope="module")
def window_plugin_file(tmp_path_factory):
    """A plugin-mode window-SPP file (one WindowSpatialPyramidPool node, its function body)."""
    from spp_deploy.deploy import export_window_model
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("wplug") / "window.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=4, stride=16.0, spp_impl="plugin", check_parity=False)
    return path


WPROF = dict(min_shape="features:1x4x2x2,windows:1x5", opt_shape="features:1x4x8x8,windows:16x5",
             max_shape="features:2x4x16x16,windows:64x5")


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


def test_fake_load_plugin_registers_once_through_the_registry(tmp_path, fresh_plugins):
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    trt = fake_trt()
    plugin_mode.load_plugin(lib, trt)
    plugin_mode.load_plugin(tmp_path / "." / "libspp_plugin.so", trt)  # same file: not loaded again
    assert trt.rec.loaded == [str(lib.resolve())]
    other = fake_trt()
    other.get_plugin_registry().creators.add(("SpatialPyramidPool", "1", ""))  # registered by the application
    plugin_mode.load_plugin(tmp_path / "libspp_plugin.so", other)
    assert other.rec.loaded == []


def test_fake_weak_fp16_pins_rounded_edges_to_fp32(two_spp, tmp_path, no_cache):
    """Item 5: TensorRT 10 weak typing with --fp16 keeps the `rounded` float32 bin-edge layers in fp32."""
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
    """Item 8: TensorRT keeps the logger pointer: every builder gets one process-wide logger
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


def test_fake_runner_refuses_engine_from_other_tensorrt(tmp_path):
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "m.engine"
    eng.write_bytes(b"x")
    metadata.EngineMeta("10.3.0", "NVIDIA A10", "8.6", "fp32", [], "00").save(eng)
    with pytest.raises(UserError, match="built with TensorRT 10.3.0, this is TensorRT 10.16.0"):
        with TrtRunner(eng, trt=fake_trt("10.16.0")):
            pass
    with pytest.raises(UserError, match="engine file not found"):
        TrtRunner(tmp_path / "none.engine")


# ---- real TensorRT (skipped here) ----------------------------------------------------------------

needs_trt = pytest.mark.skipif(not (HAVE_TRT and torch.cuda.is_available()),
                               reason=f"needs TensorRT and a CUDA GPU; TensorRT: {INSTALL_HINT}")


@needs_trt
@pytest.mark.parametrize("mode", ["standard"])
def test_trt_engine_matches_pytorch(files, tmp_path, mode):
    from spp_deploy.runtime.trt.runner import TrtRunner
    from spp_deploy.runtime.validate import ValidateConfig, run_validation

    eng = tmp_path / "m.engine"
    build.build_engine(files[mode], eng, use_cache=False, **PROF)
    rep = run_validation(zoo.create(NAME), ValidateConfig(shapes=[(1, 512, 16, 16), (2, 512, 21, 13), (1, 512, 64, 64)],
                                                          backends=["trt"], engine=eng))
    assert not rep.failed() and any(r.comparison for r in rep.records)
    assert any(r.skipped and "outside the engine's profile" in r.skipped for r in rep.records)
    with TrtRunner(eng) as r:
        with pytest.raises(UserError, match="outside the engine's profile"):
            r.infer({"input": np.zeros((1, 512, 64, 64), np.float32)})


@needs_trt
def test_trt_corrupt_engine_is_one_line(tmp_path):
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "bad.engine"
    eng.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="cannot load engine"):
        with TrtRunner(eng):
            pass


# ---- GPU identity without torch CUDA (buffers and streams: Polygraphy's, test_trt_polygraphy.py); CUDA-graph fallback

class FakeDriver:
    """libcuda's identity calls as the ctypes code makes them (byref arguments, bytes buffers)."""

    def __init__(self, name=b"NVIDIA H100 80GB HBM3", cc=(9, 0), init_rc=0):
        self.name, self.cc, self.init_rc = name, cc, init_rc

    def cuInit(self, flags): return self.init_rc
    def cuDeviceGet(self, dev, ordinal): dev._obj.value = ordinal; return 0

    def cuDeviceGetName(self, buf, n, dev):
        buf.value = self.name
        return 0

    def cuDeviceGetAttribute(self, out, attr, dev):
        out._obj.value = {75: self.cc[0], 76: self.cc[1]}[attr]
        return 0


def test_gpu_identity_through_the_cuda_driver(monkeypatch):
    """Item 11: with a CPU torch the GPU still comes from the driver (engines cache per GPU)."""
    from spp_deploy.runtime.trt import common as trt_common, cuda as cuda_driver

    h100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert cuda_driver.driver_gpu_identity(FakeDriver()) == h100
    assert cuda_driver.driver_gpu_identity(FakeDriver(init_rc=100)) is None  # CUDA_ERROR_NO_DEVICE
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(cuda_driver._STATE, "lib", FakeDriver(b"NVIDIA A10", (8, 6)))
    assert trt_common.gpu_identity() == {"name": "NVIDIA A10", "compute_capability": "8.6"}
    monkeypatch.setitem(cuda_driver._STATE, "lib", None)  # no libcuda at all
    assert trt_common.gpu_identity()["compute_capability"] == "0.0"


def test_cuda_graph_capture_failure_falls_back(monkeypatch):
    """Item 7: a capture TensorRT breaks (it syncs to read the NaN If's condition) is reported, not fatal."""
    import contextlib

    from spp_deploy.bench import timed

    @contextlib.contextmanager
    def capturing(graph, stream=None):
        yield
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", capturing)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    calls = []
    graph, why = timed.capture_cuda_graph(lambda: calls.append(1), stream=None)
    assert graph is None and "not permitted when stream is capturing" in why and calls == [1]
