"""Runtime package without TensorRT: ORT runners, validation on every zoo model in both spp-impl
modes, plugin-mode preparation on real exported files, feed errors, fp16 export."""

import json

import numpy as np
import onnx
import pytest
import torch

from spp_deploy.sources import zoo
from spp_deploy.contract import plugin_nodes
from spp_deploy.util.errors import UserError
from spp_deploy import export_onnx
from spp_deploy.runtime.ort_runner import OrtRunner
from spp_deploy.runtime.trt.plugin_mode import is_plugin_mode, prepare_for_parser
from spp_deploy.runtime.validate import ValidateConfig, parse_tolerances, run_validation, sweep_shapes

MODES = ("standard", "plugin")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Every zoo model exported in both modes (no parity sweep here: validate is what we test)."""
    d = tmp_path_factory.mktemp("onnx")
    out = {}
    for name in zoo.zoo_names():
        e = zoo.get_entry(name)
        model = zoo.create(name)
        for mode in MODES:
            p = d / f"{name}-{mode}.onnx"
            export_onnx(model, torch.randn(*e.input_shape), p, spp_impl=mode, check_parity=False)
            out[name, mode] = p
    return out



def _two_sizes(name):
    B, C, H, W = zoo.get_entry(name).input_shape
    return [(1, C, H, W), (2, C, H + 3, W + 1)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.zoo_names())
def test_validate_every_zoo_model_on_ort_cpu(exported, name, mode):
    model = zoo.create(name)
    cfg = ValidateConfig(shapes=_two_sizes(name), backends=["ort-cpu"], onnx=exported[name, mode])
    report = run_validation(model, cfg)
    compared = [r for r in report.records if r.comparison is not None]
    assert compared, [r.skipped for r in report.records]  # the entry's own shape is always legal
    assert not report.failed(), [(r.shape, r.comparison) for r in report.failed()]
    for r in compared:
        assert r.comparison.cosine > 0.999999 and r.comparison.max_rel <= 1e-5


def test_validate_detects_a_wrong_model(exported):
    """Not vacuous: a different model (other weights) fails."""
    name = "sppnet-zf5"
    other = zoo.create(name, seed=1)
    report = run_validation(other, ValidateConfig(shapes=_two_sizes(name)[:1], backends=["ort-cpu"],
                                                  onnx=exported[name, "standard"]))
    assert len(report.failed()) == 1 and report.failed()[0].comparison.max_rel > 1e-2


def test_validate_cli_json_skip_and_summary(exported, tmp_path, cli):
    rep = tmp_path / "r.json"
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--onnx", exported["sppnet-zf5", "plugin"],
                         "--backends", "ort-cpu,torch-fp64", "--sizes", "64x64,5x5,71x93", "--batch", "1,2",
                         "--json", rep)
    assert code == 0, err
    assert out.count("PASSED ") == 8 and out.count("SKIPPED") == 4 and "top-1 100%" in out
    assert "PASSED: 8 passed, 0 failed, 4 skipped" in out
    data = json.loads(rep.read_text())
    assert data["passed"] and data["summary"] == {"PASSED": 8, "FAILED": 0, "SKIPPED": 4}
    r = next(x for x in data["results"] if x["status"] == "PASSED")
    assert {"max_abs", "max_abs_index", "max_rel", "mean_abs", "cosine", "top1_agreement"} <= set(r)
    skipped = [x for x in data["results"] if x["status"] == "SKIPPED"]
    assert all("cannot run here" in x["skipped"] for x in skipped)


def test_validate_cli_fails_with_exit_1(exported, tmp_path, cli):
    # The file holds the default weights; the PyTorch side gets other ones: a real mismatch.
    weights = tmp_path / "other.pt"
    torch.save(zoo.create("sppnet-zf5", seed=1).state_dict(), weights)
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--model-kwargs", '{"num_classes": 1000}',
                         "--weights", weights, "--onnx", exported["sppnet-zf5", "standard"], "--sizes", "64x64",
                         "--rtol", "0", "--atol", "0", "--seed", "3")
    assert code == 1, out + err
    (line,) = [ln for ln in out.splitlines() if ln.startswith("FAILED ")]
    assert "1x3x64x64" in line and line.endswith("(limits atol 0 / rtol 0)")
    assert "FAILED: 0 passed, 1 failed, 0 skipped" in out
    # the same comparison with the file's own weights passes at the default tolerances
    code, out, err = cli("validate", "--model", "zoo:sppnet-zf5", "--onnx", exported["sppnet-zf5", "standard"],
                         "--sizes", "64x64", "--seed", "3")
    assert code == 0 and "PASSED: 1 passed, 0 failed, 0 skipped" in out, out + err


def test_validate_size_range_is_seeded():
    a = sweep_shapes(3, None, (32, 64), 5, [1, 2], seed=7)
    assert a == sweep_shapes(3, None, (32, 64), 5, [1, 2], seed=7)
    assert (1, 3, 32, 32) in a and (2, 3, 64, 64) in a and len(a) == 10
    assert all(32 <= h <= 64 and 32 <= w <= 64 for _, _, h, w in a)
    assert sweep_shapes(3, [(4, 10, 11)], None, 0, [1, 2], 0) == [(4, 3, 10, 11)]


def test_tolerance_parsing():
    assert parse_tolerances("1e-3", "--atol") == {"*": 1e-3}
    assert parse_tolerances("output:1e-3,aux:0", "--atol") == {"output": 1e-3, "aux": 0.0}
    with pytest.raises(UserError, match="bad --rtol"):
        parse_tolerances("output:abc", "--rtol")


@pytest.mark.parametrize("feed,message", [
    ({"x": np.zeros((1, 3, 64, 64), np.float32)}, "unknown input 'x'"),
    ({"input": np.zeros((3, 64, 64), np.float32)}, "has rank 3"),
    ({"input": np.zeros((1, 3, 64, 64), np.float64)}, "has dtype float64, the model expects float32"),
    ({"input": np.zeros((1, 4, 64, 64), np.float32)}, "dim 1 is 4, the model fixes it to 3"),
    ({}, "input 'input' not given"),
])
def test_ort_runner_bad_feed(exported, feed, message):
    with OrtRunner(exported["sppnet-zf5", "standard"]) as r:
        with pytest.raises(UserError, match=message):
            r.infer(feed)


def test_ort_runner_specs_and_provider_names(exported):
    with OrtRunner(exported["sppnet-zf5", "plugin"], "ort-cpu") as r:
        assert r.input_specs() == {"input": ("tensor(float)", ("batch", 3, "height", "width"))}
        assert r.infer({"input": np.zeros((2, 3, 40, 50), np.float32)})["output"].shape == (2, 1000)
    with pytest.raises(UserError, match="unknown ONNX Runtime provider 'npu'"):
        OrtRunner(exported["sppnet-zf5", "plugin"], "npu")


def test_ort_trt_provider_gets_the_plugin_library(exported, tmp_path, monkeypatch):
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"")
    r = OrtRunner(exported["sppnet-zf5", "plugin"], "trt", plugin=lib)
    assert r._providers()[0] == ("TensorrtExecutionProvider", {"trt_extra_plugin_lib_paths": str(lib)})
    monkeypatch.setenv("SPP_DEPLOY_PLUGIN_LIB", str(lib))  # no --plugin: found through spp_deploy.native.library
    r = OrtRunner(exported["sppnet-zf5", "plugin"], "trt")
    assert r._providers()[0] == ("TensorrtExecutionProvider", {"trt_extra_plugin_lib_paths": str(lib)})
    assert OrtRunner(exported["sppnet-zf5", "standard"], "trt")._providers()[0] == "TensorrtExecutionProvider"


def test_corrupt_onnx_is_one_line(tmp_path, cli):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(UserError, match="ONNX Runtime cannot load"):
        with OrtRunner(bad):
            pass
    for argv in (["check", bad], ["run", "--onnx", bad, "-i", bad]):
        code, _, err = cli(*argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_yolo_spp_has_no_pyramid_node_in_plugin_mode(exported):
    plugin = onnx.load(exported["yolo-spp", "plugin"])  # SPP becomes SPPF: plain MaxPools, no pyramid
    assert not is_plugin_mode(plugin) and not plugin.functions


@pytest.mark.parametrize("name", [n for n in zoo.zoo_names() if n != "yolo-spp"])
def test_plugin_mode_preparation_strips_function_bodies(exported, name):
    plugin = onnx.load(exported[name, "plugin"])
    assert plugin.functions
    nodes = len(plugin_nodes(plugin))
    stripped = prepare_for_parser(plugin)  # always: TensorRT's parser keys functions by name only
    assert not [f for f in stripped.functions if f.domain == "spp_deploy"]
    assert len(plugin_nodes(stripped)) == nodes  # the plugin nodes stay, with their attributes
    for n in plugin_nodes(stripped):
        assert {"levels", "mode", "bins", "order", "plugin_version"} <= {a.name for a in n.attribute}
    assert plugin.functions  # the caller's model is untouched
    standard = onnx.load(exported[name, "standard"])
    assert not is_plugin_mode(standard) and prepare_for_parser(standard) is standard
    # the stripped file no longer runs in ONNX Runtime: the body really is gone
    import onnxruntime as ort

    with pytest.raises(ort.capi.onnxruntime_pybind11_state.Fail, match="SpatialPyramidPool.* is not a registered"):
        ort.InferenceSession(stripped.SerializeToString(), providers=["CPUExecutionProvider"])


def test_run_npy_and_image(exported, tmp_path, cli):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((3, 70, 90), dtype=np.float32))
    code, out, err = cli("run", "--onnx", exported["sppnet-zf5", "standard"], "-i", x, "--top-k", "3")
    assert code == 0, err
    assert "input 1x3x70x90 -> output 1x1000" in out and "top-3:" in out
    y = tmp_path / "y.npy"
    code, out, err = cli("run", "--model", "zoo:sppnet-zf5", "--backend", "torch", "-i", x, "-o", y)
    assert code == 0, err
    with torch.no_grad():
        want = zoo.create("sppnet-zf5")(torch.from_numpy(np.load(x))[None]).numpy()
    got = np.load(y)
    assert got.shape == (1, 1000) and np.array_equal(got, want)  # the same model on the same input
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    img = tmp_path / "im.png"
    pil.fromarray(np.random.default_rng(1).integers(0, 255, (45, 77, 3), dtype=np.uint8)).save(img)
    code, out, err = cli("run", "--onnx", exported["sppnet-zf5", "plugin"], "-i", img,
                         "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225")
    assert code == 0, err
    assert "input 1x3x45x77 -> output 1x1000" in out  # native size, no resize


@pytest.mark.parametrize("arr,message", [
    (np.zeros((1, 1, 3, 64, 64), np.float32), "has rank 5"),
    (np.zeros((1, 3, 64, 64), np.float64), "has dtype float64"),
])
def test_run_bad_input_is_one_line(exported, tmp_path, cli, arr, message):
    x = tmp_path / "x.npy"
    np.save(x, arr)
    code, _, err = cli("run", "--onnx", exported["sppnet-zf5", "standard"], "-i", x)
    assert code == 2 and message in err and err.count("\n") == 1


def test_run_and_validate_need_their_files(tmp_path, cli):
    code, _, err = cli("run", "--onnx", tmp_path / "none.onnx", "-i", tmp_path / "x.npy")
    assert code == 2 and "input file not found" in err
    code, _, err = cli("validate", "--model", "zoo:sppnet-zf5", "--onnx", tmp_path / "none.onnx")
    assert code == 2 and "--onnx file not found" in err
    code, _, err = cli("validate", "--model", "zoo:sppnet-zf5", "--backends", "ort-npu")
    assert code == 2 and "unknown backend 'ort-npu'" in err


def test_fp16_export_runs_and_validates(tmp_path, cli):
    name = "sppnet-zf5"
    model = zoo.create(name)
    p = tmp_path / "h.onnx"
    res = export_onnx(model, torch.randn(1, 3, 96, 96), p, sizes=[(1, 64, 64), (2, 97, 131)], precision="fp16")
    proto = onnx.load(p)
    f16 = onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == f16 == proto.graph.output[0].type.tensor_type.elem_type
    assert not any(i.data_type == onnx.TensorProto.FLOAT for i in proto.graph.initializer)
    assert len([r for r in res.parity if r.comparison]) == 2
    code, out, err = cli("validate", "--model", f"zoo:{name}", "--onnx", p, "--sizes", "64x64")
    assert code == 0, out + err
    assert "(limits" not in out and "PASSED: 1 passed" in out
    code, out, err = cli("check", p)
    assert code == 0 and "PASSED" in out


def test_doctor_lists_everything(cli):
    code, out, _ = cli("doctor")
    assert code == 0
    for key in ("torch", "onnx", "onnxruntime", "providers", "tensorrt", "tritonclient", "CUDA", "GPU", "SPP plugin library"):
        assert key in out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.zoo_names())
def test_exported_files_pass_the_tensorrt_lint(exported, cli, name, mode):
    from spp_deploy.runtime.trt.lint import errors, lint_tensorrt

    assert errors(lint_tensorrt(onnx.load(exported[name, mode]))) == []
    code, out, _ = cli("check", "--target", "tensorrt", exported[name, mode])
    assert code == 0 and "PASSED" in out
