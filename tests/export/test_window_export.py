"""Window SPP export: ONNX Runtime runs the standard-op and plugin-mode files bit-identically to
the eager op at many map sizes and window sets, every degenerate window case included."""

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from window_oracle import random_maps, random_windows
from spp_deploy.util.errors import ParityError
from spp_deploy.export.lowering import window as window_lowering
from spp_deploy.checked_export import check_window_parity, export_window_model
from spp_deploy.ops.projection import WindowProjection
from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

C = 3


@pytest.fixture(scope="module", params=["standard", "plugin"])
def exported(request, tmp_path_factory):
    """(impl, module, ORT session) for a {1,2,3,6} ZF-5 pyramid, exported once per mode."""
    import onnxruntime as ort

    op = WindowSpatialPyramidPool()
    path = tmp_path_factory.mktemp("wspp") / f"{request.param}.onnx"
    result = export_window_model(op, path, channels=C, stride=16.0, spp_impl=request.param, exact=True)
    assert all(p.bit_identical for p in result.parity) and len(result.parity) >= 5
    return request.param, op, path, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(sess, x, win):
    return sess.run(None, {"features": x, "windows": win})[0]


@settings(max_examples=40, deadline=None)
@given(S=st.integers(1, 3), H=st.integers(1, 70), W=st.integers(1, 70), R=st.sampled_from([0, 1, 2, 33, 400]),
       seed=st.integers(0, 2**32 - 1))
def test_ort_matches_eager_bit_for_bit(exported, S, H, W, R, seed):
    _, op, _, sess = exported
    rng = np.random.default_rng(seed)
    x = np.maximum(random_maps(rng, S, C, H, W, False), 0)  # post-ReLU, as in a detector
    win = random_windows(rng, R, S, H, W)
    ref = op(torch.from_numpy(x), torch.from_numpy(win)).numpy()
    got = _run(sess, x, win)
    assert got.shape == (R, C * 50) and np.array_equal(got, ref)


def test_negative_and_nan_maps_follow_the_zero_initialised_max(exported):
    """Raw (not post-ReLU) maps with NaN and -0.0: the file clamps at zero like the original."""
    _, op, _, sess = exported
    rng = np.random.default_rng(3)
    x = random_maps(rng, 2, C, 23, 31, True)
    win = random_windows(rng, 500, 2, 23, 31)
    assert np.array_equal(_run(sess, x, win).view(np.uint32),
                          op(torch.from_numpy(x), torch.from_numpy(win)).numpy().view(np.uint32))


def test_file_structure(exported):
    impl, _, path, _ = exported
    m = onnx.load(path)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    assert dims == {"features": ["maps", C, "height", "width"], "windows": ["num_windows", 5]}
    if impl == "standard":
        assert {n.domain for n in m.graph.node} == {""} and not m.functions
        ops = [n.op_type for n in m.graph.node]
        assert ops.count("MaxPool") == 3  # level 6 from the sparse table; 3, 2, 1 pooled from 6, 6, 2
    else:
        (node,) = m.graph.node
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (node.domain, node.op_type) == ("spp_deploy", "WindowSpatialPyramidPool")
        assert attrs["levels"] == [1, 2, 3, 6] and attrs["projection"] == [16.0, 21.0, 6.5]
        assert attrs["plugin_version"] == b"1" and attrs["plugin_namespace"] == b""
        assert [(f.domain, f.name) for f in m.functions] == [("spp_deploy", "WindowSpatialPyramidPool")]


def test_other_levels_projection_and_float32_windows(tmp_path):
    proj = WindowProjection.from_layers([(3, 2, 1), (3, 2, 1)], offset=1.0)
    op = WindowSpatialPyramidPool((8, 4, 1), projection=proj, one_based=False)
    path = tmp_path / "w.onnx"
    export_window_model(op, path, channels=2, stride=proj.stride, exact=True)
    rng = np.random.default_rng(5)
    x = np.maximum(random_maps(rng, 1, 2, 30, 19, False), 0)
    win = random_windows(rng, 300, 1, 30, 19, stride=proj.stride).astype(np.float32)
    import onnxruntime as ort

    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"features": x, "windows": win.astype(np.float64)})[0]
    assert np.array_equal(got, op(torch.from_numpy(x), torch.from_numpy(win.astype(np.float64))).numpy())


def test_parity_failure_writes_nothing(tmp_path, monkeypatch):
    """A lowering that projects differently from the eager op is caught before the file appears."""
    real = window_lowering.project_span
    monkeypatch.setattr(window_lowering, "project_span",
                        lambda lo, hi, size, proj, ops: real(lo, hi, size, WindowProjection(16.0, 22.0, 6.5), ops))
    path = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match="differs from PyTorch"):
        export_window_model(WindowSpatialPyramidPool(), path, channels=C, stride=16.0, exact=True)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_parity_check_compares_with_the_given_module(exported):
    _, _, path, _ = exported
    with pytest.raises(ParityError):
        check_window_parity(WindowSpatialPyramidPool((1, 2, 3, 4)), path, C, 16.0)


def test_tall_maps_up_to_the_table_limit_are_exact_and_beyond_it_refused(exported):
    """The graph's sparse table covers maps up to 2047 cells a side: a 2047-row map is exact, a
    2048-row map stops ONNX Runtime (an out-of-range index) rather than pooling wrongly."""
    from spp_deploy.export.lowering.window import MAX_MAP_SIDE

    _, op, _, sess = exported
    rng = np.random.default_rng(8)
    for H in (MAX_MAP_SIDE, MAX_MAP_SIDE + 1):
        x = np.maximum(random_maps(rng, 1, C, H, 2, False), 0)
        win = np.array([[0, 1, 1, 40, 16 * H + 30], [0, 1, 500, 30, 9000], [0, 1, 1, 5, 5]], dtype=np.float64)
        if H == MAX_MAP_SIDE:
            assert np.array_equal(_run(sess, x, win), op(torch.from_numpy(x), torch.from_numpy(win)).numpy())
        else:
            with pytest.raises(Exception, match="out of (data )?bounds|out of range|invalid"):
                _run(sess, x, win)


@pytest.mark.parametrize("impl", ["standard", "plugin"])
def test_float32_windows_input_is_exact_and_lint_clean(tmp_path, impl):
    """windows_dtype="float32" (for TensorRT, which has no float64): the input is FLOAT, widened to
    float64 inside the graph (standard) or inside the plugin node (plugin mode: the node takes the
    input as it is, and its function body widens it), bit-identical to the eager op on the same
    float32 windows, and the lint finds no DOUBLE graph input."""
    import onnxruntime as ort

    from spp_deploy.runtime.trt.lint import lint_tensorrt

    op = WindowSpatialPyramidPool()
    path = tmp_path / "w32.onnx"
    result = export_window_model(op, path, channels=C, stride=16.0, spp_impl=impl, exact=True, windows_dtype="float32")
    assert result.parity and all(p.bit_identical for p in result.parity)
    m = onnx.load(path)
    types = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
    assert types == {"features": onnx.TensorProto.FLOAT, "windows": onnx.TensorProto.FLOAT}
    users = [n for n in m.graph.node if "windows" in n.input]
    if impl == "standard":
        assert [(n.op_type, n.attribute[0].i) for n in users] == [("Cast", onnx.TensorProto.DOUBLE)]
    else:
        assert [n.op_type for n in users] == ["WindowSpatialPyramidPool"]
        (body,) = m.functions
        assert [(n.op_type, n.attribute[0].i) for n in body.node if "ROIS" in n.input] == [
            ("Cast", onnx.TensorProto.DOUBLE)]
    findings = lint_tensorrt(m)
    assert not [f for f in findings if f.op == "graph I/O"]
    if impl == "plugin":  # the TensorRT path: nothing in float64 at all
        assert not [f for f in findings if "DOUBLE" in f.message]
    # windows on a projection boundary (x1 = 16k + 6.5: floor((x1 - 21 + 6.5) / 16 + 0.5) = k) nudged
    # below it in float64: float32 rounds them onto it, so the cell is another one. The file must
    # match the eager op on the float32 windows it is given, not on the float64 ones.
    k = np.arange(1, 9, dtype=np.float64)
    x1 = 16 * k + 6.5 - 1e-9
    w64 = np.stack([np.zeros_like(k), x1, x1, x1 + 40, x1 + 40], axis=1)
    w32 = w64.astype(np.float32)
    rng = np.random.default_rng(11)
    x = np.maximum(random_maps(rng, 1, C, 14, 14, False), 0)
    eager32 = op(torch.from_numpy(x), torch.from_numpy(w32)).numpy()
    assert not np.array_equal(eager32, op(torch.from_numpy(x), torch.from_numpy(w64)).numpy())
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"features": x, "windows": w32})[0]
    assert np.array_equal(got, eager32)


def test_bad_windows_dtype_names_the_argument_and_writes_nothing(tmp_path):
    from spp_deploy.util.errors import UserError

    path = tmp_path / "w.onnx"
    message = r"^windows_dtype: 'float16' is not a windows dtype \(use float64 or float32\)$"
    with pytest.raises(UserError, match=message):
        export_window_model(WindowSpatialPyramidPool(), path, channels=C, stride=16.0, windows_dtype="float16")
    assert not list(tmp_path.iterdir())


def test_existing_file_is_replaced_only_with_force(tmp_path):
    """One overwrite policy for the library too: export_window_model keeps an existing file
    unless asked (force=True), like export_onnx and every command's --force."""
    from spp_deploy.util.errors import UserError

    path = tmp_path / "head.onnx"
    path.write_bytes(b"the user's file")
    with pytest.raises(UserError, match="exists") as e:
        export_window_model(WindowSpatialPyramidPool(), path, channels=C, stride=16.0, check_parity=False)
    assert e.value.option == "force" and path.read_bytes() == b"the user's file"
    export_window_model(WindowSpatialPyramidPool(), path, channels=C, stride=16.0, check_parity=False, force=True)
    assert onnx.load(path).graph.node
