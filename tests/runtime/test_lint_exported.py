"""The TensorRT lint (``lint.py``) on exported files: every zoo model passes in both modes, SPP function
bodies are a warning per TensorRT version, FP16 windows an error for the window plugin."""

import onnx
import pytest

from spp_deploy.sources import zoo
from spp_deploy.contract import plugin_nodes
from exports import MODES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.zoo_names())
def test_exported_files_pass_the_tensorrt_lint(exported, cli, name, mode):
    from spp_deploy.runtime.trt.lint import errors, lint_tensorrt

    assert errors(lint_tensorrt(onnx.load(exported[name, mode]))) == []
    code, out, _ = cli("check", "--target", "tensorrt", exported[name, mode])
    assert code == 0 and "PASSED" in out


def test_lint_warns_by_default_about_bodies_per_version(pair, tmp_path, cli):
    from spp_deploy.contract import strip_functions
    from spp_deploy.runtime.trt.lint import lint_tensorrt

    m = onnx.load(pair["plugin"])
    body = [f for f in lint_tensorrt(m) if f.op == "local function"]
    assert len(body) == 1 and body[0].severity == "warning"
    msg = body[0].message
    assert "< 10.7 inlines" in msg and "10.7-10.14 use the plugin if it is registered" in msg
    assert ">= 10.15 use the plugin only for nodes with plugin_namespace or" in msg and "lack it" not in msg
    code, out, _ = cli("check", "--target", "tensorrt", pair["plugin"])  # no -v: warnings are shown
    assert code == 0 and "< 10.7 inlines" in out
    assert not [f for f in lint_tensorrt(strip_functions(m)) if f.op == "local function"]
    node = plugin_nodes(m)[0]
    keep = [a for a in node.attribute if a.name != "plugin_namespace"]
    del node.attribute[:]
    node.attribute.extend(keep)
    found = lint_tensorrt(m)
    errs = [f for f in found if f.severity == "error"]
    assert [f.node for f in errs] == [node.name] and "lacks the plugin_namespace attribute" in errs[0].message
    assert "(1 node(s) lack it)" in [f for f in found if f.op == "local function"][0].message


def test_lint_refuses_fp16_windows_for_the_window_plugin(window_file):
    """The window plugin takes FP32 windows only (its input 1 is declared FP32): an FP16 windows input is an error."""
    from spp_deploy.runtime.trt.lint import lint_tensorrt

    m = onnx.load(window_file)
    node = plugin_nodes(m)[0]
    assert not [f for f in lint_tensorrt(m) if f.severity == "error"]
    win = next(vi for vi in m.graph.input if vi.name == node.input[1])
    win.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    errs = [f for f in lint_tensorrt(m) if f.severity == "error"]
    assert [f.node for f in errs] == [node.name] and "FP32 windows only" in errs[0].message
