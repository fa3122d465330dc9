"""Every bad input is one line on stderr naming the problem, a non-zero exit and no file
left behind, and it fails before the expensive work when the problem is knowable up front.

In-process ``main([...])`` for speed; subprocesses only for signals and import-time behaviour."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from spp_deploy.cli import main
from spp_deploy.util.errors import UserError
from bad_input import files, no_work, npy, one_line, run_cli, work  # noqa: F401 (fixtures)
from tiny import TINY, tiny_model

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


# -- run / validate inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("argv, shape, message", [
    (["--model", "zoo:sppnet-zf5"], (1, 3, 8, 8), "torch cannot run input 1x3x8x8"),
    (["--model", "zoo:sppnet-zf5"], (1, 1, 3, 32, 32), "has rank 5"),
    (["--model", "zoo:sppnet-zf5"], (1, 1, 32, 32), "torch cannot run input 1x1x32x32"),
    (["--model", TINY], (3, 3), "has rank 2"),
])
def test_run_input_the_model_cannot_take(work, capsys, argv, shape, message):
    x = npy(work / "x.npy", shape)
    code, out, err = run_cli(capsys, "run", *argv, "-i", x, "-o", "y.npy")
    assert code == 2 and message in one_line(err)
    assert files(work) == {"x.npy"}


def test_run_ort_input_too_small(work, capsys, tiny_onnx):
    x = npy(work / "x.npy", (1, 3, 2, 2))
    code, out, err = run_cli(capsys, "run", "--onnx", tiny_onnx, "-i", x, "-o", "y.npy")
    assert code == 2 and "ort-cpu cannot run input 1x3x2x2" in one_line(err)
    assert files(work) == {"x.npy"}


@pytest.mark.parametrize("shape", [(32, 32), (1, 1, 3, 32, 32)])
def test_validate_images_of_wrong_rank(work, capsys, tiny_onnx, shape):
    x = npy(work / "x.npy", shape)
    code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", tiny_onnx, "--images", x,
                             "--json", "r.json")
    assert code == 2 and f"has rank {len(shape)}" in one_line(err)
    assert files(work) == {"x.npy"}


def test_validate_fails_when_everything_was_skipped(work, capsys, tiny_onnx):
    code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", tiny_onnx, "--sizes", "2x2,3x3")
    assert code == 1 and "PASSED" not in out
    assert "FAILED: nothing was compared" in out.splitlines()[-1]


# -- bench: decided before the temporary export -----------------------------------------------------


def test_bench_without_a_legal_shape_stops_before_export(work, capsys, monkeypatch):
    import spp_deploy.checked_export as export

    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: pytest.fail("exported anyway"))
    code, out, err = run_cli(capsys, "bench", "--no-progress", "--model", "zoo:sppnet-zf5", "--shapes", "1x3x8x8",
                             "--backends", "torch,ort-cpu")
    assert code == 2 and "cannot take any of the requested shapes: 1x3x8x8" in one_line(err)
    assert files(work) == set()


def test_unavailable_backend_fails_before_any_work(work, capsys, no_work, tiny_onnx):
    from spp_deploy.bench import unavailable_reason

    if unavailable_reason("trt") is None:
        pytest.skip("TensorRT is usable here")
    code, out, err = run_cli(capsys, "bench", "--model", TINY, "--backends", "trt")
    assert code == 2 and "no backend can run here: trt" in one_line(err)
    code, out, err = run_cli(capsys, "validate", "--model", TINY, "--onnx", tiny_onnx, "--backends", "ort-cpu,trt",
                             "--engine", tiny_onnx)
    assert code == 2 and "TensorRT is not installed" in one_line(err)


# -- output paths: checked before the work, atomic, normal mode, --force ------------------------------


@pytest.mark.parametrize("command", [
    ["export", "--model", "zoo:sppnet-zf5", "-o"],
    ["validate", "--model", TINY, "--onnx", "m.onnx", "--json"],
    ["bench", "--model", TINY, "--json"],
    ["run", "--model", TINY, "-i", "x.npy", "-o"],
])
@pytest.mark.parametrize("target", ["out", "out/", "new/"])
def test_directory_output_fails_before_the_work(work, capsys, no_work, command, target):
    (work / "out").mkdir()
    (work / "m.onnx").write_bytes(b"")
    npy(work / "x.npy", (1, 3, 8, 8))
    code, out, err = run_cli(capsys, *command, target)
    line = one_line(err)
    assert code == 2 and ("is a directory" in line or "does not exist" in line)
    assert files(work) == {"out", "m.onnx", "x.npy"} and files(work / "out") == set()


def test_read_only_output_needs_force_and_files_get_the_umask_mode(work, capsys):
    x = npy(work / "x.npy", (1, 3, 16, 16))
    old = os.umask(0o027)
    try:
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", x, "-o", "y")
        assert code == 0, err
        assert "wrote y\n" in out and files(work) == {"x.npy", "y"}  # the name given, no ".npy" added
        assert stat.S_IMODE((work / "y").stat().st_mode) == 0o640
        os.chmod(work / "y", 0o444)
        before = (work / "y").read_bytes()
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", x, "-o", "y")
        assert code == 2 and "read-only" in one_line(err) and "--force" in err
        assert (work / "y").read_bytes() == before and files(work) == {"x.npy", "y"}
        code, out, err = run_cli(capsys, "run", "--model", TINY, "-i", x, "-o", "y", "--force")
        assert code == 0, err
        assert np.load(work / "y").shape == (1, 3) and stat.S_IMODE((work / "y").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_exported_onnx_gets_the_umask_mode(work, capsys):
    old = os.umask(0o022)
    try:
        code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "--sizes", "16x16",
                                 "-o", "m.onnx")
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE((work / "m.onnx").stat().st_mode) == 0o644 and files(work) == {"m.onnx"}


# -- shapes, empty values, weights, model code -------------------------------------------------------


def test_absurd_shape_is_refused_before_the_model_loads(work, capsys, no_work):
    code, out, err = run_cli(capsys, "export", "--model", "zoo:sppnet-zf5", "--input-shape", "1x3x99999999999x5",
                             "-o", "m.onnx")
    assert code == 2 and "is too large" in one_line(err)
    assert files(work) == set()


def test_allocation_failure_is_one_line(work, capsys, monkeypatch):
    import spp_deploy.runtime.compare as compare

    def oom(model, shape):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory\nmore")

    monkeypatch.setattr(compare, "source_error", oom)
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "-o", "m.onnx")
    assert code == 2 and "out of memory at input shape 1x3x16x16" in one_line(err)
    assert files(work) == set()


@pytest.mark.parametrize("argv, message", [
    (["export", "--model", "zoo:sppnet-zf5", "--input-shape", "", "-o", "m.onnx"], "argument --input-shape: empty shape"),
    (["validate", "--model", TINY, "--onnx", "m.onnx", "--backends", ""], "argument --backends: no backend given"),
    (["bench", "--model", TINY, "--backends", ""], "argument --backends: no backend given"),
    (["export", "--model", TINY, "--opset", "x", "-o", "m.onnx"], "--opset"),
])
def test_empty_or_malformed_values(work, capsys, no_work, argv, message):
    (work / "m.onnx").write_bytes(b"")
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and message in one_line(err)
    assert files(work) == {"m.onnx"}


def test_weights_that_are_not_a_checkpoint(work, capsys):
    (work / "w.pt").write_bytes(os.urandom(256))
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "--weights", "w.pt",
                             "-o", "m.onnx")
    assert code == 2 and "is not a valid PyTorch checkpoint" in one_line(err) and "pickled" not in err
    assert files(work) == {"w.pt"}


def test_weights_that_do_not_fit_name_the_keys(work, capsys):
    sd = tiny_model(classes=5).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["conv.bias"]
    torch.save(sd, work / "w.pt")
    code, out, err = run_cli(capsys, "export", "--model", TINY, "--input-shape", "1x3x16x16", "--weights", "w.pt",
                             "-o", "m.onnx")
    line = one_line(err)
    assert code == 2 and "missing keys: conv.bias" in line and "unexpected keys: extra.weight" in line
    assert "shape mismatch: fc.weight 5x20 in the file, 3x20 in the model" in line
    assert files(work) == {"w.pt"}


def test_model_file_that_exits_on_import(work, capsys):
    (work / "quits.py").write_text("import sys\nsys.exit(3)\n")
    code, out, err = run_cli(capsys, "export", "--model", "quits.py:make", "--input-shape", "1x3x16x16",
                             "-o", "m.onnx")
    assert code == 2 and "quits.py exited while being imported (sys.exit(3))" in one_line(err)
    assert files(work) == {"quits.py"}


# -- plugin build, yolo-spp, --version ---------------------------------------------------------------

CMAKE_LOG = """-- The CXX compiler identification is GNU 12.2.0
-- Looking for NvInfer.h - not found
CMake Error at CMakeLists.txt:42 (message):
  TensorRT headers not found: set TENSORRT_ROOT


-- Configuring incomplete, errors occurred!
See also "/tmp/b/CMakeFiles/CMakeError.log".
"""
NVCC_LOG = """[ 50%] Building CUDA object CMakeFiles/spp_plugin.dir/sppKernels.cu.o
/src/sppKernels.cu(88): error: identifier "foo" is undefined
1 error detected in the compilation of "/src/sppKernels.cu".
gmake[2]: *** [CMakeFiles/spp_plugin.dir/build.make:76: sppKernels.cu.o] Error 1
gmake: *** [Makefile:91: all] Error 2
"""


def test_plugin_build_failure_shows_the_first_real_error(tmp_path):
    from spp_deploy.native.cmake import first_error_line, run_tool

    assert first_error_line(CMAKE_LOG) == \
        "CMake Error at CMakeLists.txt:42 (message): TensorRT headers not found: set TENSORRT_ROOT"
    assert first_error_line(NVCC_LOG) == '/src/sppKernels.cu(88): error: identifier "foo" is undefined'
    fake = tmp_path / "cmake.py"
    fake.write_text(f"import sys\nsys.stdout.write({CMAKE_LOG!r})\nsys.exit(1)\n")
    with pytest.raises(UserError, match=r"CMake configure failed \(exit 1\): CMake Error at .* TensorRT headers not"):
        run_tool([sys.executable, str(fake)], "CMake configure")


def test_yolo_spp_blocks_are_counted():
    from types import SimpleNamespace

    from spp_deploy.commands.export import _layer_count

    yolo = SimpleNamespace(how="yolo", sppf_k=5)
    assert _layer_count(SimpleNamespace(spp_layers=0, layers=[yolo])) == \
        "1 ultralytics SPP/SPPF block(s), 1 rewritten to SPPF"
    assert _layer_count(SimpleNamespace(spp_layers=2, layers=[])) == "2 SPP layer(s)"


def test_version(capsys):
    from spp_deploy import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"spp-deploy {__version__}"


# -- signals and import time (subprocesses) ----------------------------------------------------------


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_ctrl_c_while_torch_imports_is_one_line(tmp_path):
    """A KeyboardInterrupt raised exactly while torch is being imported (an import hook stands in
    for the user's Ctrl-C), through the console script's own entry point."""
    code = ("import sys\n"
            "class CtrlC:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, CtrlC())\n"
            "from spp_deploy.cli import main\n"
            "assert 'torch' not in sys.modules\n"
            "sys.exit(main(['export', '--model', 'zoo:sppnet-zf5', '-o', 'm.onnx']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_env(),
                       timeout=120)
    assert r.returncode == 130 and r.stderr == "spp-deploy: interrupted\n"
    assert files(tmp_path) == set()


SLOW_MODEL = """
import time
import torch
from spp_deploy import SpatialPyramidPool

class Slow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.spp = SpatialPyramidPool([2, 1])

    def forward(self, x):
        time.sleep(0.3)  # the parity check calls this at every size: a wide window for the signal
        return self.spp(x)
"""


def test_sigterm_during_export_leaves_no_temporary_file(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_MODEL)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "spp_deploy", "export", "--model", f"{tmp_path / 'slow.py'}:Slow",
                             "--input-shape", "1x2x8x8", "--no-recognize", "-o", out / "m.onnx"],
                            cwd=out, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.suffix == ".tmp" for p in out.iterdir()):  # the parity check runs on the temp file
            assert proc.poll() is None and time.monotonic() < deadline, "export ended before its temp file was seen"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and err == "spp-deploy: terminated\n"
    assert files(out) == set()
