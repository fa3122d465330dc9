import os
import random
import sys
from pathlib import Path

# The tests' tensors are small and CI has 2 cores: one intra-op thread per process (this one and
# the CLI subprocesses it starts) avoids oversubscription, which doubled the suite's time.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Shared test helpers (tiny model, oracles, stand-ins) live in tests/support and are imported by
# name. Only that folder goes on sys.path: the test folders mirror the package (export/, triton/,
# ...) and must not shadow real packages; pytest imports test files with --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent / "support"))

from native_checks import build_emulator  # noqa: E402  (a tests/support module: needs the path above)


@pytest.fixture(autouse=True)
def _same_random_data_every_run():
    """Each test starts from the same global RNG state, so a plain ``torch.randn`` / ``np.random`` /
    ``random`` call draws the same data on every run, in any test order or selection: a result
    never depends on the draw. (Inside ``@given``, tests draw a seed from hypothesis instead.)"""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` runs ``spp-deploy ARGV...`` in-process and returns (exit code, stdout, stderr)
    of that command alone; arguments may be paths or numbers."""
    from spp_deploy.cli import main

    def run(*argv):
        capsys.readouterr()  # drop anything printed before this command
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def build_tools(monkeypatch):
    """``build_tools(cmake, nvcc)``: make ``spp_deploy.native.cmake`` see cmake and nvcc as present (fake
    paths) or missing, whatever this machine has; TENSORRT_ROOT unset. The plugin build checks
    for them before running either."""
    import shutil

    from spp_deploy.native import cmake as native_build

    def set_tools(cmake: bool, nvcc: bool) -> None:
        real_which = shutil.which

        def which(name, *args, **kwargs):
            if name == "cmake":
                return "/fake/bin/cmake" if cmake else None
            return real_which(name, *args, **kwargs)

        monkeypatch.setattr(shutil, "which", which)
        monkeypatch.setattr(native_build, "find_nvcc", lambda: "/fake/bin/nvcc" if nvcc else None)
        monkeypatch.delenv("TENSORRT_ROOT", raising=False)

    return set_tools


@pytest.fixture(scope="session")
def reflib(tmp_path_factory) -> Path:
    """libspp_reference.so (the plugin's CPU reference), built once per session: CMake, or g++ directly."""
    import shutil
    import subprocess

    from spp_deploy.native import cmake as native_build, library as native_lib

    bd = tmp_path_factory.mktemp("spp_ref_build")
    if shutil.which("cmake"):
        return native_build.build_reference(bd)
    gxx = shutil.which("g++") or shutil.which("c++")
    if gxx is None:
        pytest.skip("neither cmake nor a C++ compiler is available")
    src = native_lib.plugin_source_dir() / "spatialPyramidPoolPlugin"
    win = native_lib.plugin_source_dir() / "windowSpatialPyramidPoolPlugin"
    lib = bd / native_lib.REFERENCE_LIBRARY_NAME
    subprocess.run(
        [gxx, "-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-ffp-contract=off",
         str(src / "sppReference.cpp"), str(src / "sppConfig.cpp"), str(win / "windowReference.cpp"),
         str(win / "windowConfig.cpp"), "-o", str(lib)],
        check=True,
    )
    return lib


@pytest.fixture(scope="session")
def emulib(tmp_path_factory) -> Path:
    """libspp_kernel_emu.so: the CUDA kernel source run by the host SIMT emulator, built once per session."""
    from spp_deploy.native import emulator

    return build_emulator(emulator.unavailable_reason(), emulator.build_kernel_emulator,
                          tmp_path_factory.mktemp("spp_kernel_emu"))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """tests/support/tiny.py's model exported (standard mode, not parity-checked: the tests check what they need)."""
    from tiny import export_tiny

    return export_tiny(tmp_path_factory.mktemp("tiny"), {"tiny": {}})["tiny"]


@pytest.fixture(scope="session")
def selftestlib(tmp_path_factory) -> Path:
    """libsimt_selftest_emu.so: the emulator's CUDA self-test kernel, built once per session."""
    from spp_deploy.native import emulator, emulator_selftest

    return build_emulator(emulator.unavailable_reason(), emulator_selftest.build_selftest_emulator,
                          tmp_path_factory.mktemp("selftest_emu"))


@pytest.fixture(scope="session")
def wemulib(tmp_path_factory) -> Path:
    """libspp_window_kernel_emu.so: the window-SPP CUDA kernel under the SIMT emulator, built once per session."""
    from spp_deploy.native import emulator

    return build_emulator(emulator.unavailable_reason(), emulator.build_window_emulator,
                          tmp_path_factory.mktemp("window_kernel_emu"))
