"""Op-level export: every pooling call whose windows follow H, W (PSPNet/UPerNet pyramid pooling
modules, strip, horizontal and temporal pyramids, SPP-net ports with the pyramid in a method),
written like public code in tests/support/public_pyramids.py. ONNX Runtime must equal the model
at sizes it was not traced at (pool-only models: max bit-identical), say NaN where the source
breaks, and refuse by name what follows no rule."""

import json
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import public_pyramids as P
from spp_deploy import export_onnx
from spp_deploy.ops import bins
from spp_deploy.util.errors import UserError
from spp_deploy.recognize import scan
from spp_deploy.recognize.oplevel import record
from spp_deploy.recognize.poolfit import fit_lin
from spp_deploy.ops.size_dependent_pool import pool_eager

# name: (factory, input channels, example H x W, bit-identical: the model is pooling only)
FAMILIES = {
    "pspnet-ppm-align-true": (lambda: P.PSPNetHead(align_corners=True), 3, (24, 20), False),
    "pspnet-ppm-max-align-false": (lambda: P.PSPNetHead(align_corners=False, pool=torch.nn.AdaptiveMaxPool2d), 3,
                                   (24, 20), False),
    "upernet-ppm": (lambda: P.UPerHeadPSP(), 8, (13, 17), False),
    "ppm-kernel-h-div-n": (lambda: P.KernelPPM(), 6, (24, 20), False),
    "ppm-ceil-pad-input-last": (lambda: P.CeilPadPPM(), 6, (19, 23), False),
    "ppm-kernel-covers-strides": (lambda: P.CoverPPM(), 4, (21, 26), False),
    "ppm-fpad-then-avg-pool": (lambda: P.PadThenPoolPPM(mode="avg"), 4, (22, 17), False),
    "strip-pooling": (lambda: P.StripPooling(), 4, (15, 22), False),
    "horizontal-pyramid": (lambda: P.WithStem(P.HorizontalPyramid()), 3, (32, 16), False),
    "temporal-pyramid": (lambda: P.TemporalPyramid(), 3, (8, 40), True),
    "spp-method-self-sizes-first": (lambda: P.MethodSPPNet(), 3, (24, 20), False),
    "spp-function-self-first": (lambda: P.SelfFirstSPPNet(), 3, (24, 20), False),
    "zero-padded-avg-bcl": (lambda: P.WithStem(P.ZeroPadAvgPyramid()), 3, (17, 21), False),
    "floor-kernel-max": (lambda: P.FloorKernelMaxPyramid(), 3, (20, 26), True),
}
SIZES = [(1, 1), (2, 3), (3, 17), (5, 5), (6, 7), (11, 4), (13, 13), (16, 9), (23, 31), (37, 64), (64, 37), (97, 50)]


def _source(model, x):
    try:
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()
    except Exception:
        return None


class _Exported:
    def __init__(self, name, path):
        factory, self.C, (h, w), self.exact = FAMILIES[name]
        torch.manual_seed(0)
        self.model = factory().eval()
        self.result = export_onnx(self.model, torch.randn(1, self.C, h, w), path)
        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(self, x):
        try:
            return self.sess.run(None, {"input": x})[0]
        except Exception:  # ONNX Runtime itself rejects the size (a convolution larger than the map)
            return None

    def check(self, x):
        ref, out = _source(self.model, x), self.run(x)
        if ref is None:
            assert out is None or np.isnan(out).any(), f"{x.shape}: the source breaks here, the graph must say NaN"
        elif self.exact:
            np.testing.assert_array_equal(out, ref, err_msg=f"{x.shape}")
        else:
            assert out is not None and out.shape == ref.shape, x.shape
            scale = max(float(np.abs(ref).max()), 1e-30)  # the README's tolerance: relative to the largest value
            assert float(np.nanmax(np.abs(out - ref))) <= 1e-5 * scale, x.shape
            assert np.array_equal(np.isnan(out), np.isnan(ref)), x.shape


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def exported(request, tmp_path_factory):
    return _Exported(request.param, tmp_path_factory.mktemp("op") / "m.onnx")


@pytest.mark.slow
def test_every_pool_call_is_routed_and_the_file_agrees_at_other_sizes(exported):
    routed = [r for r in exported.result.layers if r.how == "op-level" and r.op_site is not None]
    assert routed and all(r.rewrites and r.op_site.spec is not None for r in routed)
    assert exported.result.spp_layers >= len(routed)
    assert not [r for r in exported.result.layers if r.table is not None], "named pools must never be tabulated"
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        exported.check(rng.standard_normal((2, exported.C, h, w), dtype=np.float32))


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 120), w=st.integers(1, 120), b=st.integers(1, 2), seed=st.integers(0, 2**31))
def test_random_sizes(exported, h, w, b, seed):
    exported.check(np.random.default_rng(seed).standard_normal((b, exported.C, h, w), dtype=np.float32))


# NaN/inf positions after an upsampling are Resize's (ONNX Runtime reads other neighbours), not the pools'
UPSAMPLED = {"pspnet-ppm-align-true", "pspnet-ppm-max-align-false", "upernet-ppm", "ppm-kernel-h-div-n",
             "ppm-ceil-pad-input-last", "ppm-kernel-covers-strides", "ppm-fpad-then-avg-pool", "strip-pooling"}


@pytest.mark.slow
def test_nan_and_inf_propagate_like_pytorch(exported, request):
    if request.node.callspec.params["exported"] in UPSAMPLED:
        pytest.skip("upsampled after pooling: NaN spread is the Resize's")
    x = np.random.default_rng(1).standard_normal((2, exported.C, 29, 37), dtype=np.float32)
    x[0, 1, 3, 4] = np.nan
    x[1, 0, 20, 30] = np.inf
    ref, out = _source(exported.model, x), exported.run(x)
    assert np.array_equal(np.isnan(out), np.isnan(ref)) and np.array_equal(np.isinf(out), np.isinf(ref))


def test_adaptive_pools_keep_bin_counts_and_layout():
    """nn.AdaptiveAvgPool2d(n) at sizes n does not divide (the classic ONNX export failure)."""
    model = P.PSPNetHead()
    reports = [r for r in scan(model, torch.randn(1, 3, 24, 20)) if r.op_site is not None]
    specs = [r.op_site.spec for r in reports]
    assert sorted((s.out_size(13, s.rows), s.out_size(17, s.cols)) for s in specs) == [(n, n) for n in (2, 3, 6)]
    assert {r.rule for r in reports} == {"adaptive"} and all(r.path.startswith("ppm.features.") for r in reports)
    x = torch.randn(1, 8, 13, 17)  # 13 and 17: no level divides them
    for s in specs:  # (the 1x1 level is a global pool: the exporter's own)
        assert torch.equal(pool_eager(x, s), F.adaptive_avg_pool2d(x, s.out_size(13, s.rows)))


def test_argument_arithmetic_found_from_the_recorded_calls():
    sites = record(P.CeilPadPPM(), (1, 6, 19, 23))
    assert [s.rule for s in sites] == ["ceil_pad", "ceil_pad", "adaptive"]  # levels 4, 2 and 1 (kernel = S)
    rows = sites[0].spec.rows
    for S in range(1, 200):
        k = -(-S // 4)
        assert rows.args(S) == (k, k, (4 * k - S + 1) // 2)
    kernel_sites = record(P.KernelPPM(), (1, 6, 24, 20))
    assert [s.spec.rows.kernel.describe() for s in kernel_sites] == ["S", "floor(S/2)", "floor(S/3)", "floor(S/6)"]
    assert all(s.spec.fixed == (0, 0) for s in kernel_sites[1:])  # bin counts follow the size


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), kind=st.sampled_from(["floor", "ceil", "const", "pad"]), seed=st.integers(0, 2**31))
def test_fit_lin_recovers_the_rule_from_a_few_sizes(n, kind, seed):
    """Eight recorded sizes (feature-map sizes: up to 40 n) tell floor(S/n), ceil(S/n), a constant
    and the padding (n * k - S + 1) // 2 that makes n ceil kernels fit, unless they leave two
    floor/ceil rules open (all sizes even for n = 2): then the fit still passes through every
    recorded point, and the export's parity sweep checks the sizes it will be used at."""
    def ceil(s):
        return -(-s // n)

    truth = {"floor": lambda s: s // n, "ceil": ceil, "const": lambda s: n,
             "pad": lambda s: (n * ceil(s) - s + 1) // 2}[kind]
    S = [int(s) for s in np.random.default_rng(seed).choice(np.arange(2 * n, 40 * n + 2), size=8, replace=False)]
    lin = fit_lin({s: truth(s) for s in S}, {s: ceil(s) for s in S} if kind == "pad" else None)
    assert lin is not None and all(lin(s, ceil(s)) == truth(s) for s in S)  # through every recorded point
    wrong = [s for s in range(2 * n, 40 * n + 2) if lin(s, ceil(s)) != truth(s)]
    if wrong:  # only where the recorded sizes leave it open: another floor/ceil(S / d) through every point
        plain = [(d, c) for d in range(1, 257) for c in {0, d - 1} if all((s + c) // d == truth(s) for s in S)]
        assert len(plain) > 1, (S, kind, lin, wrong[:5])


@settings(max_examples=150, deadline=None)
@given(S=st.integers(1, 40), k=st.integers(1, 12), s=st.integers(1, 12), p=st.integers(0, 6), ceil=st.booleans())
def test_window_bins_are_pytorchs(S, k, s, p, ceil):
    """bins.window_count / window_bins against max_pool2d and avg_pool2d themselves."""
    x = torch.arange(S, dtype=torch.float64).reshape(1, 1, 1, S) + 1
    try:
        got = F.max_pool2d(x, (1, k), (1, s), (0, p), ceil_mode=ceil)
    except RuntimeError:
        got = None
    ok = bool(bins.window_bins(S, k, s, p, 0, ceil_mode=ceil).valid)
    assert ok == (got is not None)
    if got is None:
        return
    n = bins.window_count(S, k, s, p, ceil)
    ab = bins.window_bins(S, k, s, p, np.arange(n))
    assert got.shape[-1] == n
    assert np.array_equal(got.numpy().ravel(), ab.end.astype(np.float64))  # max of 1..S over [start, end) = end
    avg = F.avg_pool2d(x, (1, k), (1, s), (0, p), ceil_mode=ceil, count_include_pad=True).numpy().ravel()
    sums = np.array([x.numpy().ravel()[a:e].sum() for a, e in zip(ab.start, ab.end)])
    np.testing.assert_allclose(avg, sums / ab.span)


def test_temporal_pyramid_matches_adaptive_instead_of_tabulating():
    reports = scan(P.TemporalPyramid(), torch.randn(1, 3, 8, 40))
    layer = reports[0]
    assert layer.how == "op-level" and layer.table is None and not layer.rewrites
    calls = [r for r in reports if r.op_site is not None]
    assert [r.rule for r in calls] == ["adaptive"] * 3 and all(r.rewrites for r in calls)


def test_a_kernel_read_from_the_other_axis_is_refused_by_name(tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(UserError) as e:
        export_onnx(P.BothAxesKernel(), torch.randn(1, 3, 12, 15), out)
    msg = str(e.value)
    assert "max_pool2d() at public_pyramids.py" in msg and "spp_layers" not in msg
    assert re.search(r"kernel\S* on H (depends on more than the H of its input|follow no rule)", msg), msg
    assert "\n" not in msg and not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_inspect_lists_the_calls(cli, tmp_path):
    model = "tests/support/public_pyramids.py:PSPNetHead"
    code, out, err = cli("inspect", "--model", model, "--input-shape", "1x3x24x20", "--json")
    assert code == 0, err
    calls = [d for d in json.loads(out)["layers"] if d.get("pool")]
    assert len(calls) == 3 and all(d["rule"] == "adaptive" and d["how"] == "op-level" for d in calls)
    assert all(d["action"].startswith("replace call with size-dependent pool") for d in calls)
    assert all(d["pool"]["illegal_H"] == [] == d["pool"]["illegal_W"] for d in calls)
    code, out, err = cli("inspect", "--model", "tests/support/public_pyramids.py:KernelPPM", "--input-shape", "1x6x24x20",
                         "--json")
    pools = [d["pool"] for d in json.loads(out)["layers"] if d.get("pool")]
    # kernel floor(S/6) is 0 below 6: PyTorch rejects those sizes, and inspect says so
    assert pools[-1]["illegal_H"] == [1, 2, 3, 4, 5] == pools[-1]["illegal_W"]
    code, out, err = cli("inspect", "--model", model, "--input-shape", "1x3x24x20")
    assert code == 0 and "adaptive_avg_pool2d" in out and "no SPP layer found" not in out


class _Call(torch.nn.Module):
    """One size-dependent pool straight from its spec (what routing makes of a recorded call)."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def forward(self, x):
        if torch.compiler.is_exporting():
            return torch.ops.spp_deploy.size_dependent_pool(x, self.spec.key)
        return pool_eager(x, self.spec)


def _spec_cases():
    from spp_deploy.ops.size_dependent_pool import AxisPool, Lin, PoolSpec

    ceil4 = AxisPool(kernel=Lin(1, 3, 4), stride=Lin(1, 3, 4), padding=Lin(-1, 1, 2, 4))
    third = AxisPool(kernel=Lin(1, 2, 3), stride=Lin(1, 0, 3), padding=Lin(0, 1))
    return {
        "adaptive-max-bins-follow-S": PoolSpec("adaptive_max_pool2d", AxisPool(count=Lin(1, 0, 2)), AxisPool(count=Lin(0, 5))),
        "avg-ceil-mode-no-pad-count": PoolSpec("avg_pool2d", third, third, ceil_mode=True, count_include_pad=False),
        "avg-ceil-mode-pad-count": PoolSpec("avg_pool2d", third, ceil4, ceil_mode=True),
        "max-ceil-pad": PoolSpec("max_pool2d", ceil4, third),
    }


@pytest.mark.parametrize("name", sorted(_spec_cases()))
@pytest.mark.parametrize("spp_impl", ["standard", "plugin"])
def test_lowering_equals_pytorchs_pool_for_any_spec(name, spp_impl, tmp_path):
    """count_include_pad either way, ceil mode, bin counts that follow the size: the graph's bins
    are PyTorch's at every size 1..40 of each axis (max bit-identical), NaN where PyTorch refuses."""
    spec = _spec_cases()[name]
    out = tmp_path / "m.onnx"
    export_onnx(_Call(spec), torch.randn(1, 2, 13, 11), out, spp_impl=spp_impl)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(s, 11) for s in range(1, 41)] + [(13, s) for s in range(1, 41)] + [(97, 203)]:
        x = rng.standard_normal((2, 2, h, w), dtype=np.float32)
        x[1, 0, h // 2, w // 3] = np.nan
        got = sess.run(None, {"input": x})[0]
        try:
            ref = pool_eager(torch.from_numpy(x), spec).numpy()
        except RuntimeError:
            assert np.isnan(got).all(), (h, w)
            continue
        if spec.mode == "max":
            np.testing.assert_array_equal(got, ref, err_msg=f"{h}x{w}")
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=f"{h}x{w}")


@pytest.mark.slow
def test_fp16_export_routes_the_calls_too(tmp_path):
    """precision="fp16" traces a half copy: its calls are recorded on half data and routed alike."""
    res = export_onnx(P.KernelPPM(), torch.randn(1, 6, 24, 20), tmp_path / "h.onnx", precision="fp16")
    assert sum(1 for r in res.layers if r.op_site is not None and r.rewrites) == 4
    assert res.parity and all(p.passed for p in res.parity)
