"""A closed pipe ends quietly; the global -q/--quiet, -v/--verbose and --log-file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny

ROOT = Path(__file__).resolve().parents[2]


def _shell(command: str) -> subprocess.CompletedProcess:
    """``command`` in a shell, with ``spp-deploy`` meaning this checkout's ``python -m spp_deploy``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    spp = f"{sys.executable} -m spp_deploy"
    return subprocess.run(["bash", "-o", "pipefail", "-c", command.replace("spp-deploy", spp)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("command", ["spp-deploy inspect --json --model zoo:sppnet-zf5 | head -c 10",
                                     "spp-deploy zoo | head -n 1", "spp-deploy --help | head -c 5"])
def test_closed_pipe_ends_quietly(command):
    done = _shell(command)
    assert done.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
    assert done.stdout and len(done.stdout) <= 200
    assert done.returncode in (0, 141)  # 141: the writer saw the pipe close, as `yes | head` reports


def test_quiet_drops_warnings_not_results(tmp_path, cli):
    args = ["export", "--model", tiny.TINY, "--input-shape", "1x3x16x16", "--no-check", "--tabulate-limit", "0"]
    code, out, err = cli(*args, "-o", tmp_path / "a.onnx")
    assert code == 0 and "spp-deploy: warning:" in err and "not verified" in err
    code, out, err = cli(*args, "-o", tmp_path / "v.onnx", "-v")
    assert code == 0 and f"spp-deploy: loading model {tiny.TINY}" in err and "export finished in" in err
    assert "spp-deploy: exporting" in err  # the step a terminal sees as a spinner
    code, out, err = cli("export", "--model", tiny.TINY, "--input-shape", "1x3x16x16", "--sizes", "9x9,2x11x10",
                         "-o", tmp_path / "p.onnx", "-v")
    parity = [ln for ln in err.splitlines() if ln.startswith("spp-deploy: parity ")]
    assert code == 0 and [ln.split()[2] for ln in parity] == ["1x3x9x9:", "2x3x11x10:"]
    code, out, err = cli("-q", *args, "-o", tmp_path / "b.onnx")  # before the command name
    assert code == 0 and err == "" and "exported" in out
    # in a real process (no test logging set up), logging's last-resort handler prints nothing either
    done = _shell(f"spp-deploy -q {' '.join(map(str, args))} -o {tmp_path / 'd.onnx'}")
    assert done.returncode == 0 and done.stderr == "" and "exported" in done.stdout
    code, out, err = cli(*args, "-o", tmp_path / "c.onnx", "--quiet")  # or after it
    assert code == 0 and err == "" and "exported" in out


def test_verbose_says_steps_and_log_file_records_the_run(tmp_path, cli):
    log = tmp_path / "run.log"
    code, out, err = cli("-v", "--log-file", log, "zoo")
    assert code == 0 and "sppnet-zf5" in out
    assert "spp-deploy: zoo finished in" in err  # -v: steps on stderr, never on stdout
    code, out, err = cli("zoo")
    assert code == 0 and err == ""
    text = log.read_text()
    assert "spp-deploy -v --log-file" in text and "stdout: " in text and "exit code 0" in text
    assert all(line.split(" ")[0].count("-") == 2 for line in text.splitlines())  # every record dated
    # a failing command: its one-line error and exit code are appended, nothing is replaced
    code, out, err = cli("validate", "--model", "zoo:nope", "--onnx", tmp_path / "missing.onnx", "--log-file", log)
    assert code == 2
    again = log.read_text()
    assert again.startswith(text) and "stderr: spp-deploy: error:" in again and "exit code 2" in again


def test_log_file_is_checked_like_every_output(tmp_path, cli, tiny_onnx):
    code, out, err = cli("--log-file", tiny_onnx, "validate", "--model", tiny.TINY, "--onnx", tiny_onnx)
    assert code == 2 and "--log-file" in err and "would destroy that input" in err
    code, out, err = cli("--log-file", tmp_path / "no" / "dir.log", "zoo")
    assert code == 2 and "directory does not exist" in err and "Traceback" not in err


# ---- --json on every command that reports: stdout holds the JSON alone, the rest goes to stderr ----

def _json(cli, *argv):
    code, out, err = cli(*argv, "--json")
    assert code in (0, 1), err
    return code, json.loads(out), err


def test_export_json(tmp_path, cli):
    path = tmp_path / "t.onnx"
    code, report, err = _json(cli, "export", "--model", tiny.TINY, "--input-shape", "1x3x16x16", "--sizes", "9x9,2x12x7",
                              "-o", path)
    assert code == 0 and "exported" in err and report["file"] == str(path) and path.is_file()
    assert [tuple(r["shape"]) for r in report["parity"]] == [(1, 3, 9, 9), (2, 3, 12, 7)]
    assert all(r["status"] == "PASSED" and r["max_rel"] <= 1e-5 for r in report["parity"])
    spp = tiny.tiny_model().spp
    (layer,) = report["layers"]
    assert layer["path"] == "spp" and layer["rule"] == spp.rule and layer["levels"] == list(spp.levels)
    assert report["spp_layers"] == 1 and report["verified"] and report["dynamic"] == ["batch", "height", "width"]


def test_check_and_doctor_json(cli, tiny_onnx):
    import onnx
    import torch

    code, report, _ = _json(cli, "check", tiny_onnx)
    assert code == 0 and report["passed"] and report["errors"] == 0
    assert report["nodes"] == len(onnx.load(tiny_onnx).graph.node)
    assert report["warnings"] == sum(f["severity"] == "warning" for f in report["findings"])
    code, report, _ = _json(cli, "doctor")
    assert {c["name"]: c["value"] for c in report["checks"]}["torch"] == torch.__version__


def test_triton_json(tmp_path, cli, tiny_onnx):
    pytest.importorskip("tritonclient")
    import onnx

    code, report, _ = _json(cli, "triton", "-o", tmp_path / "repo", "--name", "tiny", "--onnx", tiny_onnx,
                            "--max-batch", "4")
    assert report["max_batch_size"] == 4 and report["dynamic_batching"] and report["platform"] == "onnxruntime_onnx"
    assert all((tmp_path / "repo" / f).is_file() for f in report["files"])
    dims = [d.dim_value or -1 for d in onnx.load(tiny_onnx).graph.input[0].type.tensor_type.shape.dim]
    assert report["inputs"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": dims[1:]}]


def test_detect_json(tmp_path, cli):
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "img.npy", rng.uniform(0, 255, (60, 80, 3)))
    (tmp_path / "boxes.csv").write_text("1,1,80,60\n10,5,40,50\n20,20,22,25\n")
    code, report, _ = _json(cli, "detect", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}',
                            "--image", tmp_path / "img.npy", "--windows", tmp_path / "boxes.csv", "--scales", "100",
                            "-o", tmp_path / "f.npy")
    assert report["windows"] == 3 and report["image"] == [60, 80] and report["scales"] == [100]
    assert report["features"] == list(np.load(tmp_path / "f.npy").shape) and report["backend"] == "torch"


def test_build_json(tmp_path, cli, tiny_onnx, monkeypatch):
    """TensorRT is not here: the builder is replaced by one that writes the engine and returns
    what the real one returns; the JSON must be that result."""
    from spp_deploy.runtime.trt import build
    from spp_deploy.runtime.trt.metadata import EngineMeta

    def fake_build(onnx_path, output, **kw):
        meta = EngineMeta("10.16.0", "H100", "9.0", "fp32", [{"input": [[1, 3, 8, 8], [1, 3, 9, 9], [2, 3, 16, 16]]}],
                          "0" * 64)
        output.write_bytes(b"plan")
        return build.BuildResult(output, False, "k" * 64, 2.5, meta)

    monkeypatch.setattr(build, "build_engine", fake_build)
    code, report, _ = _json(cli, "build", tiny_onnx, "--saveEngine", tmp_path / "m.plan",
                            "--minShapes", "input:1x3x8x8", "--optShapes", "input:1x3x9x9", "--maxShapes", "input:2x3x16x16")
    assert report["engine"] == str(tmp_path / "m.plan") and report["metadata"] == str(tmp_path / "m.plan") + ".json"
    assert (report["tensorrt"], report["gpu"], report["precision"], report["seconds"]) == ("10.16.0", "H100", "fp32", 2.5)


def test_python_api_gives_the_commands_results(tmp_path, cli, tiny_onnx):
    import spp_deploy
    from spp_deploy.util.errors import UserError

    model = tiny.tiny_model()
    report = spp_deploy.validate(model, tiny_onnx, sizes=[(9, 11), (2, 6, 5)], seed=4)
    code, cli_report, _ = _json(cli, "validate", "--model", tiny.TINY, "--onnx", tiny_onnx, "--sizes", "9x11,2x6x5",
                                "--seed", "4")
    assert report.passed and code == 0
    assert [r["max_abs"] for r in report.as_dict()["results"]] == [r["max_abs"] for r in cli_report["results"]]
    with pytest.raises(UserError) as e:
        spp_deploy.validate(model)
    assert e.value.option == "onnx"
    with pytest.raises(UserError) as e:
        spp_deploy.triton_repository(tmp_path / "repo", "m", onnx=tiny_onnx, engine=tiny_onnx)
    assert e.value.option == "onnx" and not (tmp_path / "repo").exists()
    with pytest.raises(UserError) as e:
        spp_deploy.benchmark(model, shapes=[(3, 16, 16)])
    assert e.value.option == "shapes"
