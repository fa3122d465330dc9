"""`spp-deploy check --target tensorrt`: exported files pass, documented restrictions are caught."""

import onnx
from onnx import TensorProto as TP
from onnx import helper as h

from spp_deploy.runtime.trt.lint import errors, lint_tensorrt


def _model(nodes, inputs, outputs, inits=(), opset=20):
    g = h.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return h.make_model(g, opset_imports=[h.make_opsetid("", opset)])


def _vi(name, t, shape):
    return h.make_tensor_value_info(name, t, shape)


def test_restrictions_are_reported(tmp_path, cli):
    axes = h.make_tensor("axes", TP.INT64, [1], [1])
    nodes = [
        h.make_node("Round", ["i"], ["r"], name="round_int"),                       # float only
        h.make_node("Shape", ["x"], ["s"], name="shape"),
        h.make_node("ReduceMax", ["x", "s"], ["m1"], name="reduce_dyn_axes"),      # axes not an initializer
        h.make_node("ReduceMax", ["x", "axes"], ["m2"], name="reduce_ok"),
        h.make_node("MaxRoiPool", ["x", "rois"], ["p"], name="roi", pooled_shape=[2, 2]),  # unsupported
        h.make_node("MaxPool", ["x"], ["mp", "idx"], name="pool_idx", kernel_shape=[2, 2]),  # Indices output
        h.make_node("TopK", ["f", "k"], ["tv", "ti"], name="topk_unsorted", sorted=0),
        h.make_node("Resize", ["x", "", "sc"], ["rs"], name="cubic", mode="cubic"),
        h.make_node("Where", ["c", "i", "i"], ["w"], name="where_int"),            # int64 data is fine
    ]
    inits = [axes, h.make_tensor("k", TP.INT64, [1], [3]), h.make_tensor("sc", TP.FLOAT, [4], [1, 1, 2, 2])]
    m = _model(nodes, [_vi("x", TP.FLOAT, [1, 3, 8, 8]), _vi("i", TP.INT64, [4]), _vi("rois", TP.FLOAT, [1, 5]),
                       _vi("f", TP.FLOAT, [4, 10]), _vi("c", TP.BOOL, [4])],
               [_vi("r", TP.INT64, [4]), _vi("m1", TP.FLOAT, None), _vi("m2", TP.FLOAT, None), _vi("p", TP.FLOAT, None),
                _vi("mp", TP.FLOAT, None), _vi("idx", TP.INT64, None), _vi("tv", TP.FLOAT, None),
                _vi("rs", TP.FLOAT, None), _vi("w", TP.INT64, None)], inits)
    found = {(f.node, f.message.split(" ")[0]) for f in errors(lint_tensorrt(m))}
    bad_nodes = {n for n, _ in found}
    assert bad_nodes == {"round_int", "reduce_dyn_axes", "roi", "pool_idx", "topk_unsorted", "cubic"}
    p = tmp_path / "bad.onnx"
    onnx.save(m, p)
    code, out, _ = cli("check", p)
    assert code == 1
    assert "node 'round_int' (Round): input 'i' has type INT64" in out
    assert "node 'reduce_dyn_axes' (ReduceMax): `axes` (input 's') must be an initializer" in out
    assert "node 'roi' (MaxRoiPool): not supported" in out
    assert "FAILED: 6 node(s)" in out


def test_constant_node_axes_count_as_initializer_and_opset_warning():
    nodes = [h.make_node("Constant", [], ["a"], value=h.make_tensor("v", TP.INT64, [1], [2])),
             h.make_node("ReduceSum", ["x", "a"], ["y"], name="rs")]
    m = _model(nodes, [_vi("x", TP.FLOAT, [2, 3, 4])], [_vi("y", TP.FLOAT, None)], opset=21)
    fs = lint_tensorrt(m)
    assert errors(fs) == [] and any(f.severity == "warning" and "opset 21" in f.message for f in fs)


def test_check_corrupt_or_missing_file(tmp_path, cli):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model at all")
    code, _, err = cli("check", bad)
    assert code == 2 and err.count("\n") == 1 and "x.onnx" in err and "Traceback" not in err
    code, _, err = cli("check", tmp_path / "missing.onnx")
    assert code == 2 and err.count("\n") == 1 and "ONNX file not found" in err


def _branch(name, node, out, shape):
    return h.make_graph([node], name, [], [_vi(out, TP.FLOAT, shape)])


def test_if_restrictions():
    """Branches: same output count, distinct names, equal ranks; identical shapes for 10.4-10.10."""
    x = _vi("x", TP.FLOAT, [2, 3])
    cases = {  # then output shape, else output shape, same output name -> expected (severity, text)
        "rank": ([2, 3], [6], False, ("error", "ranks differ")),
        "dims": ([2, 3], [2, 4], False, ("warning", "TensorRT 10.4-10.10 need identical shapes")),
        "names": ([2, 3], [2, 3], True, ("error", "distinct names")),
        "ok": ([2, 3], [2, 3], False, None),
    }
    for label, (ts, es, same, expect) in cases.items():
        t = _branch("t", h.make_node("Identity", ["x"], ["yt"]), "yt", ts)
        e = _branch("e", h.make_node("Identity", ["x"], ["yt" if same else "ye"]), "yt" if same else "ye", es)
        m = _model([h.make_node("If", ["c"], ["y"], name="if", then_branch=t, else_branch=e)],
                   [x, _vi("c", TP.BOOL, [])], [_vi("y", TP.FLOAT, None)])
        got = [(f.severity, f.message) for f in lint_tensorrt(m) if f.op == "If" and f.severity != "info"]
        if expect is None:
            assert got == [], label
        else:
            assert len(got) == 1 and got[0][0] == expect[0] and expect[1] in got[0][1], (label, got)


def test_function_bodies_are_linted_and_names_must_be_unique():
    f1 = h.make_function("custom", "F", ["X"], ["Y"], [h.make_node("Identity", ["X"], ["Y"])], [h.make_opsetid("", 20)])
    f2 = h.make_function("other", "F", ["X"], ["Y"], [h.make_node("Identity", ["X"], ["Y"])], [h.make_opsetid("", 20)])
    g = h.make_graph([h.make_node("F", ["i"], ["o"], domain="custom", name="call")], "g",
                     [_vi("i", TP.INT64, [4])], [_vi("o", TP.INT64, [4])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 20), h.make_opsetid("custom", 1), h.make_opsetid("other", 1)],
                     functions=[f1, f2])
    errs = errors(lint_tensorrt(m))
    assert any(f.node == "F" and "keys local functions by name only" in f.message for f in errs)
    f3 = h.make_function("custom", "G", ["X"], ["Y"], [h.make_node("MaxRoiPool", ["X", "X"], ["Y"], name="roi")],
                         [h.make_opsetid("", 20)])
    m.functions.append(f3)
    assert any(f.node == "G/roi" and f.op == "MaxRoiPool" for f in errors(lint_tensorrt(m)))


def test_spp_plugin_nodes_limits_and_bodies():
    def spp(levels, name):
        return h.make_node("SpatialPyramidPool", ["x"], [name], domain="spp_deploy", name=name, levels=levels,
                           mode="max", bins="adaptive", order="channel_major", plugin_version="1", plugin_namespace="")

    fn = lambda overload: onnx.helper.make_function(  # noqa: E731
        "spp_deploy", "SpatialPyramidPool", ["X"], ["Y"], [h.make_node("Identity", ["X"], ["Y"])],
        [h.make_opsetid("", 20)], overload=overload)
    g = h.make_graph([spp([4, 2, 1], "ok"), spp([65], "big")], "g", [_vi("x", TP.FLOAT, [1, 3, 8, 8])],
                     [_vi("ok", TP.FLOAT, None), _vi("big", TP.FLOAT, None)])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 20), h.make_opsetid("spp_deploy", 1)],
                     functions=[fn(""), fn("cfg1")])
    fs = lint_tensorrt(m)
    assert [f.node for f in errors(fs)] == ["big"] and "each 1..64" in errors(fs)[0].message
    body = [f for f in fs if f.op == "local function"]
    assert len(body) == 1 and body[0].severity == "warning" and "first body for every SPP node" in body[0].message


def test_window_plugin_nodes_limits_and_bodies():
    """Window-SPP nodes are checked against what the window plugin's createPlugin refuses."""
    def win(name, levels=(1, 2, 3, 6), projection=(16.0, 21.0, 6.5), **extra):
        attrs = dict(levels=list(levels), projection=list(projection), plugin_version="1", plugin_namespace="")
        attrs.update(extra)
        return h.make_node("WindowSpatialPyramidPool", ["x", "r"], [name], domain="spp_deploy", name=name,
                           **{k: v for k, v in attrs.items() if v is not None})

    nodes = [win("ok"), win("level5", levels=(6, 5)), win("stride0", projection=(0.0, 21.0, 6.5)),
             win("short", projection=(16.0, 21.0)), win("noversion", plugin_version=None)]
    fn = onnx.helper.make_function("spp_deploy", "WindowSpatialPyramidPool", ["X", "ROIS"], ["Y"],
                                   [h.make_node("Identity", ["X"], ["Y"])], [h.make_opsetid("", 20)])
    g = h.make_graph(nodes, "g", [_vi("x", TP.FLOAT, [1, 3, 8, 8]), _vi("r", TP.FLOAT, [4, 5])],
                     [_vi(n.name, TP.FLOAT, None) for n in nodes])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 20), h.make_opsetid("spp_deploy", 1)], functions=[fn])
    fs = lint_tensorrt(m)
    errs = {f.node: f.message for f in errors(fs)}
    assert sorted(errs) == ["level5", "noversion", "short", "stride0"]
    assert "each one of 1, 2, 3, 4, 6, 8, 16" in errs["level5"] and "stride > 0" in errs["stride0"]
    assert any(f.node == "ok" and f.severity == "info" and "libspp_plugin.so" in f.message for f in fs)
    body = [f for f in fs if f.op == "local function"]
    assert len(body) == 1 and "instead of using the plugin" in body[0].message
