"""`spp-deploy check --target tensorrt`: exported files pass, documented restrictions are caught."""

import onnx
from onnx import TensorProto as TP
from onnx import helper as h

from spp_deploy.runtime.lint import errors, lint_tensorrt


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
