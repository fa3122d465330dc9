"""SPP-net detection pipeline: scale choice and box mapping as the spec defines them, the
multi-scale grouping, ONNX Runtime (trunk + head files) against PyTorch, the CLI and its
one-line errors on bad box files."""

import json
import math

import numpy as np
import pytest
import torch

from spp_deploy.detection.pipeline import RunnerStages, detect
from spp_deploy.detection.scales import FIVE_SCALES, choose_scales, map_boxes, preprocess, resized_size
from spp_deploy.sources import zoo

HIDDEN = 32
SCALES = (100, 200, 300)  # small scales keep the trunk cheap; the pipeline is the same at 688


@pytest.fixture(scope="module")
def model():
    return zoo.create("sppnet-zf5-det", hidden=HIDDEN)


def _image_and_boxes(rng, H=90, W=120, R=60):
    img = rng.uniform(0, 255, (H, W, 3)).astype(np.float32)
    x1, y1 = rng.integers(1, W, R), rng.integers(1, H, R)
    boxes = np.stack([x1, y1, np.minimum(x1 + rng.integers(0, W, R), W), np.minimum(y1 + rng.integers(0, H, R), H)], 1)
    big = rng.random(R) < 0.3  # about the whole image: the smaller scales
    boxes[big] = np.stack([rng.integers(1, W // 8, R), rng.integers(1, H // 8, R),
                           rng.integers(W - W // 8, W + 1, R), rng.integers(H - H // 8, H + 1, R)], 1)[big]
    return img, boxes.astype(np.float64)


def test_scale_choice_follows_the_spec():
    rng = np.random.default_rng(0)
    H, W = 375, 500
    img, boxes = _image_and_boxes(rng, H, W, 300)
    got = choose_scales(boxes, H, W, FIVE_SCALES, 208.0)
    for (x1, y1, x2, y2), k in zip(boxes, got):
        v = 208 * min(H, W) / math.sqrt((x2 - x1 + 1) * (y2 - y1 + 1))
        expected = math.floor(v + 0.5)  # half away from zero (v > 0)
        dist = [abs(s - expected) for s in FIVE_SCALES]
        assert k == dist.index(min(dist))
    # a tie (expected 528, halfway between 480 and 576) goes to the smaller scale
    assert choose_scales(np.array([[1.0, 1.0, 208.0, 208.0]]), 528, 700, FIVE_SCALES, 208.0).tolist() == [0]


def test_box_mapping_and_resize():
    assert resized_size(375, 500, 688) == (688, 917) and resized_size(500, 375, 688) == (917, 688)
    corners = map_boxes(np.array([[1.0, 1.0, 375.0, 375.0]]), 375, 500, 688)
    assert np.allclose(corners, [[1, 1, 688, 688]], rtol=0, atol=1e-12)
    x = preprocess(np.full((20, 30, 3), [10.0, 20.0, 30.0], dtype=np.float32), 40)
    assert x.shape == (1, 3, 40, 60)  # BGR minus 128, bilinear keeps a constant image constant
    assert np.allclose(x[0, :, 5, 5], [30 - 128, 20 - 128, 10 - 128])


def test_multi_scale_is_single_scale_per_window(model):
    """Each window's multi-scale features equal the single-scale features at the scale it chose."""
    rng = np.random.default_rng(1)
    img, boxes = _image_and_boxes(rng)
    multi = detect(img, boxes, model, SCALES)
    which = choose_scales(boxes, *img.shape[:2], SCALES, 208.0)
    assert len(set(which.tolist())) > 1
    for k, s in enumerate(SCALES):
        single = detect(img, boxes, model, (s,))
        assert np.array_equal(multi[which == k], single[which == k])
    assert detect(img, boxes[:0], model, SCALES).shape == (0, HIDDEN)


def test_single_scale_is_trunk_then_head(model):
    rng = np.random.default_rng(2)
    img, boxes = _image_and_boxes(rng, R=5)
    x = torch.from_numpy(preprocess(img, 96))
    win = torch.from_numpy(np.concatenate([np.zeros((5, 1)), map_boxes(boxes, 90, 120, 96)], 1))
    with torch.no_grad():
        want = model(x, win).numpy()
    assert np.array_equal(detect(img, boxes, model, (96,)), want)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    from spp_deploy.detection.export import export_detector

    d = tmp_path_factory.mktemp("det") / "zf5"
    export_detector(model, d, check_parity=False)
    return d


def test_onnx_runtime_matches_pytorch(model, exported):
    rng = np.random.default_rng(3)
    img, boxes = _image_and_boxes(rng, R=200)
    ref = detect(img, boxes, model, SCALES)
    with RunnerStages(exported, "ort-cpu") as stages:
        got = detect(img, boxes, stages, SCALES)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()
    meta = json.loads((exported / "detector.json").read_text())
    assert meta["projection"] == {"stride": 16.0, "offset0": 21.0, "offset": 6.5} and meta["area_constant"] == 208.0


def test_cli_torch_and_onnx(cli, model, exported, tmp_path):
    rng = np.random.default_rng(4)
    img, boxes = _image_and_boxes(rng, R=20)
    np.save(tmp_path / "img.npy", img)
    np.savetxt(tmp_path / "boxes.csv", boxes, delimiter=",", header="x1,y1,x2,y2", comments="")
    (tmp_path / "boxes.json").write_text(json.dumps({"boxes": boxes.tolist()}))
    code, out, err = cli("detect", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", json.dumps({"hidden": HIDDEN}),
                         "--image", tmp_path / "img.npy", "--windows", tmp_path / "boxes.csv", "--scales", "64,96",
                         "-o", tmp_path / "t.npy")
    assert code == 0, err
    assert "20 windows" in out and np.array_equal(np.load(tmp_path / "t.npy"), detect(img, boxes, model, (64, 96)))
    code, out, err = cli("detect", "--onnx", exported, "--image", tmp_path / "img.npy", "--windows",
                         tmp_path / "boxes.json", "--scales", "64,96", "-o", tmp_path / "o.npy")
    assert code == 0, err
    a, b = np.load(tmp_path / "o.npy"), np.load(tmp_path / "t.npy")
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


@pytest.mark.parametrize("name, text, message", [
    ("nan.csv", "1,1,5,5\n2,nan,4,4\n", "nan.csv line 2: NaN or infinite"),
    ("cols.csv", "1,1,5,5\n1,2,3\n", "cols.csv line 2: 3 values, expected 4"),
    ("inv.csv", "x1,y1,x2,y2\n1,1,5,5\n9,1,5,5\n", "inv.csv line 3: x2 < x1 or y2 < y1"),
    ("cols.json", "[[1, 1, 5, 5], [1, 1, 5, 5, 7]]", "cols.json box 2: 5 values"),
    ("bad.json", "{\"box\": []}", "expected a list"),
    ("word.csv", "1,1,5,5\n1,a,5,5\n", "word.csv line 2: not a number"),
    ("boxes.txt", "1,1,5,5\n", "unknown format .txt"),
])
def test_bad_box_files_are_one_line_errors(cli, tmp_path, name, text, message):
    np.save(tmp_path / "img.npy", np.zeros((40, 50, 3), dtype=np.float32))
    (tmp_path / name).write_text(text)
    code, out, err = cli("detect", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}',
                         "--image", tmp_path / "img.npy", "--windows", tmp_path / name, "-o", tmp_path / "f.npy")
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f.npy").exists()


def test_bad_npy_boxes_and_missing_files(cli, tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((40, 50, 3), dtype=np.float32))
    np.save(tmp_path / "b.npy", np.array([[1.0, 1, 5, 5], [3, 3, 2, 9]]))
    for argv, message in [
        (["--windows", tmp_path / "b.npy"], "b.npy box 2: x2 < x1"),
        (["--windows", tmp_path / "none.csv"], "box file not found"),
        (["--windows", tmp_path / "b.npy", "--scales", "688,688"], "distinct integers"),
        (["--windows", tmp_path / "b.npy", "--backend", "ort-cpu"], "needs --onnx DIR"),
    ]:
        code, _, err = cli("detect", "--model", "zoo:sppnet-zf5-det", "--image", tmp_path / "img.npy", *argv)
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_zoo_lists_the_detector_and_weights_load(cli, tmp_path):
    code, out, _ = cli("zoo")
    assert code == 0 and "zoo:sppnet-zf5-det" in out
    other = zoo.create("sppnet-zf5-det", seed=7, hidden=HIDDEN)
    torch.save(other.state_dict(), tmp_path / "w.pt")
    rng = np.random.default_rng(6)
    img, boxes = _image_and_boxes(rng, R=4)
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "b.npy", boxes)
    code, _, err = cli("detect", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", json.dumps({"hidden": HIDDEN}),
                       "--weights", tmp_path / "w.pt", "--image", tmp_path / "img.npy", "--windows", tmp_path / "b.npy",
                       "--scales", "100", "-o", tmp_path / "f.npy")
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "f.npy"), detect(img, boxes, other, (100,)))


def test_export_detector_refusals_are_one_line(cli, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "head.onnx").write_text("keep me")
    for argv, message in [
        (["--model", "zoo:sppnet-zf5", "-o", tmp_path / "x"], "is not a detector"),
        (["--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}', "-o", tmp_path / "d"],
         "head.onnx already exists: not replaced; to replace it, use: --force"),
    ]:
        code, _, err = cli("export-detector", *argv)
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists() and (tmp_path / "d" / "head.onnx").read_text() == "keep me"
    code, _, err = cli("detect", "--onnx", tmp_path / "d", "--image", tmp_path / "none.npy", "--windows", "b.csv")
    assert code != 0 and "image file not found" in err


def test_tensorrt_backend_runs_the_trunk_engine_and_the_head_in_onnx_runtime(model, exported, monkeypatch):
    """Backend trt: the trunk from --engine, the head from the directory's head.onnx in ONNX Runtime
    CPU (TensorRT has no float64). No TensorRT here: an ONNX Runtime session on trunk.onnx stands in
    for the engine, so what is checked is the wiring, not TensorRT."""
    from spp_deploy.runtime import backends
    from spp_deploy.runtime.ort_runner import OrtRunner

    real, made = backends.make_runner, []

    def make_runner(backend, **kw):
        made.append((backend, kw.get("engine"), kw.get("onnx")))
        return OrtRunner(exported / "trunk.onnx") if backend == "trt" else real(backend, **kw)

    monkeypatch.setattr(backends, "make_runner", make_runner)
    rng = np.random.default_rng(9)
    img, boxes = _image_and_boxes(rng, R=30)
    with RunnerStages(exported, "trt", engine="trunk.engine") as stages:
        got = detect(img, boxes, stages, (100, 200))
    assert made == [("trt", "trunk.engine", None), ("ort-cpu", None, exported / "head.onnx")]
    ref = detect(img, boxes, model, (100, 200))
    assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_single_input_commands_point_a_detector_to_export_detector(cli, tmp_path):
    code, _, err = cli("export", "--model", "zoo:sppnet-zf5-det", "-o", tmp_path / "m.onnx")
    assert code != 0 and "is a detector" in err and "export-detector" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("impl", ["standard", "plugin"])
def test_float32_windows_head_for_tensorrt(cli, model, tmp_path, impl):
    """--windows-dtype float32: head.onnx takes FLOAT windows (TensorRT has no float64), passes the
    parity check, is recorded in detector.json, and `detect` through it equals the eager pipeline
    fed the same float32 windows (boxes mapped in float64, then cast once)."""
    from spp_deploy.detection.export import export_detector
    from spp_deploy.detection.pipeline import TorchStages

    d = tmp_path / "det32"
    if impl == "standard":  # the library option
        meta = export_detector(model, d, windows_dtype="float32")
        assert meta["head_parity"]
    else:  # the CLI flag (parity checked: no --no-check)
        code, out, err = cli("export-detector", "--model", "zoo:sppnet-zf5-det", "--model-kwargs",
                             json.dumps({"hidden": HIDDEN}), "--spp-impl", "plugin", "--windows-dtype", "float32",
                             "-o", d)
        assert code == 0, err
        assert "float32 windows" in out and "head parity" in out
    import onnx

    head = onnx.load(d / "head.onnx")
    types = {i.name: i.type.tensor_type.elem_type for i in head.graph.input}
    assert types["windows"] == onnx.TensorProto.FLOAT
    assert json.loads((d / "detector.json").read_text())["windows_dtype"] == "float32"
    rng = np.random.default_rng(12)
    img, boxes = _image_and_boxes(rng, R=150)
    with RunnerStages(d, "ort-cpu") as stages:
        got = detect(img, boxes, stages, SCALES)
    ref = detect(img, boxes, TorchStages(model, "float32"), SCALES)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_bad_windows_dtype_is_a_one_line_error(cli, model, tmp_path):
    from spp_deploy.detection.export import export_detector
    from spp_deploy.util.errors import UserError

    code, _, err = cli("export-detector", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}',
                       "--windows-dtype", "float16", "-o", tmp_path / "d")
    assert code == 2 and "--windows-dtype" in err and "float16" in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(UserError, match="^windows_dtype: 'double' is not a windows dtype"):
        export_detector(model, tmp_path / "d", windows_dtype="double")
    assert not list(tmp_path.iterdir())
