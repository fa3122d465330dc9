"""Nearest upsampling exports bit-exactly with dynamic sizes: ONNX Runtime's nearest
``Resize`` maps output pixels back by ``dst / (out / in)`` and picks another source pixel than
PyTorch's ``floor(dst * (float)in / out)`` at some sizes (4 -> 82, 94, 110), pools before it or not.
Export traces each 4-D nearest ``F.interpolate`` as gathers with PyTorch's indices."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

import public_pyramids as P
from spp_deploy import export_onnx
from spp_deploy.export.nearest import source_index

# (H, W) where some level n -> S upsampling of a 1, 2, 3, 6 pyramid differs in ONNX Runtime's Resize
SIZES = [(82, 94), (110, 41), (94, 110), (13, 17), (41, 82), (7, 5)]


def _sizes_where_resize_differs(levels, sizes):
    """(S, n) pairs where Resize's float index dst / (S / n) differs from PyTorch's: the test data."""
    out = []
    for S in sizes:
        for n in levels:
            dst = np.arange(S, dtype=np.float32)
            ort_idx = np.minimum(np.floor(dst / (np.float32(S) / np.float32(n))), n - 1)
            torch_idx = F.interpolate(torch.arange(n, dtype=torch.float32).view(1, 1, 1, n), size=(1, S),
                                      mode="nearest").view(-1).numpy()
            if not np.array_equal(ort_idx, torch_idx):
                out.append((S, n))
    return out


def test_the_sizes_exercise_the_difference():
    """The parity sizes below are ones where a Resize-based file is wrong (else the tests prove nothing)."""
    differ = _sizes_where_resize_differs((2, 3, 6), sorted({s for hw in SIZES for s in hw}))
    assert {S for S, _ in differ} >= {82, 94, 110}


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _ops(path):
    return {n.op_type for n in onnx.load(str(path)).graph.node}


class MaxPyramidNearest(nn.Module):
    """Pooling only: adaptive max to n x n, nearest back to H x W, concatenated with the input."""

    def __init__(self, bins=(1, 2, 3, 6)):
        super().__init__()
        self.bins = bins

    def forward(self, x):
        outs = [x] + [F.interpolate(F.adaptive_max_pool2d(x, n), size=x.shape[2:], mode="nearest") for n in self.bins]
        return torch.cat(outs, 1)


@pytest.mark.slow
def test_pspnet_ppm_with_nearest_upsampling_matches_at_the_sizes_resize_gets_wrong(tmp_path):
    torch.manual_seed(0)
    model = P.PSPNetHead(mode="nearest").eval()
    path = tmp_path / "psp.onnx"
    export_onnx(model, torch.randn(1, 3, 24, 20), path)
    assert "Resize" not in _ops(path)
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        x = rng.standard_normal((2, 3, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out = _run(path, x)
        assert out.shape == ref.shape
        assert float(np.abs(out - ref).max()) <= 1e-5 * float(np.abs(ref).max()), (h, w)


@pytest.fixture(scope="module")
def max_pyramid(tmp_path_factory):
    model = MaxPyramidNearest().eval()
    path = tmp_path_factory.mktemp("nearest") / "max.onnx"
    export_onnx(model, torch.randn(1, 2, 24, 20), path)
    return model, path


def _check_max(max_pyramid, h, w, seed):
    model, path = max_pyramid
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w), dtype=np.float32)
    x[0, 1, h // 2, w // 3] = np.nan
    np.testing.assert_array_equal(_run(path, x), model(torch.from_numpy(x)).numpy(), err_msg=f"{(h, w)}")


def test_max_pyramid_with_nearest_upsampling_is_bit_identical(max_pyramid):
    for h, w in SIZES:
        _check_max(max_pyramid, h, w, 1)


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 160), w=st.integers(1, 160), seed=st.integers(0, 2**31))
def test_max_pyramid_at_random_sizes(max_pyramid, h, w, seed):
    _check_max(max_pyramid, h, w, seed)


class Upsample(nn.Module):
    """Only a nearest upsampling, written one of the ways users write it."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.up = nn.Upsample(size=(82, 110)) if how == "module-size" else nn.Upsample(scale_factor=3)

    def forward(self, x):
        if self.how == "upsample_nearest":
            return F.upsample_nearest(x, size=(x.shape[2] * 20 + 2, x.shape[3] * 27 + 2))
        if self.how == "size-tuple-int":
            return F.interpolate(x, size=(int(x.shape[2]) * 23 + 2, 94), mode="nearest")
        return self.up(x)


@pytest.mark.filterwarnings("ignore:.*upsample_nearest.*deprecated")
@pytest.mark.parametrize("how,route", [("module-size", "dynamo"), ("module-scale", "dynamo"),
                                       ("upsample_nearest", "dynamo"), ("size-tuple-int", "dynamo"),
                                       ("module-size", "torchscript"), ("upsample_nearest", "torchscript")])
def test_plain_nearest_upsampling_is_bit_identical_at_every_size(tmp_path, how, route):
    model = Upsample(how).eval()
    path = tmp_path / "up.onnx"
    assert export_onnx(model, torch.randn(1, 2, 5, 4), path, routes=(route,)).route == route
    assert "Resize" not in _ops(path)
    rng = np.random.default_rng(2)
    for h, w in [(4, 4), (2, 3), (1, 1), (7, 11), (4, 5), (13, 2)]:
        x = rng.standard_normal((2, 2, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(_run(path, x), ref, err_msg=f"{(h, w)}")


def test_a_fractional_scale_factor_is_left_to_the_exporter(tmp_path):
    """floor(S * 1.7) has no exact integer form in the graph: the exporter's Resize, checked as before."""
    model = nn.Upsample(scale_factor=1.7).eval()
    path = tmp_path / "frac.onnx"
    export_onnx(model, torch.randn(1, 2, 6, 5), path)
    assert "Resize" in _ops(path)


@pytest.mark.parametrize("n_in", [1, 2, 3, 4, 5, 6, 7, 13, 31])
def test_source_index_is_pytorchs_at_every_output_size(n_in):
    x = torch.arange(n_in, dtype=torch.float32).view(1, 1, 1, n_in)
    for n_out in range(1, 400):
        ref = F.interpolate(x, size=(1, n_out), mode="nearest").view(-1).long()
        assert torch.equal(source_index(n_in, n_out, None), ref), (n_in, n_out)
    for factor in (1, 2, 3, 5):
        ref = F.interpolate(x, scale_factor=(1.0, float(factor)), mode="nearest").view(-1).long()
        assert torch.equal(source_index(n_in, n_in * factor, float(factor)), ref), (n_in, factor)


def test_half_precision_file_is_bit_identical_and_fit_for_tensorrt(tmp_path):
    from spp_deploy.runtime.trt.lint import errors, lint_tensorrt

    model = nn.Upsample(size=(82, 110)).eval()
    path = tmp_path / "half.onnx"
    export_onnx(model, torch.randn(1, 2, 5, 4), path, precision="fp16")
    assert not errors(lint_tensorrt(onnx.load(str(path))))
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4)).astype(np.float16)
    np.testing.assert_array_equal(_run(path, x), model.half()(torch.from_numpy(x)).numpy())
