"""Inputs that were read wrongly with exit 0, requests past the machine's
bounds, misleading messages, Python API argument forms, and model files importing their
neighbours. Each either works correctly or is refused in one line, before the expensive work."""

import json
import os
import sys

import numpy as np
import onnx
import pytest
import torch

from spp_deploy.util.errors import UserError
from bad_input import files, no_work, npy, one_line, run_cli, work  # noqa: F401 (fixtures)
from tiny import TINY, tiny_model

DET = ["--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}']


def png(path, array, mode=None):
    from PIL import Image

    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def random_boxes(rng, count=5, size=40):
    """Valid boxes (x1 <= x2, y1 <= y2) with fractional coordinates."""
    a = rng.uniform(1, size, (count, 2)).round(2)
    b = a + rng.uniform(0, size, (count, 2)).round(2)
    return np.concatenate([a, b], axis=1)


# -- inputs read wrongly ----------------------------------------------------------------------------


def test_npz_saved_under_a_npy_name_is_refused(work, capsys):
    with open(work / "x.npy", "wb") as f:
        np.savez(f, image=np.zeros((1, 3, 16, 16), np.float32))
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "y.npy")
    assert code == 2 and "x.npy is a .npz archive (arrays: image)" in one_line(err)
    assert files(work) == {"x.npy"}


def test_16_bit_png_is_scaled_not_clipped(work):
    pytest.importorskip("PIL")
    from spp_deploy.util.inputs import load_input

    rng = np.random.default_rng(1)
    a16 = rng.permutation(np.linspace(0, 65535, 24 * 17).round()).astype(np.uint16).reshape(24, 17)  # all distinct
    a8 = rng.integers(0, 256, (24, 17, 3), dtype=np.uint8)
    x16 = load_input(str(png(work / "g16.png", a16)))
    x8 = load_input(str(png(work / "rgb8.png", a8)))
    assert x16.shape == (1, 3, 24, 17) and x16.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(x16[0, c], a16 / 65535.0, rtol=0, atol=1e-6)
        np.testing.assert_allclose(x8[0, c], a8[:, :, c] / 255.0, rtol=0, atol=1e-6)
    assert len(np.unique(x16)) > 256  # more levels than 8 bits can hold


@pytest.mark.parametrize("command", [
    ["run", "--model", TINY, "-i", "x.npy"],
    ["validate", "--model", TINY, "--onnx", "x.npy", "--images", "x.npy"],
])
@pytest.mark.parametrize("flag", ["--mean", "--std"])
def test_mean_and_std_are_refused_for_npy_inputs(work, capsys, no_work, command, flag):
    npy(work / "x.npy", (1, 3, 16, 16))
    code, out, err = run_cli(capsys, *command, flag, "0.5")
    assert code == 2 and f"{flag}: applies to image files only: x.npy is a .npy array" in one_line(err)
    assert files(work) == {"x.npy"}


@pytest.mark.parametrize("flag, value", [("--std", "nan"), ("--std", "0.2,inf,0.2"), ("--mean", "nan")])
def test_non_finite_mean_or_std_is_refused(work, capsys, no_work, flag, value):
    pytest.importorskip("PIL")
    png(work / "x.png", np.full((16, 16, 3), 100, np.uint8))
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.png", flag, value, "-o", "y.npy")
    assert code == 2 and f"{flag}: expected finite numbers" in one_line(err)
    assert files(work) == {"x.png"}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_npy_image_with_nan_is_refused(work, capsys, no_work, bad):
    x = np.zeros((1, 3, 16, 16), np.float32)
    x[0, 1, 3, 4] = bad
    np.save(work / "x.npy", x)
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "y.npy")
    assert code == 2 and "x.npy holds 1 NaN or infinite value(s) of 768" in one_line(err)
    img = np.zeros((40, 50, 3), np.float32)
    img[5, 6, 2] = bad
    np.save(work / "img.npy", img)
    np.save(work / "b.npy", np.array([[1.0, 1, 9, 9]]))
    code, out, err = run_cli(capsys, "detect", *DET, "--image", "img.npy", "--windows", "b.npy", "-o", "f.npy")
    assert code == 2 and "img.npy holds 1 NaN or infinite value(s)" in one_line(err)
    assert files(work) == {"x.npy", "img.npy", "b.npy"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("count", [1, 4])
def test_box_csv_with_bom_or_other_delimiters_keeps_every_box(tmp_path, delimiter, bom, header, count):
    from spp_deploy.detection.boxes import load_boxes

    boxes = random_boxes(np.random.default_rng(count), count)
    lines = ([delimiter.join(["x1", "y1", "x2", "y2"])] if header else []) + \
        [delimiter.join(map(repr, row.tolist())) for row in boxes]
    (tmp_path / "b.csv").write_bytes(("\ufeff" if bom else "").encode() + ("\n".join(lines) + "\n").encode())
    np.testing.assert_array_equal(load_boxes(str(tmp_path / "b.csv")), boxes)


@pytest.mark.parametrize("name, write, message", [
    ("c.npy", lambda p: np.save(p, np.array([[1 + 2j, 1, 5, 5]])), "c.npy holds complex128 values"),
    ("t.json", lambda p: p.write_text("[[1, 1, 5, 5], [true, 1, 5, 5]]"), "t.json box 2: not a number"),
    ("s.csv", lambda p: p.write_text("1 1 5 5\n"), "s.csv line 1: 1 values, expected 4"),
])
def test_boxes_that_are_not_real_coordinates_are_refused(work, capsys, no_work, name, write, message):
    np.save(work / "img.npy", np.zeros((40, 50, 3), np.float32))
    write(work / name)
    code, out, err = run_cli(capsys, "detect", *DET, "--image", "img.npy", "--windows", name, "-o", "f.npy")
    assert code == 2 and message in one_line(err) and "ComplexWarning" not in err
    assert files(work) == {"img.npy", name}


# -- resource bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--threads", "100000"], "--threads must be <= "),
    (["--duration", "inf"], "--duration must be > 0 and finite, got inf"),
    (["--duration", "nan"], "--duration must be > 0 and finite, got nan"),
    (["--warmup-time", "inf"], "--warmup-time must be > 0 and finite"),
    (["--iterations", "99999999999999999999"], "--iterations must be <= "),
])
def test_bench_bounds_are_checked_before_any_work(work, capsys, no_work, argv, message):
    code, out, err = run_cli(capsys, "bench", "--model", TINY, "--backends", "torch", "--shapes", "1x3x16x16", *argv)
    assert code == 2 and message in one_line(err)
    assert files(work) == set()


def test_bench_thread_bound_follows_the_cores_and_the_library_checks_too():
    from spp_deploy.bench import BenchConfig, run_bench
    from spp_deploy.util.limits import max_threads, usable_cores

    assert max_threads() == 4 * usable_cores() >= 4
    model = tiny_model()
    for kw, name in [({"threads": max_threads() + 1}, "threads"), ({"duration_s": float("nan")}, "duration_s"),
                     ({"iterations": 10**20}, "iterations")]:
        with pytest.raises(UserError, match=f"^{name} must be"):
            run_bench(BenchConfig(["torch"], [(1, 3, 16, 16)], **kw), model, progress=False)


def test_detect_scale_too_large_for_memory_is_one_line(work, capsys, monkeypatch):
    import spp_deploy.detection.pipeline as pipeline
    import spp_deploy.util.limits as limits

    monkeypatch.setattr(pipeline.TorchStages, "trunk", lambda *a: pytest.fail("the trunk ran"))
    np.save(work / "img.npy", np.zeros((40, 50, 3), np.float32))
    np.save(work / "b.npy", np.array([[1.0, 1, 9, 9]]))
    monkeypatch.setattr(limits, "memory_limit", lambda: 2**30)
    code, out, err = run_cli(capsys, "detect", *DET, "--image", "img.npy", "--windows", "b.npy",
                             "--scales", "6880", "-o", "f.npy")
    line = one_line(err)
    assert code == 2 and "--scales: scale 6880 (the image resized to 6880x8600, then the trunk) needs about" in line
    assert "more than the memory available here (1 GiB)" in line and "Traceback" not in err
    assert files(work) == {"img.npy", "b.npy"}


def test_detect_memory_estimate_bounds_the_real_peak():
    """The estimate is at least what the trunk's tensors take (from a real run at a small scale)
    and grows with the pixels: a scale no machine holds is refused with the real limit."""
    from spp_deploy.detection import SppNetZF5Detector, detect
    from spp_deploy.detection.memory import trunk_bytes
    from spp_deploy.detection.pipeline import TorchStages

    stages = TorchStages(SppNetZF5Detector(hidden=8))
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() * o.element_size()))
             for m in stages.model.trunk]
    stages.trunk(np.zeros((1, 3, 96, 120), np.float32))
    for h in hooks:
        h.remove()
    assert trunk_bytes(stages.largest_activation(), 96, 120) >= 3 * 96 * 120 * 4 + max(sizes)
    with pytest.raises(UserError, match=r"scale 1000000 .* needs about .* GiB, more than the memory available here"):
        detect(np.zeros((40, 50, 3), np.float32), [[1, 1, 9, 9]], stages, 10**6)


def test_detect_memory_estimate_of_the_exported_trunk_matches_pytorch(tmp_path, monkeypatch):
    from spp_deploy.detection import SppNetZF5Detector, detect
    from spp_deploy.detection.export import export_detector
    from spp_deploy.detection.pipeline import RunnerStages, TorchStages
    import spp_deploy.util.limits as limits

    model = SppNetZF5Detector(hidden=8)
    export_detector(model, tmp_path / "det", check_parity=False)
    with RunnerStages(tmp_path / "det") as stages:
        assert stages.largest_activation() == TorchStages(model).largest_activation() > 0
        monkeypatch.setattr(limits, "memory_limit", lambda: 2**16)
        with pytest.raises(UserError, match=r"^scales: scale 64 \(the image resized to 64x80, then the trunk\)"):
            detect(np.zeros((40, 50, 3), np.float32), [[1, 1, 9, 9]], stages, 64)


# -- messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "x"])
def test_validate_channels_must_be_positive(work, capsys, no_work, value):
    code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", "m.onnx", "--channels", value)
    assert code == 2 and "argument --channels: expected a whole number >= 1" in one_line(err) and out == ""


def test_misspelled_tolerance_output_lists_the_real_names(work, capsys, tiny_onnx):
    for flag in ("--atol", "--rtol"):
        code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", tiny_onnx, "--sizes", "16x16",
                                 flag, "outptu:1e-3")
        assert code == 2 and f"{flag}: no output named 'outptu' (the outputs: output)" in one_line(err)
    code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", tiny_onnx, "--sizes", "16x16",
                             "--atol", "output:1e-3")
    assert code == 0 and "PASSED" in out


def test_build_without_tensorrt_or_shapes_says_tensorrt_is_missing(work, capsys, tiny_onnx):
    from spp_deploy.bench import unavailable_reason

    if unavailable_reason("trt") is None:
        pytest.skip("TensorRT is usable here")
    code, out, err = run_cli(capsys, "build", tiny_onnx, "-o", "m.engine")
    line = one_line(err)
    assert code == 2 and "TensorRT is not installed" in line and "shape" not in line
    assert files(work) == set()


def test_plugin_build_names_the_flag(work, capsys, build_tools):
    build_tools(cmake=True, nvcc=True)  # TensorRT's headers are what is missing (an empty root), on any machine
    code, out, err = run_cli(capsys, "plugin", "build", "--build-dir", "b", "--tensorrt-root", work)
    line = one_line(err)
    assert code == 2 and f"--tensorrt-root: TensorRT headers (NvInfer.h) not found under {work}" in line
    assert "tensorrt_root" not in line and files(work) == set()


@pytest.mark.parametrize("value", ["-2", "0"])
def test_run_top_k_must_be_positive(work, capsys, no_work, value):
    npy(work / "x.npy", (1, 3, 16, 16))
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "--top-k", value)
    assert code == 2 and "argument --top-k: expected a whole number >= 1" in one_line(err) and "top-" not in out


def test_integer_example_is_refused_without_torch_log_lines(tmp_path, capfd):
    from spp_deploy import export_onnx

    with pytest.raises(UserError, match="floating-point tensor") as e:
        export_onnx(tiny_model(), torch.zeros(1, 3, 16, 16, dtype=torch.int64), tmp_path / "m.onnx")
    assert e.value.option == "example_inputs"
    out, err = capfd.readouterr()
    assert "always_classified" not in out + err and err == ""
    assert not any(tmp_path.iterdir())


def test_weights_pickle_that_runs_code_is_named_without_the_unsafe_advice(work, capsys):
    class Calls:
        def __reduce__(self):
            return os.getpid, ()  # harmless, were it ever called

    torch.save({"conv.weight": Calls()}, work / "w.pt")
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "--weights", "w.pt",
                             "-o", "m.onnx")
    line = one_line(err)
    assert code == 2 and "w.pt contains code" in line and f"{os.getpid.__module__}.getpid" in line
    assert "weights_only" not in line and "trusted" not in line
    assert files(work) == {"w.pt"}


# -- Python API forms -------------------------------------------------------------------------------


def test_export_takes_the_command_line_forms(tmp_path):
    from spp_deploy import export_onnx

    r = export_onnx(tiny_model(), torch.randn(1, 3, 16, 16), tmp_path / "m.onnx", sizes=[(16, 16), (2, 16, 16)],
                    opset="20", dynamic="batch")
    assert [p.shape for p in r.parity if not p.skipped] == [(1, 3, 16, 16), (2, 3, 16, 16)]
    m = onnx.load(tmp_path / "m.onnx")
    assert {o.domain: o.version for o in m.opset_import}[""] == 20
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 16, 16]


@pytest.mark.parametrize("kw, option", [
    ({"tabulate_limit": -5}, "tabulate_limit"), ({"opset": "x"}, "opset"), ({"opset": 99}, "opset"),
    ({"sizes": [(0, 5)]}, "sizes"), ({"sizes": [(1, 2, 3, 4)]}, "sizes"), ({"dynamic": "a,b"}, "dynamic"),
])
def test_export_refuses_bad_argument_forms_by_name(tmp_path, kw, option):
    from spp_deploy import export_onnx

    with pytest.raises(UserError) as e:
        export_onnx(tiny_model(), torch.randn(1, 3, 16, 16), tmp_path / "m.onnx", **kw)
    assert e.value.option == option and "\n" not in str(e.value) and str(e.value).startswith(option)
    assert not any(tmp_path.iterdir())


def test_dynamic_batch_names_the_axis_not_a_letter():
    from spp_deploy.util.arguments import parse_dynamic

    assert parse_dynamic("batch") == ["batch"] and parse_dynamic(("height", "width")) == ["height", "width"]
    with pytest.raises(UserError, match="unknown dynamic axis 'bach'"):
        parse_dynamic("bach")


def test_a_plain_function_is_refused_as_a_model(tmp_path):
    from spp_deploy import export_onnx
    from spp_deploy.detection import detect

    def model(x):
        return x.mean(dim=(2, 3))

    with pytest.raises(UserError, match="expected a torch.nn.Module, got function 'model'") as e:
        export_onnx(model, torch.randn(1, 3, 16, 16), tmp_path / "m.onnx")
    assert e.value.option == "model" and not any(tmp_path.iterdir())
    with pytest.raises(UserError, match="^detector: expected a detector module .* got function 'model'") as e:
        detect(np.zeros((40, 50, 3), np.float32), [[1, 1, 9, 9]], model)


def test_detect_takes_one_scale_and_empty_box_lists_and_refuses_fractions():
    from spp_deploy.detection import SppNetZF5Detector, detect

    det = SppNetZF5Detector(hidden=8)
    img = np.random.default_rng(2).uniform(0, 255, (40, 50, 3)).astype(np.float32)
    boxes = random_boxes(np.random.default_rng(3), 3, 20)
    np.testing.assert_array_equal(detect(img, boxes, det, 48), detect(img, boxes, det, [48]))
    np.testing.assert_array_equal(detect(img, boxes, det, 48.0), detect(img, boxes, det, (48,)))
    assert detect(img, [], det, 48).shape == detect(img, np.zeros((0, 4)), det, 48).shape == (0, 8)
    for scales in [(100.7,), 0, "48,x", True]:
        with pytest.raises(UserError, match="expected distinct integers >= 1") as e:
            detect(img, boxes, det, scales)
        assert e.value.option == "scales"


# -- model files ------------------------------------------------------------------------------------


def test_model_file_imports_its_sibling_module(work, capsys, monkeypatch):
    pkg = work / "models"
    pkg.mkdir()
    (pkg / "helper_c20.py").write_text("from spp_deploy import SpatialPyramidPool\nLEVELS = [2, 1]\n"
                                      "def pool():\n    return SpatialPyramidPool(LEVELS)\n")
    (pkg / "net.py").write_text("import torch\nimport helper_c20\n\n"
                                "def make(channels=3):\n"
                                "    import helper_c20 as lazy  # imported again while the factory runs\n"
                                "    return torch.nn.Sequential(torch.nn.Conv2d(channels, 2, 3), lazy.pool())\n")
    monkeypatch.delitem(sys.modules, "helper_c20", raising=False)
    npy(work / "x.npy", (1, 3, 12, 12))
    before = list(sys.path)
    try:
        code, out, err = run_cli(capsys, "run", "--model", "models/net.py:make", "--model-kwargs",
                                 json.dumps({"channels": 3}), "-i", "x.npy", "-o", "y.npy")
    finally:
        sys.modules.pop("helper_c20", None)
    assert code == 0, err
    assert np.load(work / "y.npy").shape == (1, 2 * 5) and sys.path == before
