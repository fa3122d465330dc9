"""Checks shared by the tests of the native code (the plugins' CPU references and the CUDA kernels
under the SIMT emulator): building an emulator, bit-for-bit output comparison, and the createPlugin
field parsers' refusals."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import pytest


def build_emulator(unavailable: str | None, build: Callable[..., Path], build_dir: Path, *args) -> Path:
    """``build(build_dir, *args)``, one of the SIMT emulator builds, or the test skipped with
    ``unavailable`` (``native.emulator.unavailable_reason()``: why this machine cannot build the emulator)."""
    if unavailable:
        pytest.skip(f"kernel emulator: {unavailable}")
    return build(build_dir, *args)


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and dtype, NaN in the same places, identical bits everywhere else."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    it = np.uint32 if a.dtype == np.float32 else np.uint16
    return bool(np.array_equal(na, nb) and np.array_equal(a.view(it)[~na], b.view(it)[~nb]))


def assert_fields_rejected(parse: Callable[[list], object], fields: list, mutate: Callable[[list], object],
                           msg: str) -> None:
    """``parse`` refuses ``fields`` (a good createPlugin field list) once ``mutate`` has broken it,
    with a ValueError whose message matches ``msg``."""
    mutate(fields)
    with pytest.raises(ValueError, match=msg):
        parse(fields)


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as module ``name`` (the scripts are not a package; registered
    in sys.modules so their dataclasses resolve their module)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, script)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
