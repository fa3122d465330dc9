"""benchmarks/gpu_check.py: one line and exit 2 without a GPU; its comparison harness, run on the
CPU with the emulated kernel (tests/native/test_kernel_emulation.py), passes a correct kernel and fails a
kernel one ulp off."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spp_deploy.ops import bins as B
from spp_deploy.native import emulator as emu, emulator_selftest as selftest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses resolve their module
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: gpu_check.py would run")
def test_without_gpu_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "rep")], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "needs a CUDA GPU" in proc.stderr and "Nothing run" in proc.stderr
    assert not (tmp_path / "rep").exists()


def _emulated_forward(lib, corrupt: bool = False):
    def forward(x, levels, mode, rule, order):
        run = emu.emulated_pyramid(lib, x.numpy(), levels, mode, rule, order)
        if run.status != 0:
            raise RuntimeError(f"launcher status {run.status} {run.fault}")
        y = run.output.copy()
        if corrupt:  # one (non-NaN) output one ulp off
            bits = y.view(np.uint32 if y.dtype == np.float32 else np.uint16).reshape(-1)
            bits[np.flatnonzero(~np.isnan(y.reshape(-1)))[-1]] ^= 1
        return torch.from_numpy(y)

    return forward


def _flip_last_ulp(y: np.ndarray) -> None:
    bits = y.view(np.uint32 if y.dtype == np.float32 else np.uint16).reshape(-1)
    bits[np.flatnonzero(~np.isnan(y.reshape(-1)))[-1]] ^= 1


def _emulated_window_forward(lib, corrupt: bool = False):
    def forward(x, windows, levels, projection):
        run = emu.emulated_window_pyramid(lib, x.numpy(), windows.numpy(), levels, projection)
        if run.status != 0:
            raise RuntimeError(f"launcher status {run.status} {run.fault}")
        y = run.output.copy()
        if corrupt and (~np.isnan(y)).any():  # one (non-NaN) output one ulp off
            _flip_last_ulp(y)
        return torch.from_numpy(y)

    return forward


def test_window_harness_on_the_emulated_window_kernel(gpu_check, wemulib):
    """check_window passes the emulated window kernel (every maps/windows dtype and level set) and
    fails it one ulp off."""
    rows = gpu_check.check_window(_emulated_window_forward(wemulib), "cpu", n_sizes=1, seed=1)
    assert len(rows) == len(gpu_check.WINDOW_LEVEL_SETS) * 4
    assert all(r.ok and r.exact == r.sizes == 1 for r in rows), [r for r in rows if not r.ok]
    broken = gpu_check.check_window(_emulated_window_forward(wemulib, corrupt=True), "cpu", n_sizes=1, seed=1)
    assert not any(r.ok for r in broken)


def test_harness_passes_the_emulated_kernel(gpu_check, emulib, tmp_path):
    rows = gpu_check.check_spp(_emulated_forward(emulib), "cpu", n_sizes=1, seed=1)
    combos = {(r.rule, r.mode, r.order, r.dtype) for r in rows}
    assert len(combos) == len(B.RULES) * len(B.MODES) * len(B.ORDERS) * 2
    bad = [r for r in rows if not r.ok]
    assert not bad, bad
    assert all(r.sizes == 1 for r in rows) and sum(r.refused_illegal for r in rows) > 0
    assert all(r.exact == 1 for r in rows if r.tolerance == "exact")

    rep = gpu_check.Report(environment={"gpu": "emulated"}, checks=rows)
    rep.kernels = [{"name": k.name, "status": "checked"} for k in gpu_check.KERNELS]
    assert not any(k.pending for k in gpu_check.KERNELS)
    j, m = gpu_check.write_report(rep, tmp_path / "rep")
    data = json.loads(j.read_text())
    assert data["failures"] == 0 and len(data["checks"]) == len(rows)
    md = m.read_text()
    assert "window_spp`: checked" in md and "| adaptive | max |" in md


def test_harness_fails_a_kernel_one_ulp_off(gpu_check, emulib):
    rows = gpu_check.check_spp(_emulated_forward(emulib, corrupt=True), "cpu", n_sizes=1, seed=1)
    exact_rows = [r for r in rows if r.tolerance == "exact"]
    assert exact_rows and not any(r.ok for r in exact_rows)


def test_selftest_harness_on_the_emulator(gpu_check, selftestlib):
    lib = selftestlib  # skipped with the reason where the emulator cannot be built

    def forward(inp, corrupt=False):
        out, status, fault = selftest.run_selftest_emulated(lib, inp.numpy())
        assert status == 0, fault
        out[5, 3] += corrupt
        return torch.from_numpy(out)

    rows = gpu_check.check_selftest(forward, "cpu", 3)
    assert len(rows) == 1 and rows[0].ok and rows[0].exact == rows[0].sizes == 3
    assert not gpu_check.check_selftest(lambda inp: forward(inp, corrupt=True), "cpu", 3)[0].ok


class _EmulatedExtensions:
    """Stand-ins for the torch extensions gpu_check.py builds, backed by the emulated kernels."""

    def __init__(self, spp_lib, selftest_lib, window_lib, broken=False):
        self.spp_lib, self.selftest_lib, self.window_lib, self.broken = spp_lib, selftest_lib, window_lib, broken

    def window_forward(self, x, windows, levels, projection):
        return _emulated_window_forward(self.window_lib)(x, windows, levels, projection)

    def build(self, name, sources, wrapper, verbose=False):
        assert all(Path(s).is_file() for s in sources) and "PYBIND11_MODULE" in wrapper
        return self

    def spp_forward(self, x, levels, mode, rule, order):
        y = _emulated_forward(self.spp_lib, corrupt=self.broken)(x, levels, B.MODES[mode], B.RULES[rule], B.ORDERS[order])
        return y

    def selftest(self, inp):
        out, status, fault = selftest.run_selftest_emulated(self.selftest_lib, inp.numpy())
        assert status == 0, fault
        return torch.from_numpy(out)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_main_end_to_end_on_the_emulator(gpu_check, emulib, wemulib, selftestlib, tmp_path, monkeypatch, capsys,
                                         broken):
    """The whole command (kernel loop, report files, exit code) with the GPU parts replaced by the
    emulated kernels: 0 when all match, 1 when the SPP kernel is one ulp off."""
    if emu.unavailable_reason():
        pytest.skip(f"kernel emulator: {emu.unavailable_reason()}")
    fake = _EmulatedExtensions(emulib, selftestlib, wemulib, broken)
    monkeypatch.setattr(gpu_check, "no_gpu_reason", lambda: None)
    monkeypatch.setattr(gpu_check, "_environment", lambda: {"gpu": "emulated", "torch": torch.__version__, "cuda": None})
    monkeypatch.setattr(gpu_check, "build_extension", fake.build)
    monkeypatch.setattr(gpu_check, "DEVICE", "cpu")
    code = gpu_check.main(["--out", str(tmp_path / "rep"), "--sizes", "1", "--skip-bench"])
    assert code == (1 if broken else 0), capsys.readouterr().out[-2000:]
    data = json.loads((tmp_path / "rep" / "gpu_check.json").read_text())
    status = {k["name"]: k["status"] for k in data["kernels"]}
    assert status["window_spp"] == "checked" and status["simt_selftest"] == "checked"
    assert (status["spp"] == "checked") != broken
    assert data["failures"] == sum(not c["ok"] for c in data["checks"]) and (data["failures"] > 0) == broken
