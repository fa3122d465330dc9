"""The export command end to end, and one-line errors for bad input (no traceback, no file)."""

import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import tiny
from spp_deploy.sources import zoo



def test_export_zf5_runs_at_other_sizes(tmp_path, cli):
    path = tmp_path / "m.onnx"
    code, out, err = cli("export", "--model", "zoo:sppnet-zf5", "--input-shape", "1x3x224x224", "-o", str(path))
    assert code == 0, err
    assert "PASSED" in out and path.is_file()
    model = zoo.create("sppnet-zf5")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 100, 163), (4, 3, 371, 229)]:
        x = torch.randn(*shape)
        y = sess.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            ref = model(x).numpy()
        assert y.shape == ref.shape
        assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


def test_export_seed000_skips_nothing_it_cannot_run(tmp_path, cli):
    path = tmp_path / "s.onnx"
    code, out, err = cli("export", "--model", "zoo:sppnet-pytorch", "--sizes", "16x16,15x40,2x20x13", "-o", str(path))
    assert code == 0, err
    # The seed's view(num_sample=1, -1) breaks batch 2: validation skips it with the reason.
    assert out.count("PASSED") == 2 and "2x512x20x13  skipped:" in out


def test_export_user_file_with_weights(tmp_path, cli):
    src = tmp_path / "usermodel.py"  # a user's model file, outside sys.path: tests/support/tiny.py's model
    shutil.copyfile(tiny.__file__, src)
    torch.manual_seed(1)
    ckpt = tmp_path / "w.pt"
    torch.save({"state_dict": tiny.Tiny(classes=5).state_dict()}, ckpt)
    path = tmp_path / "u.onnx"
    code, out, err = cli("export", "--model", f"{src}:Tiny", "--model-kwargs", '{"classes": 5}',
                         "--weights", str(ckpt), "--input-shape", "2x3x20x24", "-o", str(path))
    assert code == 0, err
    assert path.is_file()


@pytest.mark.parametrize("argv,message", [
    (["--model", "no_such_module_xyz:Net"], "cannot import module 'no_such_module_xyz'"),
    (["--model", "zoo:nope"], "unknown zoo model 'nope'"),
    (["--model", "spp_deploy.sources.zoo:zoo_names"], "returned list, not a torch.nn.Module"),
    (["--model", "zoo:sppnet-zf5", "--input-shape", "1x3x224"], "expected 4 dims"),
    (["--model", "zoo:sppnet-zf5", "--input-shape", "1x3xax224"], "bad shape '1x3xax224'"),
    (["--model", "zoo:sppnet-zf5", "--input-shape", "1x3x4x4"], "cannot run at input shape 1x3x4x4"),
    (["--model", "zoo:sppnet-pytorch", "--input-shape", "1x512x8x8"], "'ceil_pad' is not defined"),
    (["--model", "zoo:sppnet-zf5", "--model-kwargs", "{bad"], "not valid JSON"),
    (["--model", "zoo:sppnet-zf5", "--spp-impl", "magic"], "argument --spp-impl: invalid choice: 'magic'"),
    (["--model", "zoo:sppnet-zf5", "--opset", "9"], "argument --opset: invalid choice: 9"),
    (["--model", "zoo:sppnet-zf5", "--dynamic", "batch,depth"], "unknown dynamic axis 'depth'"),
    (["--model", "zoo:sppnet-zf5", "--weights", "/nonexistent/w.pt"], "weights file not found"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, cli, argv, message):
    path = tmp_path / "out.onnx"
    code, out, err = cli("export", *argv, "-o", str(path))
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory(tmp_path, cli):
    code, _, err = cli("export", "--model", "zoo:sppnet-zf5", "-o", str(tmp_path / "nope" / "m.onnx"))
    assert code == 2 and "output directory does not exist" in err


def test_unknown_rule_in_user_model(tmp_path, cli):
    src = tmp_path / "bad.py"
    src.write_text("from spp_deploy import SpatialPyramidPool\ndef make():\n    return SpatialPyramidPool([2], rule='keras')\n")
    code, _, err = cli("export", "--model", f"{src}:make", "--input-shape", "1x3x8x8", "-o", str(tmp_path / "m.onnx"))
    assert code == 2 and "unknown bin rule 'keras'" in err


def test_pickled_full_model_is_refused(tmp_path, cli):
    ckpt = tmp_path / "full.pt"
    torch.save(zoo.create("sppnet-pytorch", hidden=8), ckpt)
    code, _, err = cli("export", "--model", "zoo:sppnet-pytorch", "--model-kwargs", '{"hidden": 8}',
                       "--weights", str(ckpt), "-o", str(tmp_path / "m.onnx"))
    assert code == 2 and "pickled object, not a state dict" in err
    assert not (tmp_path / "m.onnx").exists()


def test_parity_failure_refuses_to_write(tmp_path, monkeypatch, cli):
    """A lowering that is wrong must be caught by export's own parity check."""
    from spp_deploy.export.lowering import pyramid as graph

    real = graph.build_pyramid

    def broken(b, x, cfg):
        out = real(b, x, cfg)
        return b.op("Mul", [out.tensor, b.const(1.001, np.float32).tensor], np.float32)

    monkeypatch.setattr(graph, "build_pyramid", broken)
    path = tmp_path / "m.onnx"
    code, _, err = cli("export", "--model", "zoo:sppnet-pytorch", "--model-kwargs", '{"hidden": 8}', "-o", str(path))
    assert code == 1 and "differs from PyTorch" in err
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_has_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "spp_deploy", "export", "--model", "zoo:nope", "-o", str(tmp_path / "x.onnx")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("spp-deploy: error: unknown zoo model") and "Traceback" not in r.stderr


def test_plugin_build_without_tensorrt_is_one_line(tmp_path, cli, build_tools):
    build_tools(cmake=True, nvcc=True)  # TensorRT is what is missing, on any machine
    code, _, err = cli("plugin", "build", "--build-dir", str(tmp_path / "b"), "--tensorrt-root", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"TensorRT headers (NvInfer.h) not found under {tmp_path}" in err
    assert not (tmp_path / "b").exists()
