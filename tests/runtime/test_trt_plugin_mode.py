"""Plugin-mode files for TensorRT (``runtime/trt/plugin_mode.py``): finding and loading the plugin
library, and the SPP function bodies stripped before the parser sees them."""

import onnx
import pytest

from spp_deploy.sources import zoo
from spp_deploy.contract import plugin_nodes
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import plugin_mode
from spp_deploy.runtime.trt.plugin_mode import is_plugin_mode, prepare_for_parser
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
