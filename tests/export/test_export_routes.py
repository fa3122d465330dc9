"""Export routes and refusals with their cause.

spp-deploy tries torch.export/dynamo, then the TorchScript exporter with ``dynamic_axes``, keeps
the first file that passes the parity check and records the route; it never refuses a model
that plain ``torch.onnx.export`` with dynamic H/W exports exactly; a refusal is one line that
says why (reason class, module and line) without terminal colour codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
import route_models
import torch
from route_models import ItemRegions, make_route_models
from tiny import tiny_model

from spp_deploy import export_onnx
from spp_deploy.export import causes, get_route
from spp_deploy.export import trace as onnx_export
from spp_deploy.runtime.compare import source_error
from spp_deploy.runtime.parity import check_export_parity
from spp_deploy.sources import zoo
from spp_deploy.util.errors import ParityError, UserError, first_line

ROOT = Path(__file__).resolve().parents[2]
MODELS_FILE = Path(route_models.__file__).resolve()
AXES = {0: "batch", 2: "height", 3: "width"}


def _line_of(text: str) -> int:
    """The line of ``route_models.py`` that holds ``text``."""
    lines = MODELS_FILE.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def plain_export(model, example, path: Path, route: str) -> None:
    """What a user would run: plain ``torch.onnx.export`` with dynamic batch, H and W."""
    with torch.no_grad():
        if route == "dynamo":
            torch.onnx.export(model, (example,), path, dynamo=True, input_names=["input"], output_names=["output"],
                              dynamic_shapes=({i: torch.export.Dim.DYNAMIC for i in AXES},), verify=False)
        else:
            torch.onnx.export(model, (example,), path, dynamo=False, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": AXES, "output": {0: "batch"}})


def plain_passes(model, example, path: Path, route: str) -> bool:
    """Plain torch exports the model by ``route`` and the file passes spp-deploy's own parity sweep."""
    try:
        plain_export(model, example, path, route)
        check_export_parity(model, path, example)
    except Exception:  # any failure of plain torch (export, ONNX Runtime, parity) counts as not passing
        return False
    return True


def test_dynamo_failure_falls_back_to_torchscript_exactly(tmp_path):
    model, example = make_route_models()["halves-spp"]
    try:
        plain_export(model, example, tmp_path / "plain.onnx", "dynamo")
    except Exception:
        pass
    else:
        pytest.skip("this torch's dynamo exporter handles the split: no fallback to exercise")
    out = tmp_path / "m.onnx"
    res = export_onnx(model, example, out)
    assert res.route == "torchscript"
    assert [r for r, _ in res.failures] == ["dynamo"] and "dynamo" in str(res.failures[0][1])
    assert get_route(onnx.load(out)) == "torchscript"
    compared = [r for r in res.parity if r.comparison is not None]
    assert len(compared) >= 8 and all(r.comparison.passed for r in compared)
    assert len({r.shape[2:] for r in compared}) == len(compared)  # distinct sizes
    # the SPP layer became the canonical op's lowering: no adaptive pooling, no custom node left
    ops = {n.op_type for n in onnx.load(out).graph.node}
    assert not any("Adaptive" in op or op == "SpatialPyramidPool" for op in ops)


def test_dynamo_file_that_fails_parity_falls_back(tmp_path, monkeypatch):
    """A dynamo file that is right only at the example's size (its dims made static) fails the
    parity sweep; the TorchScript route's file passes and is the one written."""
    real = onnx_export._ROUTE_FUNCTIONS["dynamo"]
    monkeypatch.setitem(onnx_export._ROUTE_FUNCTIONS, "dynamo", lambda m, x, dynamic, opset: real(m, x, (), opset))
    out = tmp_path / "m.onnx"
    res = export_onnx(tiny_model(), torch.randn(1, 3, 16, 16), out)
    assert res.route == "torchscript" and get_route(onnx.load(out)) == "torchscript"
    (route, why), = res.failures
    assert route == "dynamo" and isinstance(why, ParityError)
    assert all(r.passed for r in res.parity)


def test_every_route_failing_parity_writes_nothing(tmp_path, monkeypatch):
    real = onnx_export._ROUTE_FUNCTIONS
    for name in ("dynamo", "torchscript"):
        monkeypatch.setitem(real, name, lambda m, x, dynamic, opset, f=real[name]: f(m, x, (), opset))
    with pytest.raises(ParityError) as e:
        export_onnx(tiny_model(), torch.randn(1, 3, 16, 16), tmp_path / "m.onnx")
    assert "dynamo route's file" in str(e.value) and "torchscript route's file" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_route_in_export_output_and_inspect(cli, tmp_path):
    spec = f"{MODELS_FILE}:HalvesSPP"
    code, out, err = cli("export", "--model", spec, "--input-shape", "1x3x32x32", "-o", tmp_path / "m.onnx")
    assert code == 0, err
    assert "route torchscript" in out and "dynamo route not used: torch.onnx.export (dynamo) failed" in out
    code, out, err = cli("inspect", "--model", spec, "--input-shape", "1x3x32x32", "--json", tmp_path / "i.json")
    assert code == 0, err
    route = json.loads((tmp_path / "i.json").read_text())["export_route"]
    assert route["route"] == "torchscript" and [d["route"] for d in route["not_used"]] == ["dynamo"]
    code, out, err = cli("inspect", "--model", f"{ROOT / 'tests/support/tiny.py'}:tiny_model", "--input-shape",
                         "1x3x16x16")
    assert code == 0 and out.rstrip().splitlines()[-1] == "export route: dynamo"


def test_data_dependent_region_count_is_refused_with_its_cause(tmp_path):
    """Through the console entry point, stderr a pipe (not a terminal): one line, no colour
    codes, the reason class, the module, the file:line of the ``.item()`` and torch's words."""
    r = subprocess.run([sys.executable, "-m", "spp_deploy", "export", "--model", f"{MODELS_FILE}:ItemRegions",
                        "--input-shape", "1x3x16x16", "-o", "m.onnx"], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == UserError.exit_code
    err = r.stderr
    assert err.count("\n") == 1 and err.startswith("spp-deploy: error: ") and "Traceback" not in err, err
    assert "\x1b" not in err
    assert causes.DATA_DEPENDENT in err
    line = _line_of("regions = int(")
    assert f"in the model ({MODELS_FILE}:{line}: regions = int(" in err
    assert "data-dependent expression" in err  # torch's words for the value
    assert "torchscript" in err  # the other route was tried too, and said why not
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make, reason", [
    (lambda: ItemRegions(), causes.DATA_DEPENDENT),
    (lambda: _StaticHeight(), causes.SPECIALISED),
    (lambda: _Adaptive(), causes.NO_DYNAMIC_OP),
])
def test_dynamo_failures_are_classified(make, reason):
    model = make().eval()
    with pytest.raises(UserError) as e:
        onnx_export.to_onnx_model(model, torch.randn(1, 3, 16, 16), route="dynamo")
    text = str(e.value)
    assert text.startswith("torch.onnx.export (dynamo) failed: " + reason), text
    assert "\x1b" not in text and "\n" not in text and "step 1/3" not in text


class _StaticHeight(torch.nn.Module):
    """A branch on the exact height: torch.export specialises H to the example's value."""

    def forward(self, x):
        if x.shape[2] == 16:
            return x.amax((2, 3))
        return x.mean((2, 3))


class _Adaptive(torch.nn.Module):
    """adaptive_max_pool2d outside any recognized SPP layer (to_onnx_model does not recognize)."""

    def forward(self, x):
        return torch.nn.functional.adaptive_max_pool2d(x, 3).flatten(1)


def test_relayed_torch_messages_lose_their_colour_codes():
    """torch colours "This is step 1/3" even into a pipe; what we relay is plain."""
    with pytest.raises(Exception) as e, torch.no_grad():
        torch.onnx.export(ItemRegions().eval(), (torch.randn(1, 3, 8, 8),), dynamo=True,
                          dynamic_shapes=({i: torch.export.Dim.DYNAMIC for i in AXES},), verify=False)
    assert "\x1b[" in str(e.value)  # torch's own text is coloured
    assert "\x1b" not in first_line(e.value)
    assert "\x1b" not in str(UserError(f"wrapped: {e.value}"))


def _all_models():
    for name in zoo.zoo_names():
        yield pytest.param(lambda name=name: (zoo.create(name), torch.randn(*zoo.get_entry(name).input_shape)),
                           id=f"zoo:{name}")
    for name in ("halves-spp", "item-regions", "stride32-spp"):
        yield pytest.param(lambda name=name: make_route_models()[name], id=name)
    yield pytest.param(lambda: (tiny_model(), torch.randn(1, 3, 16, 16)), id="tiny")


@pytest.mark.slow
@pytest.mark.parametrize("load", list(_all_models()))
def test_never_refuses_what_plain_torch_exports_exactly(load, tmp_path):
    model, example = load()
    assert source_error(model, tuple(example.shape)) is None
    plain = {route: plain_passes(model, example, tmp_path / f"plain-{route}.onnx", route)
             for route in ("dynamo", "torchscript")}
    try:
        res = export_onnx(model, example, tmp_path / "m.onnx")
    except UserError as e:
        assert not any(plain.values()), f"plain torch exports it exactly ({plain}), spp-deploy refused: {e}"
        return
    assert all(r.passed for r in res.parity) and get_route(onnx.load(tmp_path / "m.onnx")) == res.route


@pytest.mark.parametrize("spp_impl", ["standard", "plugin"])
def test_both_routes_emit_the_same_spp_node(spp_impl):
    """The TorchScript symbolics write the node the dynamo translation table writes (name,
    domain, attributes), so the graph pass lowers or keeps it the same way."""
    model, x = tiny_model(), torch.randn(2, 3, 16, 16)
    protos = {route: onnx_export.to_onnx_model(model, x, spp_impl=spp_impl, route=route)
              for route in ("dynamo", "torchscript")}

    def spp_nodes(proto):
        return [(n.domain, n.op_type, sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute))
                for n in proto.graph.node if n.domain == "spp_deploy"]

    assert spp_nodes(protos["dynamo"]) == spp_nodes(protos["torchscript"])
    assert len(spp_nodes(protos["dynamo"])) == (spp_impl == "plugin")
    assert [f.name for f in protos["dynamo"].functions] == [f.name for f in protos["torchscript"].functions]
    assert {route: get_route(p) for route, p in protos.items()} == {"dynamo": "dynamo", "torchscript": "torchscript"}
    feed = torch.randn(3, 3, 23, 17)
    with torch.no_grad():
        ref = model(feed).numpy()
    for proto in protos.values():
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        torch.testing.assert_close(torch.from_numpy(sess.run(None, {"input": feed.numpy()})[0]), torch.from_numpy(ref))


@pytest.mark.parametrize("name", zoo.zoo_names())
def test_torchscript_route_alone_exports_every_zoo_model_exactly(name, tmp_path):
    """The fallback is a full route: recognized SPP layers go through its symbolics, and the
    file passes the same parity sweep."""
    model, example = zoo.create(name), torch.randn(*zoo.get_entry(name).input_shape)
    res = export_onnx(model, example, tmp_path / "m.onnx", routes=("torchscript",))
    assert res.route == "torchscript" and not res.failures
    assert get_route(onnx.load(tmp_path / "m.onnx")) == "torchscript"
    compared = [r for r in res.parity if r.comparison is not None]
    assert len(compared) >= 8 and all(r.comparison.passed for r in compared)
