"""Options as objects: ExportOptions/BuildOptions/ValidateOptions mirror their functions'
keywords, the CLI's option groups build them, bench's temporary export takes the export flags, and
the backend registry is the one declaration of backend names."""

import ast
import dataclasses
import inspect
import textwrap
from pathlib import Path

import pytest
import torch

import spp_deploy
from spp_deploy import SpatialPyramidPool, api, export_onnx
from spp_deploy.util import constants
from spp_deploy.cli import build_parser
from spp_deploy.commands.option_groups import build_options, export_options, validate_options
from spp_deploy.checked_export import export_window_model
from spp_deploy.util.errors import UserError
from spp_deploy.options import BuildOptions, ExportOptions, ValidateOptions, field_names
from spp_deploy.runtime import backends
from spp_deploy.runtime.trt.build import build_engine

ROOT = Path(spp_deploy.__file__).parent


def _keywords(fn) -> dict:
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind == p.KEYWORD_ONLY and p.name != "options"}


@pytest.mark.parametrize("cls,fn,skip", [
    (ExportOptions, export_onnx, ()),
    (BuildOptions, build_engine, ("mark_outputs", "trt")),
    (ValidateOptions, api.validate, ("engine", "inputs")),
])
def test_options_fields_are_the_functions_keywords(cls, fn, skip):
    kw = {k: v for k, v in _keywords(fn).items() if k not in skip}
    assert list(field_names(cls)) == list(kw)  # one to one, in the signature's order
    made = cls()
    for name, default in kw.items():
        value = getattr(made, name)
        assert value == (tuple(default) if isinstance(default, (list, tuple)) else default), name
    documented = inspect.getsource(cls)
    for name in kw:  # each field has its docstring line right below it
        assert f"    {name}:" in documented and documented.split(f"    {name}:")[1].split("\n")[1].strip().startswith('"""')


def _parse(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def test_the_export_group_builds_what_the_library_call_says(tmp_path):
    decl = "spp=levels:2,1;rule=adaptive;mode=max;order=channel_major"
    args = _parse("export", "--model", "zoo:sppnet-zf5", "-o", tmp_path / "m.onnx", "--dynamic", "batch,height",
                  "--opset", "19", "--spp-impl", "plugin", "--precision", "fp16", "--sizes", "16x16,2x20x24",
                  "--no-check", "--spp-layer", decl, "--no-sppf", "--tabulate-limit", "64", "--no-recognize",
                  "--force")
    from spp_deploy.recognize.config import parse_declaration

    library = ExportOptions(dynamic="batch,height", opset="19", spp_impl="plugin", precision="fp16",
                            sizes=[(16, 16), (2, 20, 24)], check_parity=False, spp_layers=dict([parse_declaration(decl)]),
                            sppf=False, tabulate_limit=64, recognize=False, force=True)
    assert export_options(args) == library
    # defaults: the flags' defaults are the library's (tabulation's limit said explicitly)
    plain = export_options(_parse("export", "--model", "zoo:sppnet-zf5", "-o", tmp_path / "m.onnx"))
    assert plain == ExportOptions(tabulate_limit=constants.DEFAULT_TABULATE_LIMIT)


def test_subsets_keep_the_library_defaults(tmp_path):
    bench = export_options(_parse("bench", "--model", "zoo:sppnet-zf5", "--sizes", "32x32", "--opset", "18"),
                           check_parity=False)
    assert bench == ExportOptions(opset=18, check_parity=False, tabulate_limit=constants.DEFAULT_TABULATE_LIMIT)
    assert bench.sizes is None  # bench's --sizes is its sweep, not parity sizes
    det = export_options(_parse("export-detector", "--model", "zoo:sppnet-zf5", "-o", tmp_path, "--no-check",
                                "--spp-impl", "plugin"))
    assert det == ExportOptions(check_parity=False, spp_impl="plugin")


def test_the_build_group_builds_build_options(tmp_path):
    args = _parse("build", tmp_path / "m.onnx", "-o", tmp_path / "m.engine", "--minShapes", "input:1x3x8x8",
                  "--opt-shape", "input:1x3x16x16", "--max-shape", "input:2x3x32x32", "--fp16", "--workspace", "2",
                  "--no-cache", "--timingCacheFile", tmp_path / "t.cache")
    assert build_options(args) == BuildOptions(min_shape="input:1x3x8x8", opt_shape="input:1x3x16x16",
                                               max_shape="input:2x3x32x32", fp16=True, workspace_gib=2.0,
                                               use_cache=False, timing_cache=str(tmp_path / "t.cache"))


def test_the_validate_group_builds_validate_options(tmp_path):
    args = _parse("validate", "--model", "zoo:sppnet-zf5", "--onnx", tmp_path / "m.onnx", "--plugin", "lib.so",
                  "--sizes", "40x56,2x33x17", "--batch", "1,3", "--seed", "4", "--rtol", "1e-4", "--atol", "out:1e-6",
                  "--reference", "torch-fp64", "--channels", "3")
    assert validate_options(args, ["ort-cpu"]) == ValidateOptions(
        backends=("ort-cpu",), sizes=((40, 56), (2, 33, 17)), batch=(1, 3), channels=3, rtol={"*": 1e-4},
        atol={"out": 1e-6}, seed=4, reference="torch-fp64", plugin="lib.so")
    plain = _parse("validate", "--model", "zoo:sppnet-zf5", "--onnx", tmp_path / "m.onnx")
    assert validate_options(plain, ["ort-cpu"]) == ValidateOptions(backends=("ort-cpu",))
    assert validate_options(plain, ["ort-cpu"], default_sizes=False).sizes == ()
    # the command and api.validate build one config from these options
    cfg = api.validate_config(validate_options(args, ["ort-cpu"]), 3, "m.onnx")
    assert cfg.shapes == [(1, 3, 40, 56), (3, 3, 40, 56), (2, 3, 33, 17)] and cfg.seed == 4


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), SpatialPyramidPool([2, 1]))


def test_a_keyword_composes_with_options(tmp_path):
    import onnx

    out = tmp_path / "m.onnx"
    res = export_onnx(_model(), torch.randn(1, 3, 16, 16), out, ExportOptions(sizes=[(12, 20)]), spp_impl="plugin")
    assert [r.shape[2:] for r in res.parity] == [(12, 20)]  # the options' sizes
    assert any(n.op_type == "SpatialPyramidPool" for n in onnx.load(out).graph.node)  # the keyword's impl


@pytest.mark.parametrize("call,option", [
    (lambda p: export_onnx(_model(), torch.randn(1, 3, 16, 16), p, ExportOptions(opset=19), opset=18), "opset"),
    (lambda p: export_onnx(_model(), torch.randn(1, 3, 16, 16), p, options={"opset": 19}), "options"),
    (lambda p: export_window_model(torch.nn.Identity(), p, ExportOptions(sizes=[(8, 8)]), channels=4, stride=16),
     "options"),
    (lambda p: build_engine(p, p.with_suffix(".engine"), options=BuildOptions(fp16=True), fp16=False), "fp16"),
    (lambda p: api.validate(_model(), p, options=ValidateOptions(seed=3), seed=4), "seed"),
])
def test_a_field_given_both_ways_is_one_line(tmp_path, call, option):
    with pytest.raises(UserError) as e:
        call(tmp_path / "m.onnx")
    assert e.value.option == option and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,message", [
    (["--opset", "17"], "--opset"),
    (["--spp-layer", "nope"], "--spp-layer"),
    (["--tabulate-limit", "x"], "--tabulate-limit"),
])
def test_bench_refuses_bad_export_flags_in_one_line(cli, argv, message):
    code, _, err = cli("bench", "--model", "zoo:sppnet-zf5", "--backends", "ort-cpu", *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


DATA_DEPENDENT = """
import torch
import torch.nn.functional as F

class Pyramid(torch.nn.Module):
    # max or avg by the data: no rule reproduces it, so it is exported only when declared
    def forward(self, x):
        y = F.adaptive_max_pool2d(x, 2) if float(x.mean()) > 0 else F.adaptive_avg_pool2d(x, 2)
        return y.flatten(1)

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.spp = Pyramid()

    def forward(self, x):
        return self.spp(torch.relu(self.conv(x)) + 1)
"""


def test_bench_exports_with_spp_layer_and_tabulate_limit(tmp_path, cli, monkeypatch):
    src = tmp_path / "dd.py"
    src.write_text(textwrap.dedent(DATA_DEPENDENT))
    argv = ["bench", "--model", f"{src}:Net", "--backends", "ort-cpu", "--shapes", "1x3x16x16", "--iterations", "2",
            "--warmup", "0", "--no-progress"]
    code, out, err = cli(*argv)
    assert code == 2 and "cannot export SPP layer 'spp'" in err and "--spp-layer" in err
    from spp_deploy import checked_export as deploy

    seen, real = [], deploy.export_onnx

    def spy(*args, **kwargs):
        seen.append(args[3] if len(args) > 3 else kwargs.get("options"))
        return real(*args, **kwargs)

    monkeypatch.setattr(deploy, "export_onnx", spy)
    code, out, err = cli(*argv, "--spp-layer", "spp=levels:2;rule=adaptive;mode=max", "--tabulate-limit", "40")
    assert code == 0, err
    assert "ort-cpu" in out and "1x3x16x16" in out
    (options,) = seen
    assert options.tabulate_limit == 40 and list(options.spp_layers) == ["spp"] and options.check_parity is False


def _backend_literals(tree: ast.AST, known: set[str]) -> list[int]:
    """Lines of tuple/list/set literals and dict keys naming two or more backends."""
    lines = []
    for n in ast.walk(tree):
        items = n.keys if isinstance(n, ast.Dict) else n.elts if isinstance(n, (ast.Tuple, ast.List, ast.Set)) else []
        found = [i.value for i in items if isinstance(i, ast.Constant) and i.value in known]
        if len(found) >= 2:
            lines.append(n.lineno)
    return lines


def test_the_backend_registry_is_the_only_declaration():
    known = set(backends.REGISTRY)
    assert known >= {"torch", "ort-cpu", "trt", "triton-grpc"}
    bad = {str(f.relative_to(ROOT)): lines for f in ROOT.rglob("*.py")
           if (lines := _backend_literals(ast.parse(f.read_text()), known))}
    assert bad == {}
    # every list of names is read from the table, the old names included
    from spp_deploy.bench import timed, triton_client

    assert constants.BACKENDS == backends.BACKENDS == tuple(b for b, s in backends.REGISTRY.items() if s.runner)
    assert set(constants.BENCH_BACKENDS) == set(timed.BACKENDS) == {b for b, s in backends.REGISTRY.items() if s.bench}
    assert set(constants.TRITON_BACKENDS) == set(triton_client.PROTOCOLS) == timed.REMOTE_BACKENDS
    assert backends.GPU_BACKENDS == {b for b, s in backends.REGISTRY.items() if s.device == "gpu"}
    assert all(dataclasses.is_dataclass(s) for s in backends.REGISTRY.values())


def test_the_registry_makes_runners_and_names_what_is_missing(tmp_path):
    with pytest.raises(UserError, match="needs an ONNX file"):
        backends.make_runner("ort-cpu")
    with pytest.raises(UserError, match="unknown backend 'torch-cuda'"):  # bench only: no runner
        backends.make_runner("torch-cuda", model=_model())
    runner = backends.make_runner("torch-fp64", model=_model())
    with runner:
        (out,) = runner.infer({"input": torch.randn(1, 3, 8, 8).numpy()}).values()
    assert out.dtype.name == "float64"
