"""Step-wise progress on a terminal for the long commands (export's probing, tracing and parity,
``detect``, ``build``): the steps the library logs become the spinner's text; nothing but results
when piped; ``-q`` silences it. One real process on a pseudo-terminal, the rest in-process with
the spinner replaced by a recorder."""

import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import tiny

from spp_deploy.commands import console

ROOT = Path(__file__).resolve().parents[2]


class SpinnerSpy:
    """Stands in for rich's Console on stderr: records the spinner's texts."""

    texts: ClassVar[list] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def status(self, text):
        SpinnerSpy.texts.append(text)
        return self

    def update(self, text) -> None:
        SpinnerSpy.texts.append(text)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        SpinnerSpy.texts.append(None)  # the spinner ended


@pytest.fixture
def spinner(monkeypatch):
    import rich.console

    monkeypatch.setattr(console, "progress_enabled", lambda: console.verbosity() > console.QUIET)  # "a terminal"
    monkeypatch.setattr(rich.console, "Console", SpinnerSpy)
    SpinnerSpy.texts = []
    return SpinnerSpy.texts


def _steps(texts: list, head: str) -> list[str]:
    """The steps shown after ``head`` (the spinner's first text), in order."""
    assert texts[0] == head and texts[-1] is None, texts
    assert all(t.startswith(head + ": ") for t in texts[1:-1])
    return [t[len(head) + 2:] for t in texts[1:-1]]


def _first_index(steps: list[str], prefix: str) -> int:
    return next(i for i, s in enumerate(steps) if s.startswith(prefix))


def test_export_shows_recognition_tracing_and_parity_steps(tmp_path, cli, spinner):
    code, out, err = cli("export", "--model", tiny.TINY, "--input-shape", "1x3x16x16", "--sizes", "9x9,2x12x7",
                         "-o", tmp_path / "t.onnx")
    assert code == 0 and "exported" in out, err
    steps = _steps(spinner, f"exporting {tiny.TINY} (recognise SPP layers, trace, check parity)")
    order = [_first_index(steps, s) for s in ("recognising SPP layers", "tracing (", "checking parity", "parity ")]
    assert order == sorted(order)
    assert not any(s.startswith("spp-deploy") for s in out.splitlines()) and "tracing" not in out  # results only


def test_quiet_shows_no_spinner(tmp_path, cli, spinner):
    code, out, err = cli("-q", "export", "--model", tiny.TINY, "--input-shape", "1x3x16x16", "--sizes", "9x9",
                         "-o", tmp_path / "t.onnx")
    assert code == 0 and "exported" in out and spinner == [] and err == ""


def test_detect_shows_each_scale(tmp_path, cli, spinner):
    np.save(tmp_path / "img.npy", np.random.default_rng(0).uniform(0, 255, (50, 70, 3)))
    (tmp_path / "boxes.csv").write_text("1,1,70,50\n10,5,40,45\n")
    code, out, err = cli("detect", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}',
                         "--image", tmp_path / "img.npy", "--windows", tmp_path / "boxes.csv", "--scales", "60,90",
                         "-o", tmp_path / "f.npy")
    assert code == 0, err
    steps = _steps(spinner, f"detecting: 2 window(s) on {tmp_path / 'img.npy'} (torch)")
    scales = [s.split(":")[0] for s in steps if s.startswith("scale ")]
    assert scales and set(scales) <= {"scale 60", "scale 90"}
    assert "then the head" not in out + err  # the steps stay off stdout and stderr


def test_build_shows_parse_and_build_steps(tmp_path, cli, spinner, tiny_onnx, monkeypatch):
    pytest.importorskip("polygraphy")
    import fake_tensorrt

    from spp_deploy.runtime.trt import build

    trt = fake_tensorrt.make("10.16.0")
    monkeypatch.setattr(build, "import_tensorrt", lambda what="": trt)
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "cache"))
    code, out, err = cli("build", tiny_onnx, "-o", tmp_path / "m.engine", "--opt-shape", "input:1x3x16x16",
                         "--no-cache")
    assert code == 0 and out.startswith("built "), err
    steps = _steps(spinner, f"building a TensorRT engine from {tiny_onnx}")
    assert steps[0].startswith("parsing ") and steps[-1].startswith("building the engine")


def _export_argv(tmp_path: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "spp_deploy", *flags, "export", "--model", tiny.TINY, "--input-shape", "1x3x16x16",
            "--sizes", "9x9,2x12x7,3x20x13", "-o", str(tmp_path / "p.onnx"), "--force"]


def _on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout (a pipe), what reached the terminal on stderr (a pseudo-terminal))."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TERM": "xterm-256color",
           "COLUMNS": "160"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, seen.decode(errors="replace")


@pytest.mark.slow
def test_a_real_terminal_gets_the_spinner_a_pipe_does_not(tmp_path):
    code, out, term = _on_a_terminal(_export_argv(tmp_path))
    assert code == 0 and "exported" in out
    assert "\x1b" not in out  # stdout (piped) holds results only
    steps = ("recognising SPP layers", "tracing (", "checking parity (")
    assert "exporting" in term and any(step in term for step in steps)
    code, out, term = _on_a_terminal(_export_argv(tmp_path, "-q"))
    assert code == 0 and "exported" in out and term == ""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    piped = subprocess.run(_export_argv(tmp_path), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert piped.returncode == 0 and "exported" in piped.stdout and piped.stderr == ""


def test_export_detector_steps_go_to_the_spinner_not_stdout(tmp_path, cli, spinner):
    code, out, err = cli("export-detector", "--model", "zoo:sppnet-zf5-det", "--model-kwargs", '{"hidden": 8}',
                         "--no-check", "-o", tmp_path / "det")
    assert code == 0 and out.startswith("exported "), err
    steps = _steps(spinner, f"exporting the detector to {tmp_path / 'det'}")
    assert [s for s in steps if s.endswith("exporting and checking parity")] == [
        "trunk: exporting and checking parity", "head: exporting and checking parity"]
    assert "checking parity" not in out
