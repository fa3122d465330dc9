"""Kernel launches report their own error and leave an error pending from an earlier call alone
(both kernels under the SIMT emulator: a caller's error must not be blamed on the plugin), and
every ``*Emulated.cpp`` passes a plain host compile check. The window plugin's FP32-only windows
are checked by plugins/tools/plugin_host_check.cpp, which compile_check.sh runs against TensorRT
headers (test_plugin_reference.py)."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

from spp_deploy.native import emulator as emu, library as native_lib

CUDA_ERROR_LAUNCH_FAILURE = 719  # cudaErrorLaunchFailure: an earlier kernel's, not ours


def _hooks(path):
    lib = ctypes.CDLL(str(path))
    lib.simt_emu_set_pending_error.argtypes, lib.simt_emu_set_pending_error.restype = [ctypes.c_int32], None
    lib.simt_emu_peek_last_error.argtypes, lib.simt_emu_peek_last_error.restype = [], ctypes.c_int32
    return lib


@pytest.mark.parametrize("kernel", ["spp", "window"])
def test_launch_leaves_an_earlier_pending_error_alone(request, kernel):
    """A successful launch returns OK and leaves the earlier error pending for its owner; before
    the fix the launcher's cudaGetLastError() cleared (swallowed) it. The session's emulator builds
    serve: a pending error lasts one run only."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 13, 11)).astype(np.float32)
    if kernel == "spp":
        path = request.getfixturevalue("emulib")
        run = lambda: emu.emulated_pyramid(path, x, [2, 1], "max", "adaptive", "channel_major")  # noqa: E731
    else:
        path = request.getfixturevalue("wemulib")
        windows = np.array([[0, 1, 1, 100, 90], [0, 20, 5, 60, 70]], dtype=np.float32)
        run = lambda: emu.emulated_window_pyramid(path, x, windows, [2, 1], [16.0, 0.0, 0.0])  # noqa: E731
    hooks = _hooks(path)
    clean = run()
    assert clean.status == 0 and hooks.simt_emu_peek_last_error() == 0
    hooks.simt_emu_set_pending_error(CUDA_ERROR_LAUNCH_FAILURE)
    pending = run()
    assert pending.status == 0, pending.fault
    assert np.array_equal(pending.output, clean.output, equal_nan=True)
    assert hooks.simt_emu_peek_last_error() == CUDA_ERROR_LAUNCH_FAILURE


def test_emulated_sources_pass_a_plain_host_compile_check():
    """g++ -fsyntax-only on each *Emulated.cpp with nothing but the include path (no -DSIMT_EMULATION)."""
    reason = emu.unavailable_reason()
    cuda_inc = emu.cuda_include_dir()
    if reason or cuda_inc is None:
        pytest.skip(f"no host compiler / CUDA headers: {reason}")
    sources = sorted(native_lib.plugin_source_dir().rglob("*Emulated.cpp"))
    assert len(sources) >= 3
    for src in sources:
        proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-isystem", str(cuda_inc), str(src)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{src.name}: {proc.stderr[-2000:]}"
