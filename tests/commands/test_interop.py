"""Inputs and outputs that Polygraphy and trtexec read: written here, loaded by the real
``polygraphy`` package (its JSON loader and ``RunResults``), and the other way round."""

import json

import numpy as np
import pytest
import tiny

from spp_deploy import interop
from spp_deploy.util.errors import UserError

polygraphy_json = pytest.importorskip("polygraphy.json")
from polygraphy.comparator import RunResults
from polygraphy.comparator.struct import IterationResult


def _feeds(rng, shapes, dtype=np.float32):
    return [{"input": rng.standard_normal(s).astype(dtype)} for s in shapes]


def test_inputs_round_trip_through_polygraphy(tmp_path):
    rng = np.random.default_rng(3)
    feeds = _feeds(rng, [(1, 3, 8, 9), (2, 3, 5, 7)]) + [{"a": rng.integers(0, 9, (3,)), "b": np.float16([1.5, -2])}]
    path = tmp_path / "in.json"
    interop.save_inputs(path, feeds)
    loaded = polygraphy_json.load_json(str(path))
    assert [sorted(f) for f in loaded] == [sorted(f) for f in feeds]
    for got, want in zip(loaded, feeds):
        for name in want:
            assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name])
    back = tmp_path / "back.json"
    polygraphy_json.save_json(loaded, str(back))  # what `polygraphy run --save-inputs` writes
    for got, want in zip(interop.read_inputs(back), feeds):
        assert all(np.array_equal(got[n], want[n]) and got[n].dtype == want[n].dtype for n in want)


def test_outputs_round_trip_through_polygraphy_run_results(tmp_path):
    rng = np.random.default_rng(4)
    results = [("torch", [{"logits": rng.standard_normal((1, 3)).astype(np.float32)},
                          {"logits": rng.standard_normal((2, 3)).astype(np.float32)}]),
               ("ort-cpu", [{"logits": rng.standard_normal((1, 3)).astype(np.float32)}])]
    path = tmp_path / "out.json"
    interop.save_outputs(path, results)
    rr = RunResults.load(str(path))
    assert [name for name, _ in rr.items()] == [name for name, _ in results]
    for (name, iterations), (_, want) in zip(rr.items(), results):
        assert len(iterations) == len(want)
        for it, w in zip(iterations, want):
            assert isinstance(it, IterationResult) and it.runner_name == name
            assert np.array_equal(it["logits"], w["logits"])
    # and what Polygraphy itself writes reads back here
    theirs = RunResults()
    arr = rng.standard_normal((2, 5)).astype(np.float32)
    theirs.append(("trt-runner-N0", [IterationResult({"output": arr}, runner_name="trt-runner-N0")]))
    theirs.save(str(tmp_path / "theirs.json"))
    ((runner, (outs,)),) = interop.read_outputs(tmp_path / "theirs.json")
    assert runner == "trt-runner-N0" and np.array_equal(outs["output"], arr)


def test_trtexec_raw_files(tmp_path):
    rng = np.random.default_rng(5)
    feeds = _feeds(rng, [(1, 3, 6, 7), (2, 3, 4, 4)])
    commands = interop.save_trtexec_inputs(tmp_path / "raw", feeds)
    for i, (feed, cmd) in enumerate(zip(feeds, commands)):
        raw = tmp_path / "raw" / f"input.{i}.bin"
        back = np.fromfile(raw, dtype="<f4").reshape(feed["input"].shape)  # what trtexec reads: raw, C order
        assert np.array_equal(back, feed["input"])
        assert f"--loadInputs=input:{raw}" in cmd and f"--shapes=input:{'x'.join(map(str, feed['input'].shape))}" in cmd
    assert (tmp_path / "raw" / "trtexec.txt").read_text().count("trtexec ") == len(feeds)


@pytest.mark.parametrize("content,message", [
    ("{}", "not a Polygraphy inputs file"),
    ("[]", "not a Polygraphy inputs file"),
    ('[{"input": {"array": "!!", "polygraphy_class": "ndarray"}}]', "cannot decode the array"),
    ('[{"input": 3}]', "is not an array in Polygraphy's JSON format"),
    ("not json", "is not JSON"),
])
def test_bad_inputs_file_is_one_error(tmp_path, content, message):
    path = tmp_path / "in.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        interop.read_inputs(path)


def test_validate_saves_what_polygraphy_loads_and_loads_it_back(tmp_path, cli, tiny_onnx):
    saved_in, saved_out = tmp_path / "in.json", tmp_path / "out.json"
    code, out, err = cli("validate", "--model", tiny.TINY, "--onnx", tiny_onnx, "--sizes", "9x11,2x6x5",
                         "--save-inputs", saved_in, "--save-outputs", saved_out, "--save-trtexec-inputs", tmp_path / "raw")
    assert code == 0, err
    feeds = polygraphy_json.load_json(str(saved_in))
    assert [f["input"].shape for f in feeds] == [(1, 3, 9, 11), (2, 3, 6, 5)]
    rr = RunResults.load(str(saved_out))
    assert [name for name, _ in rr.items()] == ["torch", "ort-cpu"]
    torch_runs = dict(rr.items())["torch"]
    model = tiny.tiny_model()
    import torch

    for feed, it in zip(feeds, torch_runs):
        with torch.no_grad():
            assert np.array_equal(it["output"], model(torch.from_numpy(feed["input"])).numpy())
    assert np.array_equal(np.fromfile(tmp_path / "raw" / "input.1.bin", "<f4").reshape(2, 3, 6, 5), feeds[1]["input"])

    # replay: the same inputs, and the saved ONNX Runtime outputs compared with PyTorch
    code, out, err = cli("validate", "--model", tiny.TINY, "--onnx", tiny_onnx, "--load-inputs", saved_in,
                         "--load-outputs", saved_out, "--json", tmp_path / "r.json")
    assert code == 0, err
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {r["backend"] for r in rows} == {"ort-cpu", "torch (saved)", "ort-cpu (saved)"}
    assert all(r["status"] == "PASSED" for r in rows) and len(rows) == 6
    assert {r["input"] for r in rows} == {"in.json[0]", "in.json[1]"}

    # a saved output that differs is a failure
    bad = RunResults()
    wrong = [IterationResult({"output": it["output"] + 1}, runner_name="trt-runner") for it in torch_runs]
    bad.append(("trt-runner", wrong))
    bad.save(str(tmp_path / "bad.json"))
    code, out, err = cli("validate", "--model", tiny.TINY, "--onnx", tiny_onnx, "--load-inputs", saved_in,
                         "--load-outputs", tmp_path / "bad.json")
    failed = [ln for ln in out.splitlines() if ln.startswith("FAILED ") and "trt-runner (saved)" in ln]
    assert code == 1 and len(failed) == 2


def test_run_replays_polygraphy_files(tmp_path, cli, tiny_onnx):
    rng = np.random.default_rng(6)
    feeds = _feeds(rng, [(1, 3, 7, 8), (1, 3, 12, 5)])
    polygraphy_json.save_json(feeds, str(tmp_path / "in.json"))
    code, out, err = cli("run", "--onnx", tiny_onnx, "--load-inputs", tmp_path / "in.json",
                         "--save-outputs", tmp_path / "out.json")
    assert code == 0, err
    ((runner, runs),) = RunResults.load(str(tmp_path / "out.json")).items()
    assert runner == "ort-cpu" and len(runs) == 2
    code, out, err = cli("run", "--model", tiny.TINY, "--load-inputs", tmp_path / "in.json",
                         "--load-outputs", tmp_path / "out.json")
    assert code == 0, err
    passed = [ln for ln in out.splitlines() if ln.strip().startswith("PASSED") and "ort-cpu (saved)" in ln]
    assert len(passed) == 2 and "in.json[1]" in passed[1]
    runs[1]["output"] = runs[1]["output"] * 1.01  # one saved output off by 1%
    theirs = RunResults()
    theirs.append((runner, runs))
    theirs.save(str(tmp_path / "off.json"))
    code, out, err = cli("run", "--model", tiny.TINY, "--load-inputs", tmp_path / "in.json",
                         "--load-outputs", tmp_path / "off.json")
    assert code == 1 and [ln.split()[0] for ln in out.splitlines() if "(saved)" in ln] == ["PASSED", "FAILED"]
    code, out, err = cli("run", "--model", tiny.TINY, "--input", tmp_path / "x.npy", "--load-inputs", tmp_path / "in.json")
    assert code == 2 and "one of them" in err


def test_load_outputs_without_inputs_is_refused(tmp_path, cli, tiny_onnx):
    code, out, err = cli("validate", "--model", tiny.TINY, "--onnx", tiny_onnx, "--load-outputs", tmp_path / "o.json")
    assert code == 2 and err.startswith("spp-deploy: error: --load-outputs") and "Traceback" not in err


def _parsed(argv):
    from spp_deploy.cli import build_parser

    ns = vars(build_parser().parse_args(argv))
    ns.pop("func")
    return ns


def test_trtexec_spellings_mean_the_same_on_build_and_bench():
    build = ["build", "m.onnx"]
    assert _parsed(build + ["--saveEngine=m.plan", "--minShapes=input:1x3x8x8", "--optShapes=input:2x3x16x16",
                            "--maxShapes=input:4x3x32x32", "--timingCacheFile=t.cache"]) == \
        _parsed(build + ["-o", "m.plan", "--min-shape", "input:1x3x8x8", "--opt-shape", "input:2x3x16x16",
                         "--max-shape", "input:4x3x32x32", "--timing-cache", "t.cache"])
    trtexec = _parsed(["bench", "--loadEngine=m.plan", "--useCudaGraph", "--noDataTransfers", "--warmUp=250",
                       "--shapes=input:1x3x224x224"])
    ours = _parsed(["bench", "--engine", "m.plan", "--cuda-graph", "--no-data-transfers", "--warmup-time", "0.25",
                    "--shapes", "1x3x224x224"])
    assert trtexec == ours and trtexec["shapes"].input_name == "input"


def test_bench_takes_trtexec_shapes(tmp_path, cli, tiny_onnx):
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--shapes", "input:1x3x16x16,input:2x3x9x12",
                         "--iterations", "2", "--warmup", "0", "--json", tmp_path / "b.json")
    assert code == 0, err
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert sorted(tuple(r["shape"]) for r in rows) == [(1, 3, 16, 16), (2, 3, 9, 12)]
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--shapes", "image:1x3x16x16")
    assert code == 2 and "'image'" in err and "'input'" in err
    code, out, err = cli("bench", "--shapes", "a:1x3x8x8,b:1x3x8x8")
    assert code == 2 and "several inputs" in err


@pytest.mark.parametrize("argv,command,hint", [
    (["validate", "--model", "zoo:sppnet-zf5", "--sizs", "64x64"], "validate", "--sizes"),
    (["build", "m.onnx", "-o", "m.plan", "--minshapes=input:1x3x8x8"], "build", "--minShapes"),
    (["bench", "--iteratons", "5"], "bench", "--iterations"),
])
def test_unknown_flags_point_at_the_command_help(cli, argv, command, hint):
    code, out, err = cli(*argv)
    assert code == 2 and err.count("\n") == 1
    assert f"(see `spp-deploy {command} --help`)" in err and f"did you mean {hint}?" in err
    code, out, err = cli(command, "--zzzz")
    assert "did you mean" not in err and f"(see `spp-deploy {command} --help`)" in err


def test_bench_times_loaded_inputs_and_saves_what_it_timed(tmp_path, cli, tiny_onnx):
    rng = np.random.default_rng(7)
    feeds = _feeds(rng, [(1, 3, 10, 10), (2, 3, 8, 13)])
    polygraphy_json.save_json(feeds, str(tmp_path / "in.json"))
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--load-inputs", tmp_path / "in.json",
                         "--iterations", "2", "--warmup", "0", "--save-inputs", tmp_path / "timed.json",
                         "--save-trtexec-inputs", tmp_path / "raw", "--json", tmp_path / "b.json")
    assert code == 0, err
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert sorted(tuple(r["shape"]) for r in rows) == sorted(f["input"].shape for f in feeds)
    timed = polygraphy_json.load_json(str(tmp_path / "timed.json"))
    assert sorted(f["input"].tobytes() for f in timed) == sorted(f["input"].tobytes() for f in feeds)
    assert (tmp_path / "raw" / "input.1.bin").stat().st_size == timed[1]["input"].nbytes
    # random data is saved too: what was timed can be timed again elsewhere
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--shapes", "1x3x9x9", "--iterations",
                         "1", "--warmup", "0", "--seed", "3", "--save-inputs", tmp_path / "random.json")
    assert code == 0, err
    (feed,) = polygraphy_json.load_json(str(tmp_path / "random.json"))
    assert np.array_equal(feed["input"], np.random.default_rng(3).standard_normal((1, 3, 9, 9), dtype=np.float32))
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--load-inputs", tmp_path / "in.json", "--shapes", "1x3x9x9")
    assert code == 2 and "--load-inputs gives the shapes" in err


@pytest.mark.parametrize("command", ["validate", "run", "bench"])
def test_loaded_inputs_must_be_image_batches(tmp_path, cli, tiny_onnx, command):
    polygraphy_json.save_json([{"input": np.arange(6)}], str(tmp_path / "in.json"))
    code, out, err = cli(command, "--onnx", tiny_onnx, "--model", tiny.TINY, "--load-inputs", tmp_path / "in.json")
    assert code == 2 and "expected a float image batch BxCxHxW" in err and err.count("\n") == 1
