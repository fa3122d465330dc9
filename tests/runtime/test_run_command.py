"""``spp-deploy run`` on exported files: .npy and image inputs, bad input in one line, missing files."""

import numpy as np
import pytest
import torch

from spp_deploy.sources import zoo


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
