"""Models whose output is a tuple, list, dict or nested mix export (standard and plugin),
pass the parity check output by output, validate, run and bench; a non-tensor leaf is refused in
one line naming its path."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from multi_output import MULTI, multi_output_model
from spp_deploy import export_onnx
from spp_deploy.util.errors import ParityError, UserError
from spp_deploy.sources.outputs import output_names
from spp_deploy.runtime.parity import check_export_parity

# kind -> the documented output names and which tensor each one is, from (logits, features)
EXPECTED = {
    "tuple": [("output.0", lambda y, f: y), ("output.1", lambda y, f: f)],
    "list": [("output.0", lambda y, f: y), ("output.1", lambda y, f: f)],
    "dict": [("logits", lambda y, f: y), ("feat", lambda y, f: f)],
    "nested": [("a.0", lambda y, f: y), ("a.1", lambda y, f: f), ("b", lambda y, f: 2 * f)],
    "namedtuple": [("logits", lambda y, f: y), ("feat", lambda y, f: f)],
    "clash": [("fc.weight", lambda y, f: y), ("conv2d", lambda y, f: f), ("linear", lambda y, f: 2 * f)],
}
BAD = {"int": "output['meta'] is an int", "str": "output[1]['tag'] is a str", "none": "output[1] is None"}


def _expected(kind, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The leaves the model returns, rebuilt from its layers (not from its output structure)."""
    model = multi_output_model(kind)
    with torch.no_grad():
        f = model.spp(model.conv(torch.from_numpy(x)))
        y = model.fc(f)
    return [(name, pick(y, f).numpy()) for name, pick in EXPECTED[kind]]


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("spp-deploy: error: ")
    return err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(kind, spp_impl): (path, ExportResult)}, parity-checked: exported once per module."""
    d = tmp_path_factory.mktemp("multi")
    out = {}
    for kind in ("dict", "nested"):
        for impl in ("standard", "plugin"):
            path = d / f"{kind}_{impl}.onnx"
            out[kind, impl] = path, export_onnx(multi_output_model(kind), torch.randn(1, 3, 16, 16), path,
                                                spp_impl=impl)
    return out


@pytest.mark.parametrize("impl", ["standard", "plugin"])
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_export_names_and_numbers_per_output(tmp_path, exported, kind, impl):
    if (kind, impl) in exported:
        path, result = exported[kind, impl]
    else:
        path = tmp_path / "m.onnx"
        result = export_onnx(multi_output_model(kind), torch.randn(1, 3, 16, 16), path, spp_impl=impl)
    names = [name for name, _ in EXPECTED[kind]]
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == names
    nodes = {n.op_type for n in graph.node}
    assert ("SpatialPyramidPool" in nodes) == (impl == "plugin")
    # the parity check compared every output at every size it did not skip
    compared = [r for r in result.parity if r.skipped is None]
    assert len(compared) >= 8 and all(sorted(r.outputs) == sorted(names) and r.passed for r in compared)
    # at a size export never saw, each output is the model's own tensor
    x = np.random.default_rng(1).standard_normal((2, 3, 23, 37), dtype=np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))
    for name, want in _expected(kind, x):
        assert got[name].shape == want.shape
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6)


def test_single_tensor_output_keeps_its_name(tiny_onnx):
    assert [o.name for o in onnx.load(str(tiny_onnx)).graph.output] == ["output"]
    assert output_names(torch.zeros(1)) == ["output"]


def test_parity_compares_every_output_not_just_the_first(exported):
    """A reference whose second output differs from the file fails the check, naming that output."""
    path, _ = exported["dict", "standard"]

    class Drifted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = multi_output_model("dict")

        def forward(self, x):
            out = self.inner(x)
            return {"logits": out["logits"], "feat": out["feat"] * 1.01}

    with pytest.raises(ParityError, match="output 'feat' differs from PyTorch"):
        check_export_parity(Drifted().eval(), path, torch.randn(1, 3, 16, 16), sizes=[(1, 16, 16)])
    reports = check_export_parity(multi_output_model("dict"), path, torch.randn(1, 3, 16, 16), sizes=[(1, 16, 16)])
    assert set(reports[0].outputs) == {"logits", "feat"}


@pytest.mark.parametrize("kind", list(BAD))
def test_non_tensor_leaf_is_refused_in_one_line(tmp_path, cli, kind):
    path = tmp_path / "m.onnx"
    with pytest.raises(UserError, match=BAD[kind].replace("[", r"\[").replace("]", r"\]")):
        export_onnx(multi_output_model(kind), torch.randn(1, 3, 16, 16), path)
    code, out, err = cli("export", "--model", MULTI, "--model-kwargs", json.dumps({"kind": kind}),
                         "--input-shape", "1x3x16x16", "-o", path)
    assert code == 2 and BAD[kind] in _one_error_line(err)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind
    kwargs = ["--model", MULTI, "--model-kwargs", json.dumps({"kind": kind})]
    code, out, err = cli("validate", *kwargs, "--backends", "torch", "--sizes", "16x16")
    assert code == 2 and BAD[kind] in _one_error_line(err)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    code, out, err = cli("run", *kwargs, "--backend", "torch", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npz")
    assert code == 2 and BAD[kind] in _one_error_line(err)
    assert not (tmp_path / "y.npz").exists()


def test_colliding_output_names_are_refused():
    with pytest.raises(UserError, match="would be output 'input', which is the input's name"):
        output_names({"input": torch.zeros(1)})
    clash = r"output\['a.0'\] would be output 'a.0', which is the name of output\['a'\]\[0\]"
    with pytest.raises(UserError, match=clash):
        output_names({"a": (torch.zeros(1),), "a.0": torch.zeros(1)})
    with pytest.raises(UserError, match="without a tensor"):
        output_names(())


def test_validate_compares_each_output_with_its_tolerance(tmp_path, exported, cli):
    path, _ = exported["nested", "plugin"]
    kwargs = json.dumps({"kind": "nested"})
    report = tmp_path / "r.json"
    code, out, err = cli("validate", "--model", MULTI, "--model-kwargs", kwargs, "--onnx", path,
                         "--sizes", "16x16,2x21x33", "--atol", "b:1e-6", "--rtol", "a.1:1e-4", "--json", report)
    assert code == 0, err
    for name in ("a.0", "a.1", "b"):
        assert sum(f" {name}: max abs" in line for line in out.splitlines()) == 2, out
    records = json.loads(report.read_text())["results"]
    assert sorted(r["output"] for r in records) == ["a.0", "a.0", "a.1", "a.1", "b", "b"]
    for r in records:
        assert r["status"] == "PASSED" and (r["max_rel"] <= r["rtol"] or r["max_abs"] <= r["atol"])
        assert (r["atol"], r["rtol"]) == {"a.0": (0.0, 1e-5), "a.1": (0.0, 1e-4), "b": (1e-6, 1e-5)}[r["output"]]
    code, out, err = cli("validate", "--model", MULTI, "--model-kwargs", kwargs, "--onnx", path,
                         "--sizes", "16x16", "--atol", "nope:1e-3")
    assert code == 2 and "--atol: no output named 'nope' (the outputs: a.0, a.1, b)" in _one_error_line(err)


@pytest.mark.parametrize("backend", ["ort-cpu", "torch"])
def test_run_writes_one_array_per_output(tmp_path, exported, cli, backend):
    path, _ = exported["dict", "standard"]
    x = np.random.default_rng(2).standard_normal((1, 3, 19, 26), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npz"
    source = ["--onnx", path] if backend == "ort-cpu" else ["--model", MULTI, "--model-kwargs", '{"kind": "dict"}']
    code, stdout, err = cli("run", *source, "--backend", backend, "-i", tmp_path / "x.npy", "-o", out)
    assert code == 0, err
    assert "-> logits 1x3" in stdout and "-> feat 1x20" in stdout
    with np.load(out) as saved:
        assert list(saved.files) == ["logits", "feat"]
        for name, want in _expected("dict", x):
            np.testing.assert_allclose(saved[name], want, rtol=1e-5, atol=1e-6)
    code, _, err = cli("run", *source, "--backend", backend, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert code == 2 and "written as one .npz archive" in _one_error_line(err)
    assert not (tmp_path / "y.npy").exists()


def test_bench_times_a_multi_output_model(tmp_path, cli):
    report = tmp_path / "r.json"
    code, out, err = cli("bench", "--no-progress", "--model", MULTI, "--model-kwargs", '{"kind": "nested"}',
                         "--backends", "torch,ort-cpu", "--shapes", "1x3x16x16,2x3x24x20", "--iterations", "2",
                         "--warmup", "0", "--json", report)
    assert code == 0, err
    results = json.loads(report.read_text())["results"]
    assert sorted((r["backend"], r["status"]) for r in results) == [("ort-cpu", "ok")] * 2 + [("torch", "ok")] * 2
    code, out, err = cli("bench", "--no-progress", "--model", MULTI, "--model-kwargs", '{"kind": "int"}',
                         "--backends", "torch", "--shapes", "1x3x16x16", "--iterations", "2", "--warmup", "0")
    assert code == 2 and "output['meta'] is an int" in _one_error_line(err)


def test_a_file_with_other_outputs_than_the_model_fails_in_one_line(tiny_onnx, cli):
    """tiny.py's single-output file against the same layers returning (logits, features)."""
    with pytest.raises(ParityError, match=r"the ONNX file has 1 output\(s\), the PyTorch model returns 2"):
        check_export_parity(multi_output_model("tuple"), tiny_onnx, torch.randn(1, 3, 16, 16), sizes=[(1, 16, 16)])
    code, out, err = cli("validate", "--model", MULTI, "--onnx", tiny_onnx, "--sizes", "16x16")
    assert code == 1, err
    assert "error: ort-cpu gives 1 output(s), the PyTorch model returns 2 tensor(s) (output.0, output.1)" in out


def test_to_host_keeps_the_structure():
    from spp_deploy.sources.outputs import to_host

    a, b, c = torch.randn(2, 3), torch.randn(4), torch.randn(1)
    host = to_host({"a": (a, [b]), "c": c})
    assert isinstance(host["a"], tuple) and isinstance(host["a"][1], list) and list(host) == ["a", "c"]
    for got, want in ((host["a"][0], a), (host["a"][1][0], b), (host["c"], c)):
        assert got.device.type == "cpu" and torch.equal(got, want)


def test_name_outputs_swaps_and_moves_clashing_values():
    """Outputs a, b renamed to b, t while an inner value is called t: ONNX Runtime still computes
    the same numbers under the new names."""
    from onnx import TensorProto, helper

    from spp_deploy.export.names import name_outputs

    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["t"]), helper.make_node("Relu", ["t"], ["a"]),
         helper.make_node("Abs", ["x"], ["b"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("a", "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    name_outputs(model, ["b", "t"])
    onnx.checker.check_model(model, full_check=True)
    x = np.array([-2, -1, 0, 3], np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    assert list(got) == ["b", "t"]
    np.testing.assert_array_equal(got["b"], np.maximum(-x, 0))
    np.testing.assert_array_equal(got["t"], np.abs(x))
