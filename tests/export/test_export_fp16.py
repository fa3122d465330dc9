"""An fp16 export: half graph I/O and weights, checked against the float32 model, validated and
checked by the CLI."""

import onnx
import pytest
import torch

from spp_deploy import export_onnx
from spp_deploy.sources import zoo


@pytest.mark.slow
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
