"""Comparator: error metrics between two backends' outputs (the parity sweeps are ``runtime.parity``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..sources.trial import source_error  # noqa: F401 (its old home; parity looks it up here)

DEFAULT_RTOL = 1e-5


@dataclass
class Comparison:
    """How far ``out`` is from ``ref``. ``max_rel`` is relative to the reference's largest magnitude."""

    max_abs: float
    max_abs_index: tuple
    max_rel: float
    mean_abs: float
    cosine: float
    nan_mismatch: int  # positions NaN in one output but not the other
    shape_ok: bool
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def compare_arrays(out: np.ndarray, ref: np.ndarray, rtol: float = DEFAULT_RTOL, atol: float = 0.0) -> Comparison:
    if out.shape != ref.shape:
        return Comparison(math.inf, (), math.inf, math.inf, 0.0, 0, False, False)
    a, b = out.astype(np.float64), ref.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    nan_mismatch = int(np.count_nonzero(nan_a != nan_b))
    ok = ~(nan_a | nan_b)
    diff = np.where(ok, np.abs(a - b), 0.0)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.size else ()
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(np.where(ok, b, 0.0)).max()) if diff.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    av, bv = np.where(ok, a, 0.0).ravel(), np.where(ok, b, 0.0).ravel()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # inf values: cosine is NaN, said as is
        denom = float(np.linalg.norm(av) * np.linalg.norm(bv))
        cosine = float(av @ bv / denom) if denom > 0 else (1.0 if max_abs == 0 else 0.0)
    passed = nan_mismatch == 0 and (max_abs <= atol or max_rel <= rtol)
    return Comparison(max_abs, idx, max_rel, float(diff.mean()) if diff.size else 0.0, cosine, nan_mismatch,
                      True, passed)


_MOVED = ("SizeReport", "InputGrid", "input_grid", "parity_sizes", "check_export_parity")


def __getattr__(name: str):
    """The parity sweep's names, from their module (``runtime.parity``) where old code asks here."""
    if name in _MOVED:
        from . import parity

        return getattr(parity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
