"""Standard-op ONNX lowering: exact in ONNX Runtime at every legal size, NaN where illegal."""

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle as reference
from spp_deploy import SpatialPyramidPool
from spp_deploy.ops import bins
from spp_deploy.export import to_onnx_model

CONFIGS = [(rule, mode, order) for rule in bins.RULES for mode in bins.MODES for order in bins.ORDERS]
LEVELS = {"adaptive": [6, 3, 2, 1], "ceil_pad": [4, 2, 1], "floor_kernel": [1, 2, 4], "rounded": [4, 2, 1]}


@functools.lru_cache(maxsize=None)
def session(rule: str, mode: str, order: str, levels: tuple | None = None):
    op = SpatialPyramidPool(levels or LEVELS[rule], mode, rule, order)
    proto = to_onnx_model(op, torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)))
    return op, proto, ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("rule,mode,order", CONFIGS)
@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 300), W=st.integers(1, 300), seed=st.integers(0, 2**16))
def test_onnx_matches_eager_and_reference(rule, mode, order, B, H, W, seed):
    op, _, sess = session(rule, mode, order)
    x = np.random.default_rng(seed).standard_normal((B, 3, H, W), dtype=np.float32)
    y = sess.run(None, {"input": x})[0]
    ref = reference.pyramid(x, op.levels, mode, rule, order)
    if ref is None:  # illegal size: the graph says so with an all-NaN output
        assert y.shape == (B, 3 * sum(n * n for n in op.levels)) and np.isnan(y).all()
        return
    eager = op(torch.from_numpy(x)).numpy()
    if mode == "max":
        assert np.array_equal(y, eager) and np.array_equal(y, ref)
    else:  # within float32's worst-case summation error of the exact means
        reference.assert_within(y, ref, reference.avg_error_bound(x, op.levels, rule, order))


def test_specific_sizes_rounded_ties():
    # ties: S odd for n=2, S = 2 mod 4 for n=4, S = 3 mod 6 for n=6
    op, _, sess = session("rounded", "max", "bin_major", (6, 4, 2))
    for H, W in [(7, 9), (10, 14), (15, 21), (27, 33), (53, 25)]:
        x = np.random.default_rng(H).standard_normal((1, 3, H, W), dtype=np.float32)
        assert np.array_equal(sess.run(None, {"input": x})[0], reference.pyramid(x, [6, 4, 2], "max", "rounded", "bin_major"))


@pytest.mark.parametrize("rule", bins.RULES)
def test_nan_input_propagates_like_torch(rule):
    op, _, sess = session(rule, "max", "channel_major")
    x = torch.randn(2, 3, 32, 32)
    x[0, 0, 3, 4] = float("nan")
    x[1, 2, 31, 31] = float("nan")
    x[1, 1, 16, 0] = float("nan")
    y = sess.run(None, {"input": x.numpy()})[0]
    eager = op(x).numpy()
    assert np.isnan(eager).any()
    assert np.array_equal(y, eager, equal_nan=True)


def test_graph_is_symbolic_checked_and_standard():
    _, proto, _ = session("adaptive", "max", "channel_major")
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    dims = inferred.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    out = inferred.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "batch" and out[1].dim_value == 3 * (36 + 9 + 4 + 1)
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)
    assert proto.ir_version <= 13


def test_feature_dim_static_for_every_rule():
    for rule in bins.RULES:
        _, proto, _ = session(rule, "avg", "bin_major")
        out = onnx.shape_inference.infer_shapes(proto, strict_mode=True).graph.output[0]
        assert out.type.tensor_type.shape.dim[1].dim_value == 3 * sum(n * n for n in LEVELS[rule])
