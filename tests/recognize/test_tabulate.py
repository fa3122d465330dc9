"""Open-world export: SPP layers written like public code (tests/support/wild_layers.py), probed,
tabulated and exported; ONNX Runtime must equal the layer itself at every size 1..300 where it is
defined (max: bit-identical), output NaN where it is not, and adversarial layers are refused."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings, strategies as st

import wild_layers as W
from spp_deploy.commands.args import flag_for
from spp_deploy.util.errors import UserError
from spp_deploy import export_onnx
from spp_deploy.recognize import scan
from spp_deploy.recognize.table_probe import TabulateError, tabulate
from spp_deploy.ops.table_pyramid import tabulated_eager

LIMIT = 320  # covers 1..300; the default (2048) is exercised by test_default_limit_covers_2048
C = 3

FAMILIES = {
    "ceil-kernel-floor-stride-max": lambda: W.CeilKernelFloorStride(),
    "ceil-kernel-floor-stride-avg": lambda: W.CeilKernelFloorStride(mode="avg"),
    "fpad-zero-max": lambda: W.PadThenPool(),
    "fpad-zero-avg": lambda: W.PadThenPool(mode="avg"),
    "zeropad2d-symmetric-max": lambda: W.ZeroPadSymmetric(),
    "zeropad2d-symmetric-avg": lambda: W.ZeroPadSymmetric(mode="avg"),
    "adaptive-3d-max": lambda: W.Adaptive3D(),
    "adaptive-3d-avg": lambda: W.Adaptive3D(mode="avg"),
    "caller-sizes-bin-major": lambda: W.CallerSizes(),
}


def _source(layer, x):
    """The layer's own output, or None where it raises or changes its output length."""
    try:
        with torch.no_grad():
            y = layer(torch.as_tensor(x))
    except Exception:
        return None
    return y.numpy()


class _Exported:
    def __init__(self, layer, path):
        self.layer = layer
        self.result = export_onnx(layer, torch.randn(1, C, 13, 13), path, tabulate_limit=LIMIT)
        self.sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.out_shape = _source(layer, np.zeros((1, C, 13, 13), np.float32)).shape[1:]
        r = self.result.layers[0]
        self.mode = r.config.mode if r.config else r.table.mode

    def check(self, x):
        out = self.sess.run(None, {"input": x})[0]
        ref = _source(self.layer, x)
        if ref is None or ref.shape[1:] != self.out_shape:
            assert np.isnan(out).all(), f"{x.shape}: the layer is undefined here, the graph must say NaN"
        elif self.mode == "max":
            np.testing.assert_array_equal(out, ref, err_msg=f"{x.shape}")
        else:
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6, err_msg=f"{x.shape}")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def exported(request, tmp_path_factory):
    return _Exported(FAMILIES[request.param](), tmp_path_factory.mktemp("tab") / "m.onnx")


NAMED = {"adaptive-3d-max", "adaptive-3d-avg"}  # adaptive bins, only laid out [B, C, sum n^2]


def test_every_size_1_to_300_on_each_axis(exported, request):
    rng = np.random.default_rng(0)
    r = exported.result.layers[0]
    assert r.how == "tabulated" and exported.result.spp_layers == 1
    if request.node.callspec.params["exported"] in NAMED:  # the tables are a named rule: no size limit
        assert r.table is None and (r.config.rule, r.config.levels, r.rule) == ("adaptive", (1, 2, 4), "adaptive")
        for s in (LIMIT + 1, 2 * LIMIT + 7):
            exported.check(rng.standard_normal((2, C, s, 13), dtype=np.float32))
            exported.check(rng.standard_normal((2, C, 11, s), dtype=np.float32))
    else:
        assert r.config is None and r.table.limit == LIMIT
    for s in range(1, 301):
        exported.check(rng.standard_normal((2, C, s, 13), dtype=np.float32))
        exported.check(rng.standard_normal((2, C, 13, s), dtype=np.float32))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), b=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_random_pairs_and_batches(exported, h, w, b, seed):
    x = np.random.default_rng(seed).standard_normal((b, C, h, w), dtype=np.float32)
    exported.check(x)


def test_nan_propagates_like_the_layer(exported):
    x = np.random.default_rng(1).standard_normal((2, C, 29, 37), dtype=np.float32)
    x[1, 2, 5, 30] = np.nan
    exported.check(x)


def test_past_the_limit_is_nan_not_a_guess(exported, request):
    x = np.zeros((1, C, LIMIT + 1, 13), np.float32)
    past = exported.sess.run(None, {"input": x})[0]
    if request.node.callspec.params["exported"] in NAMED:  # a named rule has no limit: exact there too
        exported.check(x)
        assert not np.isnan(past).any()
    else:
        assert np.isnan(past).all()


@pytest.mark.slow
@pytest.mark.parametrize("layer,finding", [
    (W.BothAxes(), "depend"),
    (W.FlatChunks(), "rectangles"),
    (W.DataDependent(), "data"),
])
def test_adversarial_layers_are_refused_by_name(layer, finding, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(UserError) as e:
        export_onnx(W.Model(layer), torch.randn(1, 3, 13, 13), out, tabulate_limit=64)
    msg = str(e.value)
    assert "'spp'" in msg and type(layer).__name__ in msg and finding in msg and "--" not in msg
    assert "\n" not in msg and not out.exists() and list(tmp_path.iterdir()) == []
    # the remedy is a declaration the library itself accepts, and the CLI says it as its flag
    assert "spp_layers=['spp=levels:4,2,1;rule=RULE" in msg
    assert e.value.render(flag_for).endswith("declare it: --spp-layer 'spp=levels:4,2,1;rule=RULE;mode=MODE;order=ORDER'")


def test_probe_refusals_say_what_was_found():
    with pytest.raises(TabulateError, match="not a fixed-length pyramid"):
        tabulate(torch.nn.Flatten(), 2, (5, 5), limit=32)
    scaled = lambda x: W.PadThenPool(mode="avg")(x) * 1.0001  # noqa: E731
    with pytest.raises(TabulateError, match="whole count"):
        tabulate(scaled, 2, (13, 13), limit=32)


def test_tabulated_layer_reported_with_rule_legal_sizes_and_action():
    (r,) = scan(W.Model(W.CeilKernelFloorStride()), torch.randn(1, 3, 13, 13), tabulate_limit=64)
    d = r.as_dict()
    assert d["rule"] == "tabulated, exact for S <= 64" and d["action"].startswith("replace with tabulated op")
    # kernel ceil(S/4), stride floor(S/4) gives 4 bins only where (S - ceil(S/4)) // floor(S/4) == 3
    want = [s for s in range(1, 65) if not all(
        s >= n and (s - -(-s // n)) // (s // n) + 1 == n for n in (4, 2, 1))]
    assert d["table"]["illegal_H"] == want == d["table"]["illegal_W"]
    assert d["feature_size"] == 8 * 21


def test_plugin_mode_inlines_tabulated_layers(tmp_path):
    layer = W.PadThenPool()
    res = export_onnx(layer, torch.randn(1, C, 13, 13), tmp_path / "p.onnx", spp_impl="plugin", tabulate_limit=64)
    assert res.layers[0].table is not None
    sess = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(2).standard_normal((2, C, 41, 23), dtype=np.float32)
    np.testing.assert_array_equal(sess.run(None, {"input": x})[0], _source(layer, x))


def test_default_limit_covers_2048():
    spec, stats = tabulate(W.PadThenPool(), 1, (13, 13))
    assert spec.limit == 2048 and stats["calls"] >= 2 * 2048
    x = torch.randn(1, 1, 2048, 7)
    assert torch.equal(W.PadThenPool()(x), tabulated_eager(x, spec))


class _Transposed(torch.nn.Module):
    """Adaptive3D laid out [B, L, C]."""

    def __init__(self):
        super().__init__()
        self.inner = W.Adaptive3D((1, 3))

    def forward(self, x):
        return self.inner(x).transpose(1, 2)


class _ChannelOuterFlat(torch.nn.Module):
    """Adaptive3D flattened right away: [B, C * L], feature c * L + level offset + bin."""

    def __init__(self):
        super().__init__()
        self.inner = W.Adaptive3D((2, 1), mode="avg")

    def forward(self, x):
        return self.inner(x).flatten(1)


class _CeilPad3D(torch.nn.Module):
    """The ceil_pad rule (kernel ceil(S/n), padding from S, -inf pads) kept 3-D."""

    def forward(self, x):
        H, W_ = int(x.shape[2]), int(x.shape[3])
        outs = []
        for n in (3, 1):
            k = (-(-H // n), -(-W_ // n))
            p = ((k[0] * n - H + 1) // 2, (k[1] * n - W_ + 1) // 2)
            outs.append(torch.nn.functional.max_pool2d(x, k, k, padding=p).flatten(2))
        return torch.cat(outs, 2)


@pytest.mark.parametrize("layer,rule,levels,mode", [
    (_Transposed(), "adaptive", (1, 3), "max"),
    (_ChannelOuterFlat(), "adaptive", (2, 1), "avg"),
    (_CeilPad3D(), "ceil_pad", (3, 1), "max"),
])
def test_tables_of_a_named_rule_export_symbolically(layer, rule, levels, mode, tmp_path):
    """Layouts the canonical op lacks still get the named rule (no size limit) when the measured
    tables are that rule at every probed size: exact past the probe limit, NaN where illegal."""
    out = tmp_path / "m.onnx"
    res = export_onnx(layer, torch.randn(1, C, 13, 13), out, tabulate_limit=40)
    r = res.layers[0]
    assert r.table is None and (r.config.rule, r.config.levels, r.config.mode) == (rule, levels, mode)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(13, 13), (1, 7), (40, 3), (41, 90), (97, 201), (6, 5)]:
        x = rng.standard_normal((2, C, h, w), dtype=np.float32)
        got, ref = sess.run(None, {"input": x})[0], _source(layer, x)
        if ref is None:
            assert np.isnan(got).all()
        elif mode == "max":
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_zero_padding_is_not_mistaken_for_a_named_rule():
    from spp_deploy.recognize.named import named_layout

    spec, _ = tabulate(W.PadThenPool(), C, (13, 13), 40)
    assert named_layout(spec) is None


@pytest.mark.parametrize("which,patterns", [("shape", 2), ("avg", 1)])
def test_free_functions_called_in_forward_are_exported(which, patterns, tmp_path):
    """Pyramid functions called from a forward with parameters, their sizes computed by the caller
    (``x.shape[2:]``, ``int(x.size(2))`` as keywords), each call pattern probed and patched."""
    model = W.CallsFunctions(which)
    out = tmp_path / "m.onnx"
    res = export_onnx(model, torch.randn(1, C, 13, 13), out, tabulate_limit=64)
    found = [r for r in res.layers if r.site is not None]
    assert len(found) == patterns and all(r.rewrites and "forward -> " in r.path for r in found)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(13, 13), (1, 5), (2, 64), (64, 37), (65, 9), (30, 31)]:
        x = rng.standard_normal((2, C, h, w), dtype=np.float32)
        got, ref = sess.run(None, {"input": x})[0], _source(model, x)
        if max(h, w) > 64:  # past the probe limit: no guess
            assert np.isnan(got).all(), (h, w)
        elif ref is None or ref.shape != got.shape:  # a pyramid breaks here: its features say NaN
            assert np.isnan(got).any(axis=1).all(), (h, w)
        elif which == "shape":
            np.testing.assert_array_equal(got, ref, err_msg=f"{h}x{w}")
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=f"{h}x{w}")


def test_a_helper_that_is_no_pyramid_is_left_alone():
    assert [r for r in scan(W.CallsFunctions("flatten"), torch.randn(1, C, 13, 13), tabulate_limit=64)
            if r.site is not None] == []
