"""The ONNX Runtime runner (``runtime/ort_runner.py``): feed errors, specs, providers, the plugin
library for the TensorRT provider, a corrupt file in one line."""

import numpy as np
import pytest

from spp_deploy.util.errors import UserError
from spp_deploy.runtime.ort_runner import OrtRunner


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
