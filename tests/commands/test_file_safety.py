"""No command destroys a file the user did not ask it to replace.

An output that is one of the command's inputs is refused before any work; an existing output
needs --force; FIFOs, character devices and /dev/fd/N are written into, a symlink is written
through; write failures after the work (long names, /proc, a full disk or file-size limit) are
one line with nothing left behind; the caller's model comes back from export_onnx as it was.
Everything the tests touch is made inside their temporary directories."""

import io
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from bad_input import no_work, one_line, run_cli, work  # noqa: F401 (fixtures)
from tiny import TINY, tiny_model

ROOT = Path(__file__).resolve().parents[2]


def snapshot(d: Path) -> dict:
    """Every entry under ``d``: its kind and, for files, its bytes."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = ("file", p.read_bytes())
        else:
            out[rel] = ("other", stat.S_IFMT(p.lstat().st_mode))
    return out


def npy(path: Path, shape=(1, 3, 16, 16)) -> Path:
    np.save(path, np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    return path


def _env():
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


# -- an output that is one of the inputs --------------------------------------------------------------


@pytest.fixture
def inputs(work):
    """Input files of every kind the commands read (contents never parsed: the check comes first)."""
    torch.save(tiny_model().state_dict(), work / "w.pt")
    shutil.copy(Path(TINY.rpartition(":")[0]), work / "models.py")
    (work / "m.onnx").write_bytes(b"onnx bytes")
    npy(work / "x.npy")
    npy(work / "img.npy", (8, 8, 3))
    (work / "boxes.csv").write_text("1,1,4,4\n")
    os.symlink("m.onnx", work / "link.onnx")
    os.link(work / "x.npy", work / "hard.npy")
    (work / "det").mkdir()
    (work / "det" / "head.onnx").write_bytes(b"a detector's head")
    return work


@pytest.mark.parametrize("argv, target, flag", [
    (["export", "--model", TINY, "--weights", "w.pt", "--input-shape", "1x3x16x16"], "w.pt", "--weights file"),
    (["export", "--model", "models.py:tiny_model", "--input-shape", "1x3x16x16"], "models.py", "--model source"),
    (["export", "--model", "models:tiny_model", "--input-shape", "1x3x16x16"], "models.py", "--model source"),
    (["run", "--onnx", "m.onnx", "-i", "x.npy"], "m.onnx", "--onnx file"),
    (["run", "--onnx", "link.onnx", "-i", "x.npy"], "m.onnx", "--onnx file"),  # the input through a link
    (["run", "--onnx", "m.onnx", "-i", "x.npy"], "hard.npy", "--input file"),  # a hard link to the input
    (["validate", "--model", TINY, "--onnx", "m.onnx", "--json"], "m.onnx", "--onnx file"),
    (["detect", "--model", "zoo:sppnet-zf5-det", "--image", "img.npy", "--windows", "boxes.csv"], "img.npy",
     "--image file"),
    (["bench", "--model", TINY, "--json", "b.json", "--csv"], "b.json", "--json file"),  # two outputs, one file
    (["detect", "--onnx", "det", "--image", "img.npy", "--windows", "boxes.csv"], "det/head.onnx", "--onnx file"),
])
@pytest.mark.parametrize("force", [False, True])
def test_output_that_is_an_input_is_refused_before_the_work(inputs, capsys, monkeypatch, no_work, argv, target, flag,
                                                            force):
    monkeypatch.syspath_prepend(str(inputs))  # module:factory specs resolve on sys.path
    if argv[0] == "bench":
        (inputs / "b.json").unlink(missing_ok=True)
    before = snapshot(inputs)
    option = [] if argv[-1].startswith("--json") or argv[-1] == "--csv" else ["-o"]
    code, out, err = run_cli(capsys, *argv, *option, target, *(["--force"] if force else []))
    assert code == 2 and f"is the {flag}" in one_line(err), err
    assert snapshot(inputs) == before


def test_export_detector_output_files_are_not_inputs(inputs, capsys, no_work):
    (inputs / "d").mkdir()
    torch.save({}, inputs / "d" / "head.onnx")
    code, out, err = run_cli(capsys, "export-detector", "--model", "zoo:sppnet-zf5-det", "--weights",
                             "d/head.onnx", "-o", "d", "--force")
    assert code == 2 and "is the --weights file" in one_line(err)


# -- one overwrite policy: an existing output needs --force -------------------------------------------


@pytest.mark.parametrize("argv, target", [
    (["export", "--model", TINY, "--input-shape", "1x3x16x16", "-o"], "out"),
    (["run", "--model", TINY, "-i", "x.npy", "-o"], "out"),
    (["validate", "--model", TINY, "--onnx", "m.onnx", "--json"], "out"),
    (["bench", "--model", TINY, "--json"], "out"),
    (["bench", "--model", TINY, "--csv"], "out"),
    (["bench", "--model", TINY, "--plot"], "out.png"),
    (["detect", "--model", "zoo:sppnet-zf5-det", "--image", "img.npy", "--windows", "boxes.csv", "-o"], "out"),
    (["build", "m.onnx", "-o"], "out"),
])
def test_existing_output_is_refused_without_force(inputs, capsys, no_work, argv, target):
    (inputs / target).write_text("the user's file")
    before = snapshot(inputs)
    code, out, err = run_cli(capsys, *argv, target)
    assert code == 2 and "already exists: not replaced; to replace it, use: --force" in one_line(err)
    assert snapshot(inputs) == before


def test_force_replaces_an_existing_output(work, capsys):
    npy(work / "x.npy")
    (work / "y.npy").write_text("old")
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "y.npy", "--force")
    assert code == 0, err
    with torch.no_grad():
        want = tiny_model()(torch.from_numpy(np.load(work / "x.npy"))).numpy()
    assert np.array_equal(np.load(work / "y.npy"), want)
    assert {p.name for p in work.iterdir()} == {"x.npy", "y.npy"}


def test_triton_keeps_a_readme_it_did_not_write(work, capsys, tiny_onnx):
    pytest.importorskip("tritonclient", reason="tritonclient (the triton extra) is not installed")
    repo = work / "models"
    repo.mkdir()
    (repo / "README.md").write_text("# my notes\n")
    code, out, err = run_cli(capsys, "triton", "-o", repo, "--name", "tiny", "--onnx", tiny_onnx)
    assert code == 2 and "README.md exists and was not written by spp-deploy" in one_line(err)
    assert snapshot(repo) == {"README.md": ("file", b"# my notes\n")}
    code, out, err = run_cli(capsys, "triton", "-o", repo, "--name", "tiny", "--onnx", tiny_onnx, "--force")
    assert code == 0, err
    readme = (repo / "README.md").read_text()
    code, out, err = run_cli(capsys, "triton", "-o", repo, "--name", "tiny2", "--onnx", tiny_onnx)
    assert code == 0, err  # its own README is the repository's index: rewritten with the new model
    assert "| tiny2 |" in (repo / "README.md").read_text() and "| tiny2 |" not in readme


# -- targets that are not regular files ---------------------------------------------------------------


class Reader(threading.Thread):
    """Reads everything from a FIFO path or a pipe fd until the writer closes it."""

    def __init__(self, source):
        super().__init__(daemon=True)
        self.source, self.data = source, None

    def run(self):
        with open(self.source, "rb") as f:
            self.data = f.read()


def tiny_output(x_path: Path) -> np.ndarray:
    with torch.no_grad():
        return tiny_model()(torch.from_numpy(np.load(x_path))).numpy()


def test_fifo_is_written_into_not_replaced(work, capsys):
    npy(work / "x.npy")
    os.mkfifo(work / "fifo")
    reader = Reader(work / "fifo")
    reader.start()
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "fifo")
    reader.join(60)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(work / "fifo").st_mode)
    assert np.array_equal(np.load(io.BytesIO(reader.data)), tiny_output(work / "x.npy"))
    assert {p.name for p in work.iterdir()} == {"x.npy", "fifo"}


def test_export_into_a_fifo_is_parity_checked_then_written(work, capsys):
    import onnx

    os.mkfifo(work / "m.onnx")
    reader = Reader(work / "m.onnx")
    reader.start()
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "--sizes", "16x16",
                             "-o", "m.onnx")
    reader.join(60)
    assert code == 0, err
    assert "PASSED" in out and stat.S_ISFIFO(os.lstat(work / "m.onnx").st_mode)
    assert onnx.load_from_string(reader.data).graph.input[0].name == "input"
    assert {p.name for p in work.iterdir()} == {"m.onnx"}


def test_dev_fd_path_is_written_into(work, capsys):
    """``-o >(cmd)``: the shell passes /dev/fd/N, an open pipe."""
    if not os.path.isdir("/dev/fd"):
        pytest.skip("no /dev/fd here")
    npy(work / "x.npy")
    r, w = os.pipe()
    reader = Reader(r)
    reader.start()
    try:
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", f"/dev/fd/{w}")
    finally:
        os.close(w)
    reader.join(60)
    assert code == 0, err
    assert np.array_equal(np.load(io.BytesIO(reader.data)), tiny_output(work / "x.npy"))
    assert {p.name for p in work.iterdir()} == {"x.npy"}


def test_character_device_is_written_into_not_replaced(work, capsys, monkeypatch):
    """/dev/null, harmless to write: it must still be the device afterwards (as root a rename
    would have replaced it with a regular file). Renames onto a device fail the test instead of
    happening, so that even a regression cannot break the machine's /dev/null."""
    null = Path(os.devnull)
    if not stat.S_ISCHR(os.stat(null).st_mode) or not os.access(null, os.W_OK):
        pytest.skip("no writable character device /dev/null")
    for module, name in ((os, "replace"), (os, "rename"), (shutil, "move")):
        real = getattr(module, name)

        def guarded(src, dst, *a, _real=real, **k):
            if os.path.exists(dst) and stat.S_ISCHR(os.stat(dst).st_mode):
                raise AssertionError(f"renamed a file onto the device {dst}")
            return _real(src, dst, *a, **k)

        monkeypatch.setattr(module, name, guarded)
    before = os.stat(null)
    npy(work / "x.npy")
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", null)
    assert code == 0, err
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [p for p in null.parent.iterdir() if p.name.startswith(".null.")]


@pytest.mark.parametrize("dangling", [False, True])
def test_symlink_is_written_through(work, capsys, dangling):
    npy(work / "x.npy")
    (work / "real").mkdir()
    if not dangling:
        (work / "real" / "y.npy").write_text("old")
    os.symlink("real/y.npy", work / "link.npy")
    force = [] if dangling else ["--force"]
    if not dangling:  # an existing target is an existing output
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "link.npy")
        assert code == 2 and "already exists" in one_line(err)
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "link.npy", *force)
    assert code == 0, err
    assert os.readlink(work / "link.npy") == "real/y.npy"
    assert np.array_equal(np.load(work / "real" / "y.npy"), tiny_output(work / "x.npy"))
    assert {p.name for p in (work / "real").iterdir()} == {"y.npy"}


# -- failures that used to come after the work, as tracebacks -------------------------------------------


def test_name_longer_than_name_max_is_refused_before_the_work(work, capsys, no_work):
    limit = os.pathconf(work, "PC_NAME_MAX")
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", "a" * (limit + 1))
    assert code == 2 and f"the file name is {limit + 1} bytes long" in one_line(err)
    assert list(work.iterdir()) == []


def test_longest_legal_name_is_written(work, capsys):
    """A name a few bytes under NAME_MAX: the temporary name beside it must fit too."""
    limit = os.pathconf(work, "PC_NAME_MAX")
    npy(work / "x.npy")
    for name in ("b" * (limit - 6), "é" * ((limit - 6) // 2) + "c"):
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", name)
        assert code == 0, err
        assert np.array_equal(np.load(work / name), tiny_output(work / "x.npy"))
    assert len(list(work.iterdir())) == 3


@pytest.mark.parametrize("target", ["/proc/spp-deploy-test.npy", "/sys/spp-deploy-test.npy"])
def test_kernel_file_systems_are_refused_before_the_work(work, capsys, no_work, target):
    if not os.path.isdir(os.path.dirname(target)):
        pytest.skip(f"no {os.path.dirname(target)} here")
    code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", "x.npy", "-o", target)
    assert code == 2 and "is a kernel file system" in one_line(err)
    assert not os.path.exists(target)


@pytest.mark.parametrize("argv", [
    ["export-detector", "--model", "zoo:sppnet-zf5-det", "-o"],
    ["triton", "--name", "m", "--onnx", "m.onnx", "-o"],
    ["demo", "--out-dir"],
])
@pytest.mark.parametrize("target, message", [
    ("d" * 300, "the file name is 300 bytes long"),
    ("new/" + "d" * 300, "the file name is 300 bytes long"),
    ("/proc/spp-deploy-test", "/proc is a kernel file system"),
    ("a_file/sub", "is not a directory"),
])
def test_output_directories_are_checked_before_the_work(work, capsys, no_work, argv, target, message):
    if target.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    (work / "a_file").write_text("the user's file")
    before = snapshot(work)
    code, out, err = run_cli(capsys, *argv, target)
    assert code == 2 and message in one_line(err)
    assert snapshot(work) == before


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_file_size_limit_is_one_line_and_leaves_nothing(work):
    """A full disk as the exporter sees it: a write that fails half way (EFBIG here, ENOSPC on a
    full disk take the same path)."""
    proc = subprocess.run([sys.executable, "-m", "spp_deploy", "export", "--model", TINY, "--input-shape",
                           "1x3x16x16", "--sizes", "16x16", "-o", "m.onnx"], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size(1024))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "spp-deploy: error: cannot write m.onnx: File too large\n"
    assert list(work.iterdir()) == []


def test_full_disk_is_one_line_and_leaves_nothing(work):
    """A real full disk: a 4 KiB tmpfs in a private mount namespace (``unshare -r -m``; skipped
    where user namespaces or tmpfs mounts are not permitted). What is left on it is listed from
    inside the namespace, where the mount lives."""
    disk, left = work / "disk", work / "left.txt"
    disk.mkdir()
    mount = f"mount -t tmpfs -o size=4k tmpfs {disk}"
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-r", "-m", "sh", "-c", mount],
                                                         capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (unshare -r -m)")
    script = f'{mount} && {{ "$0" -m spp_deploy export --model "$1" --input-shape 1x3x16x16 --sizes 16x16 ' \
             f'-o {disk}/m.onnx; code=$?; ls -A {disk} > {left}; exit $code; }}'
    proc = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, sys.executable, TINY], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"spp-deploy: error: cannot write {disk}/m.onnx: No space left on device\n"
    assert left.read_text() == ""


def test_disk_full_during_a_write_is_one_line(tmp_path):
    import errno

    from spp_deploy.util.errors import UserError
    from spp_deploy.util.fileio import atomic_write

    (tmp_path / "keep").write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(UserError, match="cannot write .*keep: No space left on device"):
        atomic_write(tmp_path / "keep", write)
    assert snapshot(tmp_path) == {"keep": ("file", b"old")}


def test_plot_format_is_checked_before_the_benchmark(work, capsys, no_work):
    pytest.importorskip("matplotlib")
    code, out, err = run_cli(capsys, "bench", "--model", TINY, "--json", "b.json", "--csv", "b.csv",
                             "--plot", "lat.bmp")
    assert code == 2 and "matplotlib has no 'bmp' format" in one_line(err)
    assert list(work.iterdir()) == []


def test_bench_reports_are_all_or_none(work, capsys, monkeypatch):
    """The last report fails to write (a full disk): the two written before it go too."""
    import spp_deploy.bench.report as report
    from spp_deploy.util.errors import UserError

    pytest.importorskip("matplotlib")

    def full(*a, **k):
        raise UserError("cannot write b.json: No space left on device")

    monkeypatch.setattr(report, "write_json", full)
    code, out, err = run_cli(capsys, "bench", "--no-progress", "--model", TINY, "--backends", "torch", "--shapes",
                             "1x3x16x16", "--iterations", "1", "--warmup", "0", "--json", "b.json", "--csv", "b.csv",
                             "--plot", "lat.png")
    assert code == 2 and "No space left on device" in one_line(err)
    assert list(work.iterdir()) == []


# -- Ctrl-C ------------------------------------------------------------------------------------------------


def test_ctrl_c_that_torch_wraps_is_an_interruption(work, capsys, monkeypatch):
    """torch's exporter reports whatever stops it as its own error; a Ctrl-C must stay one."""

    def export(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Failed to export the model with torch.export. This is step 1/3") from e

    monkeypatch.setattr(torch.onnx, "export", export)
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "-o", "m.onnx")
    assert code == 130 and err == "spp-deploy: interrupted\n"
    assert list(work.iterdir()) == []


def test_ctrl_c_during_export_detector_removes_the_directories_it_made(work, capsys, monkeypatch):
    import spp_deploy.checked_export as deploy

    (work / "a").mkdir()
    seen = []

    def interrupted(model, x, path, **kw):
        seen.append(Path(path))
        assert Path(path).parent.is_dir()  # the temporary directory, inside the new directories
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy, "export_onnx", interrupted)
    code, out, err = run_cli(capsys, "export-detector", "--model", "zoo:sppnet-zf5-det", "--model-kwargs",
                             '{"hidden": 8}', "-o", "a/b/c/det")
    assert code == 130 and err.endswith("spp-deploy: interrupted\n") and seen
    assert snapshot(work) == {"a": ("other", stat.S_IFDIR)}


# -- the caller's model ----------------------------------------------------------------------------------


class Counter(torch.nn.Module):
    """Counts its training-mode calls in a buffer, in place and by rebinding."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("seen", torch.zeros(()), persistent=False)

    def forward(self, x):
        if self.training:
            self.calls += 1
            self.seen = self.seen + 1
        return x


def stateful_model() -> torch.nn.Module:
    from spp_deploy import SpatialPyramidPool

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5), Counter(),
                               SpatialPyramidPool([2, 1]), torch.nn.Linear(20, 3))


def model_state(model: torch.nn.Module) -> dict:
    return {"modes": [m.training for m in model.modules()],
            "tensors": {k: v.clone() for k, v in [*model.named_parameters(), *model.named_buffers()]},
            "objects": [id(t) for t in [*model.parameters(), *model.buffers()]],
            "rng": torch.get_rng_state()}


def test_export_leaves_a_train_mode_model_as_it_was(tmp_path):
    from spp_deploy import export_onnx
    from spp_deploy.runtime.ort_runner import OrtRunner

    model = stateful_model().train()
    with torch.no_grad():  # running statistics that differ from the defaults
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    example = torch.randn(1, 3, 16, 16)
    before = model_state(model)
    export_onnx(model, example, tmp_path / "m.onnx", sizes=[(1, 16, 16), (2, 9, 11)])
    after = model_state(model)
    assert after["modes"] == before["modes"] and all(after["modes"])
    assert after["tensors"].keys() == before["tensors"].keys()
    for k, v in before["tensors"].items():
        assert torch.equal(after["tensors"][k], v), k
    assert after["objects"] == before["objects"] and torch.equal(after["rng"], before["rng"])
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    with OrtRunner(tmp_path / "m.onnx", "cpu") as runner:
        got = runner.infer({"input": x})["output"]
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()  # the file computes the eval-mode model
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_scan_leaves_a_train_mode_model_as_it_was():
    """``inspect`` and ``scan`` run the model too (at the example and while probing)."""
    from spp_deploy.recognize import scan

    model = stateful_model().train()
    example = torch.randn(1, 3, 16, 16)
    before = model_state(model)
    reports = scan(model, example)
    after = model_state(model)
    assert [r.path for r in reports] == ["4"]  # the pyramid was found: the model did run
    assert after["modes"] == before["modes"] and after["objects"] == before["objects"]
    for k, v in before["tensors"].items():
        assert torch.equal(after["tensors"][k], v), k
    assert torch.equal(after["rng"], before["rng"])
