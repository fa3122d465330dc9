"""Finding and loading the plugin library (``runtime/trt/plugin_mode.py``)."""

import onnx
import pytest

from spp_deploy.errors import UserError
from spp_deploy.runtime.trt import plugin_mode
from trt_cases import fake_trt


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
