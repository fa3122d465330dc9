"""`spp-deploy triton`: model repositories whose config.pbtxt parses under Triton's own schema
(tritonclient's model_config_pb2) with every field matching the source file, read here by an
independent reader (ONNX Runtime's session for ONNX files, the fake engine's own table for
engines); what Triton would reject is refused in one line with nothing written."""

import os
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tritonclient", reason="tritonclient (the triton extra) is not installed")

from google.protobuf import text_format  # noqa: E402

from tiny import export_tiny  # noqa: E402
from spp_deploy.util.constants import DEFAULT_TRITON_MAX_BATCH  # noqa: E402
from spp_deploy.triton.schema import model_config_pb2  # noqa: E402

OPSET = [helper.make_opsetid("", 20)]
ORT_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
             "tensor(int32)": "TYPE_INT32", "tensor(bool)": "TYPE_BOOL"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    variants = {"standard": {}, "plugin": {"spp_impl": "plugin"}, "static-batch": {"dynamic": ["height", "width"]}}
    return export_tiny(tmp_path_factory.mktemp("triton-src"), variants)


def read_config(path: Path):
    """config.pbtxt parsed strictly with Triton's ModelConfig message."""
    pb2 = model_config_pb2()
    return text_format.Parse(path.read_text(), pb2.ModelConfig())


def type_name(value: int) -> str:
    return model_config_pb2().DataType.Name(value)


def expected_dims(shape, batched: bool) -> list[int]:
    dims = shape[1:] if batched else shape
    return [d if isinstance(d, int) else -1 for d in dims]


def assert_matches_ort(cfg, onnx_path: Path, batched: bool) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for got, want in ((cfg.input, sess.get_inputs()), (cfg.output, sess.get_outputs())):
        assert [t.name for t in got] == [t.name for t in want]
        for g, w in zip(got, want):
            assert type_name(g.data_type) == ORT_TYPES[w.type], g.name
            assert list(g.dims) == expected_dims(w.shape, batched), (g.name, w.shape)
            if batched:
                assert not isinstance(w.shape[0], int), "a batched config needs a dynamic first dim"


def no_temp_left(repo: Path) -> bool:
    return not [p for p in repo.rglob(".*") if p.name != "README.md"]


@pytest.mark.parametrize("mode", ["standard", "plugin"])
def test_onnx_repository_parses_under_tritons_schema_and_matches_the_file(files, tmp_path, cli, mode):
    repo = tmp_path / "repo"
    code, out, err = cli("triton", "-o", repo, "--name", f"spp_{mode}", "--onnx", files[mode])
    assert code == 0, err
    cfg = read_config(repo / f"spp_{mode}" / "config.pbtxt")
    assert cfg.name == f"spp_{mode}" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == DEFAULT_TRITON_MAX_BATCH
    assert cfg.HasField("dynamic_batching")
    assert len(cfg.instance_group) == 1 and cfg.instance_group[0].count == 1
    assert model_config_pb2().ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind) == "KIND_AUTO"
    assert_matches_ort(cfg, files[mode], batched=True)
    served = repo / f"spp_{mode}" / "1" / "model.onnx"
    assert served.read_bytes() == files[mode].read_bytes()
    assert "tritonserver --model-repository=/models" in (repo / "README.md").read_text()
    assert "plugins=" not in (repo / "README.md").read_text()  # an ONNX file needs no plugin library
    assert ("model-local function" in out) == (mode == "plugin")
    assert no_temp_left(repo)


def test_the_served_plugin_mode_file_runs_in_onnx_runtime_as_is(files, tmp_path, cli):
    import onnxruntime as ort

    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "m", "--onnx", files["plugin"])[0] == 0
    x = np.random.default_rng(0).standard_normal((2, 3, 19, 23), dtype=np.float32)
    served = ort.InferenceSession(str(repo / "m" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(str(files["standard"]), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(served.run(None, {"input": x})[0], plain.run(None, {"input": x})[0])


def test_flags_set_batch_instances_and_kind(files, tmp_path, cli):
    repo = tmp_path / "repo"
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--onnx", files["standard"], "--max-batch", "3",
                       "--instances", "4", "--kind", "cpu")
    assert code == 0, err
    cfg = read_config(repo / "m" / "config.pbtxt")
    assert cfg.max_batch_size == 3 and cfg.instance_group[0].count == 4
    assert model_config_pb2().ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind) == "KIND_CPU"
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--onnx", files["standard"], "--max-batch", "0", "--force")
    assert code == 0, err
    cfg = read_config(repo / "m" / "config.pbtxt")
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert_matches_ort(cfg, files["standard"], batched=False)
    assert no_temp_left(repo)


def test_static_batch_file_gets_explicit_dims_and_refuses_batching(files, tmp_path, cli):
    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "m", "--onnx", files["static-batch"])[0] == 0
    cfg = read_config(repo / "m" / "config.pbtxt")
    assert cfg.max_batch_size == 0 and list(cfg.input[0].dims)[0] == 1
    assert_matches_ort(cfg, files["static-batch"], batched=False)
    code, _, err = cli("triton", "-o", repo, "--name", "n", "--onnx", files["static-batch"], "--max-batch", "4")
    assert code == 2 and err.count("\n") == 1 and "fixed first dim (1)" in err and "--max-batch 4" in err, err
    assert not (repo / "n").exists()


def two_input_model(path: Path) -> Path:
    """image [N, 3, H, W] and windows [R, 5] -> pooled [R, 3, 2, 2] (ONNX MaxRoiPool): two inputs
    whose first dims are different axes, like the window-SPP detection model."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    rois = helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["R", 5])
    pooled = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["R", 3, 2, 2])
    node = helper.make_node("MaxRoiPool", ["image", "windows"], ["pooled"], pooled_shape=[2, 2])
    model = helper.make_model(helper.make_graph([node], "windows", [image, rois], [pooled]),
                              opset_imports=OPSET, ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def test_two_input_model_describes_both_inputs_with_dynamic_window_count(tmp_path, cli):
    import onnxruntime as ort

    src = two_input_model(tmp_path / "windows.onnx")
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])  # a real, runnable model
    assert sess.run(None, {"image": np.ones((1, 3, 8, 8), np.float32),
                           "windows": np.array([[0, 0, 0, 3, 3]] * 7, np.float32)})[0].shape == (7, 3, 2, 2)
    repo = tmp_path / "repo"
    code, _, err = cli("triton", "-o", repo, "--name", "det", "--onnx", src)
    assert code == 0, err
    cfg = read_config(repo / "det" / "config.pbtxt")
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert [t.name for t in cfg.input] == ["image", "windows"]
    assert list(cfg.input[1].dims) == [-1, 5] and list(cfg.input[0].dims) == [-1, 3, -1, -1]
    assert_matches_ort(cfg, src, batched=False)
    code, _, err = cli("triton", "-o", repo, "--name", "det2", "--onnx", src, "--max-batch", "4")
    assert code == 2 and err.count("\n") == 1, err
    assert "different axes" in err and "'N'" in err and "'R'" in err
    assert not (repo / "det2").exists()


def test_batch_only_output_is_reshaped_to_a_scalar_per_item(tmp_path, cli):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [axes]), opset_imports=OPSET, ir_version=10)
    onnx.save(model, tmp_path / "r.onnx")
    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "r", "--onnx", tmp_path / "r.onnx")[0] == 0
    cfg = read_config(repo / "r" / "config.pbtxt")
    assert [t.name for t in cfg.input] == ["x"]  # the initializer is not an input
    assert list(cfg.output[0].dims) == [1] and cfg.output[0].HasField("reshape") and not cfg.output[0].reshape.shape


def test_bad_requests_are_one_line_and_write_nothing(files, tmp_path, cli):
    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "taken", "--onnx", files["standard"])[0] == 0
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    same = tmp_path / "same.onnx"  # the graph input is also the graph output
    v = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    onnx.save(helper.make_model(helper.make_graph([], "g", [v], [v]), opset_imports=OPSET, ir_version=10), same)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    std = files["standard"]
    cases = [
        (["--name", "taken", "--onnx", std], "model 'taken' already exists"),
        (["--name", "x", "--onnx", same], "tensor name 'x' is both an input and an output"),
        (["--name", "../up", "--onnx", std], "bad model name '../up'"),
        (["--name", ".hidden", "--onnx", std], "bad model name '.hidden'"),
        (["--name", "m"], "give exactly one of --onnx"),
        (["--name", "m", "--onnx", std, "--engine", tmp_path / "e.plan"], "give exactly one of --onnx"),
        (["--name", "m", "--onnx", std, "--plugin", a_file], "--plugin is for --engine"),
        (["--name", "m", "--engine", a_file, "--kind", "cpu"], "runs on a GPU only"),
        (["--name", "m", "--onnx", tmp_path / "none.onnx"], "--onnx file not found"),
        (["--name", "m", "--onnx", a_file], "not a valid ONNX file"),
        (["--name", "m", "--onnx", std, "--instances", "0"], "--instances must be >= 1"),
        (["--name", "m", "--onnx", std, "--max-batch", "-1"], "argument --max-batch"),
    ]
    for argv, msg in cases:
        code, _, err = cli("triton", "-o", repo, *argv)
        assert code == 2 and msg in err and err.count("\n") == 1, (msg, err)
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    for out, msg in ((a_file, "is a file"), (tmp_path / "no" / "repo", "parent directory does not exist")):
        code, _, err = cli("triton", "-o", out, "--name", "m", "--onnx", std)
        assert code == 2 and msg in err and err.count("\n") == 1, (msg, err)
    assert not (tmp_path / "no").exists()


# ---- TensorRT engines, read through a fake tensorrt module ---------------------------------------

ENGINE = b"serialized engine"


def fake_tensorrt(tensors):
    """A ``tensorrt`` module whose Runtime deserializes ``ENGINE`` into an engine with ``tensors``:
    [(name, 'in'|'out', TensorRT type, shape with -1, (min, opt, max) or None)]."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.16.0"
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    by_name = {t[0]: t for t in tensors}

    class Engine:
        num_io_tensors = len(tensors)

        def get_tensor_name(self, i): return tensors[i][0]
        def get_tensor_mode(self, n): return by_name[n][1]
        def get_tensor_dtype(self, n): return types.SimpleNamespace(name=by_name[n][2])
        def get_tensor_shape(self, n): return by_name[n][3]
        def get_tensor_profile_shape(self, n, profile):
            assert profile == 0
            return by_name[n][4]

    class Runtime:
        def __init__(self, logger): pass
        def deserialize_cuda_engine(self, data): return Engine() if data == ENGINE else None

    trt.Runtime = Runtime
    return trt


CLASSIFIER = [("input", "in", "FLOAT", (-1, 3, -1, -1), ((1, 3, 16, 16), (4, 3, 64, 64), (16, 3, 128, 128))),
              ("logits", "out", "FLOAT", (-1, 3), None)]


@pytest.fixture
def engine(tmp_path, monkeypatch):
    """(engine path, plugin library, loaded libraries): a plugin-mode engine with its metadata."""
    from spp_deploy.runtime.trt import metadata, plugin_mode

    path = tmp_path / "m.engine"
    path.write_bytes(ENGINE)
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"\x7fELF not really")
    metadata.EngineMeta("10.16.0", "NVIDIA H100", "9.0", "fp32", [], "00", str(lib), True).save(path)
    loaded = []
    monkeypatch.setattr(plugin_mode, "load_plugin", lambda p, trt=None: loaded.append(Path(p)))

    def use(tensors):
        monkeypatch.setitem(__import__("sys").modules, "tensorrt", fake_tensorrt(tensors))

    use(CLASSIFIER)
    return types.SimpleNamespace(path=path, lib=lib, loaded=loaded, use=use)


def test_engine_repository_takes_batch_from_the_profile_and_ships_the_plugin(engine, tmp_path, cli):
    repo = tmp_path / "repo"
    code, out, err = cli("triton", "-o", repo, "--name", "trt", "--engine", engine.path)
    assert code == 0, err
    assert engine.loaded == [engine.lib]  # the metadata's library, loaded before deserializing
    assert "built with TensorRT 10.16.0" in out
    cfg = read_config(repo / "trt" / "config.pbtxt")
    assert cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 16 and cfg.HasField("dynamic_batching")
    for got, (name, _, _, shape, _) in zip(list(cfg.input) + list(cfg.output), CLASSIFIER):
        assert got.name == name and type_name(got.data_type) == "TYPE_FP32" and list(got.dims) == list(shape[1:])
    assert model_config_pb2().ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind) == "KIND_GPU"
    assert (repo / "trt" / "1" / "model.plan").read_bytes() == ENGINE
    assert (repo / "trt" / "libspp_plugin.so").read_bytes() == engine.lib.read_bytes()
    readme = (repo / "README.md").read_text()
    assert '--backend-config=tensorrt,plugins="/models/trt/libspp_plugin.so"' in readme
    assert "LD_PRELOAD=/models/trt/libspp_plugin.so" in readme and "--gpus all" in readme


def test_engine_profile_limits_are_refused_in_one_line(engine, tmp_path, cli):
    repo = tmp_path / "repo"
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--engine", engine.path, "--max-batch", "32")
    assert code == 2 and err.count("\n") == 1 and "profile serves batch 1..16" in err, err
    engine.use([("input", "in", "FLOAT", (-1, 3, 64, 64), ((2, 3, 64, 64),) * 2 + ((8, 3, 64, 64),)),
                ("logits", "out", "FLOAT", (-1, 3), None)])
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--engine", engine.path, "--max-batch", "4")
    assert code == 2 and err.count("\n") == 1 and "starts at batch 2" in err, err
    assert not (repo / "m").exists()
    assert cli("triton", "-o", repo, "--name", "m", "--engine", engine.path)[0] == 0  # served without batching
    cfg = read_config(repo / "m" / "config.pbtxt")
    assert cfg.max_batch_size == 0 and list(cfg.input[0].dims) == [-1, 3, 64, 64]


def test_engine_with_two_inputs_of_different_leading_axes(engine, tmp_path, cli):
    engine.use([("image", "in", "FLOAT", (1, 3, -1, -1), ((1, 3, 64, 64), (1, 3, 224, 224), (1, 3, 512, 512))),
                ("windows", "in", "FLOAT", (-1, 5), ((1, 5), (300, 5), (4000, 5))),
                ("features", "out", "HALF", (-1, 12800), None)])
    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "det", "--engine", engine.path)[0] == 0
    cfg = read_config(repo / "det" / "config.pbtxt")
    assert cfg.max_batch_size == 0
    assert [(t.name, list(t.dims)) for t in cfg.input] == [("image", [1, 3, -1, -1]), ("windows", [-1, 5])]
    assert type_name(cfg.output[0].data_type) == "TYPE_FP16" and list(cfg.output[0].dims) == [-1, 12800]


def test_engine_problems_are_one_line(engine, tmp_path, cli):
    repo = tmp_path / "repo"
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"corrupt")
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--engine", bad)
    assert code == 2 and err.count("\n") == 1 and "cannot load engine" in err, err
    os.unlink(engine.lib)
    code, _, err = cli("triton", "-o", repo, "--name", "m", "--engine", engine.path)
    assert code == 2 and err.count("\n") == 1 and "plugin library not found" in err and "--plugin" in err, err
    assert not (repo / "m").exists()


# ---- the schema module ---------------------------------------------------------------------------

def test_schema_loads_from_tritonclient_without_grpcio(monkeypatch):
    """The writer needs only the generated message: without grpcio it is loaded from its file."""
    import sys

    from spp_deploy.util.errors import UserError
    from spp_deploy.triton import schema

    for k in [k for k in sys.modules if k.startswith("tritonclient.grpc")]:
        monkeypatch.delitem(sys.modules, k)
    monkeypatch.setitem(sys.modules, "grpc", None)  # import grpc fails
    monkeypatch.delitem(sys.modules, schema._PRIVATE, raising=False)
    pb2 = schema.model_config_pb2()
    assert pb2.__name__ == schema._PRIVATE
    cfg = schema.parse_text('name: "m" max_batch_size: 2 input { name: "x" data_type: TYPE_FP32 dims: [3, -1] }')
    assert list(cfg.input[0].dims) == [3, -1] and pb2.DataType.Name(cfg.input[0].data_type) == "TYPE_FP32"
    with pytest.raises(UserError, match="no field named \"bogus\""):
        schema.parse_text("bogus: 1")


def test_missing_tritonclient_is_one_line(files, tmp_path, cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tritonclient", None)
    code, _, err = cli("triton", "-o", tmp_path / "repo", "--name", "m", "--onnx", files["standard"])
    assert code == 2 and err.count("\n") == 1 and "tritonclient" in err and '.[triton]"' in err, err
    assert not (tmp_path / "repo").exists()


def test_readme_covers_every_model_in_the_repository(engine, files, tmp_path, cli):
    repo = tmp_path / "repo"
    assert cli("triton", "-o", repo, "--name", "onnx_model", "--onnx", files["standard"])[0] == 0
    (repo / "onnx_model" / "libother.so").write_bytes(b"not a plugin of a plan")
    assert cli("triton", "-o", repo, "--name", "plan_model", "--engine", engine.path)[0] == 0
    readme = (repo / "README.md").read_text()
    assert "| onnx_model | onnxruntime_onnx | 8 |" in readme and "| plan_model | tensorrt_plan | 16 |" in readme
    assert 'plugins="/models/plan_model/libspp_plugin.so"' in readme and "libother" not in readme
