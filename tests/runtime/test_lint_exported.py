"""Every zoo model's exported file, in both modes, passes the TensorRT lint (``lint.py``)."""

import onnx
import pytest

from spp_deploy import zoo
from zoo_files import MODES


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.zoo_names())
def test_exported_files_pass_the_tensorrt_lint(exported, cli, name, mode):
    from spp_deploy.lint import errors, lint_tensorrt

    assert errors(lint_tensorrt(onnx.load(exported[name, mode]))) == []
    code, out, _ = cli("check", "--target", "tensorrt", exported[name, mode])
    assert code == 0 and "PASSED" in out
