"""A closed pipe ends quietly; the global -q/--quiet, -v/--verbose and --log-file."""

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
    code, out, err = cli("-q", *args, "-o", tmp_path / "b.onnx")  # before the command name
    assert code == 0 and err == "" and "exported" in out
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
