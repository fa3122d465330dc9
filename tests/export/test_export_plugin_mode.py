"""Plugin-mode export: one custom node per pyramid that ONNX Runtime still runs exactly."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import oracle as reference
from spp_deploy import SpatialPyramidPool
from spp_deploy.ops import bins
from spp_deploy.export import to_onnx_model
from spp_deploy.contract import SPP_DOMAIN, SPP_OP, strip_functions

SIZES = [(1, 1), (2, 3), (5, 5), (7, 9), (8, 9), (13, 13), (16, 16), (18, 19), (17, 31), (31, 17), (53, 25), (64, 70), (101, 149)]


@pytest.mark.parametrize("rule", bins.RULES)
@pytest.mark.parametrize("mode", bins.MODES)
def test_plugin_mode_file_runs_exactly_in_ort(rule, mode):
    levels = [1, 2, 4] if rule == "floor_kernel" else [6, 3, 2, 1]
    op = SpatialPyramidPool(levels, mode, rule, "bin_major" if rule == "rounded" else "channel_major")
    proto = to_onnx_model(op, torch.randn(1, 4, 20, 20), spp_impl="plugin")
    (node,) = proto.graph.node
    assert (node.domain, node.op_type) == (SPP_DOMAIN, SPP_OP)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["levels"] == levels and attrs["bins"] == rule.encode() and attrs["mode"] == mode.encode()
    assert attrs["plugin_version"] == b"1" and "plugin_namespace" in attrs
    assert [(f.domain, f.name) for f in proto.functions] == [(SPP_DOMAIN, SPP_OP)]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    legal = 0
    for H, W in SIZES:
        x = np.random.default_rng(H * W).standard_normal((2, 4, H, W), dtype=np.float32)
        y = sess.run(None, {"input": x})[0]
        ref = reference.pyramid(x, levels, mode, rule, op.order)
        if ref is None:
            assert np.isnan(y).all()
            continue
        legal += 1
        if mode == "max":
            assert np.array_equal(y, ref)
        else:  # within float32's worst-case summation error of the exact means
            reference.assert_within(y, ref, reference.avg_error_bound(x, levels, rule, op.order))
    assert legal >= 3


def test_two_configs_get_two_overloads():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = SpatialPyramidPool([4, 2, 1], "max", "rounded")
            self.b = SpatialPyramidPool([3, 1], "avg", "ceil_pad", "bin_major")

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x * 2)], 1)

    model = Two()
    proto = to_onnx_model(model, torch.randn(1, 3, 20, 20), spp_impl="plugin")
    assert sorted(f.overload for f in proto.functions) == ["", "cfg1"]
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 17, 31)
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_strip_functions_leaves_only_the_plugin_node():
    proto = to_onnx_model(SpatialPyramidPool([2, 1]), torch.randn(1, 2, 8, 8), spp_impl="plugin")
    stripped = strip_functions(proto)
    assert len(proto.functions) == 1 and len(stripped.functions) == 0
    assert [n.op_type for n in stripped.graph.node] == [SPP_OP]
