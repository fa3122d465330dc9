"""Comparator: error metrics between two backends' outputs, and the export parity sweep."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..sources.trial import source_error
from ..util.errors import ParityError, first_line

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


@dataclass
class SizeReport:
    shape: tuple[int, int, int, int]
    comparison: Comparison | None  # the worst output's: the first that fails, else the largest max_rel
    skipped: str | None = None  # why this size was not compared (the source model breaks there)
    output: str | None = None  # the output ``comparison`` is about
    outputs: dict[str, Comparison] = field(default_factory=dict)  # every output's comparison, by name

    @property
    def passed(self) -> bool:
        return self.skipped is not None or (self.comparison is not None and self.comparison.passed)


def _size_report(shape: tuple, pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], rtol: float,
                 atol: float) -> SizeReport:
    """Compare each (name, file output, PyTorch output) at one size. Skipped where an output is
    not fixed-length in the source (the file says NaN, in the features of the pyramid that
    breaks, instead of guessing)."""
    for name, out, ref in pairs:
        if out.shape != ref.shape and out.ndim and np.isnan(out.reshape(len(out), -1)).any(axis=1).all():
            which = f" {name!r}" if len(pairs) > 1 else ""
            return SizeReport(shape, None, f"the model's output{which} is {list(ref.shape[1:])} per sample "
                              "here (not fixed-length); the ONNX file outputs NaN")
    cmps = {name: compare_arrays(out, ref, rtol=rtol, atol=atol) for name, out, ref in pairs}
    worst = next((n for n, c in cmps.items() if not c.passed), None) or max(cmps, key=lambda n: cmps[n].max_rel)
    return SizeReport(shape, cmps[worst], output=worst, outputs=cmps)


def _next_prime(v: int) -> int:
    v = max(v, 2)
    while any(v % p == 0 for p in range(2, int(v**0.5) + 1)):
        v += 1
    return v


class _Legality:
    """``source_error`` per shape, each shape run once."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.seen: dict[tuple, str | None] = {}

    def error(self, shape: tuple) -> str | None:
        if shape not in self.seen:
            self.seen[shape] = source_error(self.model, shape)
        return self.seen[shape]


@dataclass(frozen=True)
class InputGrid:
    """Where a model takes square inputs: ``smallest + k * stride`` (a stride-32 detector:
    stride 32; most models: 1), found by probing (``input_grid``)."""

    smallest: int
    stride: int

    def snap(self, v: int) -> int:
        """The first size on the grid at or above ``v``."""
        return self.smallest + max(0, -(-(v - self.smallest) // self.stride)) * self.stride


def input_grid(model: torch.nn.Module, channels: int, up_to: int, span: int = 64, budget_s: float = 10.0,
               legality: _Legality | None = None) -> InputGrid:
    """The model's smallest legal square size (batch 1) and its stride: the gcd of the legal
    sizes' distances from the smallest in the next ``span`` sizes (probing stops as soon as the
    gcd is 1, or after ``budget_s`` seconds of probing)."""
    legality = legality or _Legality(model)
    legal = lambda s: legality.error((1, channels, s, s)) is None  # noqa: E731
    smallest = next((s for s in range(1, up_to + 1) if legal(s)), up_to)
    stride, t0 = 0, time.perf_counter()
    for s in range(smallest + 1, smallest + span + 1):
        if legal(s):
            stride = math.gcd(stride, s - smallest)
            if stride == 1:
                break
        if time.perf_counter() - t0 > budget_s:
            break
    return InputGrid(smallest, stride or 1)


def parity_sizes(model: torch.nn.Module, example: torch.Tensor, count: int = 8) -> tuple[list, list]:
    """(legal shapes, [(shape, reason)] skipped): at least ``count`` sizes the model takes where
    it can be found: smallest legal, odd (odd multiples of the model's stride), prime,
    non-square, large, batch > 1.

    Candidates are snapped to the model's input grid (``input_grid``) and nudged up a few grid
    steps; one that stays illegal is reported as skipped with the model's own error.
    """
    B, C, H, W = (int(s) for s in example.shape)
    legality = _Legality(model)
    grid = input_grid(model, C, max(H, W), legality=legality)
    smallest, p = grid.smallest, grid.stride
    odd = (lambda v: v | 1) if p == 1 else (lambda v: (max(v // p, 1) | 1) * p)  # noqa: E731
    cands = [
        (1, smallest, smallest),
        (B, H, W),
        (1, odd(H * 3 // 4), odd(W * 5 // 4)),
        (1, _next_prime(H * 3 // 5), _next_prime(W * 9 // 10)),
        (2, max(smallest, H // 2 + 7), W + 31),
        (1, 2 * H + 1, W * 3 // 2),
        (1, W + 5, max(smallest, H // 2 + 1)),
        (3, smallest + 1, smallest + 2),
        (1, _next_prime(H + 17), odd(W * 2 - 1)),
    ]
    # more odd multiples of the stride, non-square, batch > 1: enough to reach ``count``
    cands += [(1 + k % 3, odd(smallest + (2 * k + 1) * p), odd(smallest + (k + 2) * p)) for k in range(count)]
    legal, skipped, seen = [], [], set()
    for i, (b, h, w) in enumerate(cands):
        if i >= 9 and len(legal) >= count:
            break
        h, w = grid.snap(h), grid.snap(w)
        shape = None
        for dh, dw in [(0, 0)] + [(d * p, (d + 1) * p) for d in range(1, 8)]:
            cand = (b, C, h + dh, w + dw)
            if cand in seen:
                break
            if legality.error(cand) is None:
                shape = cand
                break
        if shape is None:
            if i < 9:
                skipped.append(((b, C, h, w), legality.error((b, C, h, w)) or "duplicate size"))
        elif shape not in seen:
            seen.add(shape)
            legal.append(shape)
    return legal, skipped


def check_export_parity(
    model: torch.nn.Module,
    onnx_path: Path,
    example: torch.Tensor,
    sizes: Sequence[tuple[int, int, int]] | None = None,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    atol: float = 0.0,
) -> list[SizeReport]:
    """ONNX Runtime CPU vs PyTorch at many sizes; ``ParityError`` on any mismatch.

    The ONNX file gets its own input dtype (float16 files see the same values rounded to half);
    the PyTorch reference always runs in the model's own precision on float32 inputs.
    """
    from .ort_runner import OrtRunner
    from .torch_runner import TorchRunner

    C = int(example.shape[1])
    reports: list[SizeReport] = []
    if sizes is None:
        shapes, skipped = parity_sizes(model, example)
        reports += [SizeReport(s, None, why) for s, why in skipped]
    else:
        shapes = []
        for b, h, w in sizes:
            why = source_error(model, (b, C, h, w))
            if why:
                reports.append(SizeReport((b, C, h, w), None, why))
            else:
                shapes.append((b, C, h, w))
    if not shapes:
        raise ParityError("no input size is legal for the source model: nothing to validate against")
    rng = np.random.default_rng(seed)
    ref_runner = TorchRunner(model)
    with OrtRunner(onnx_path, "cpu") as ort_runner:
        ((in_name, (in_type, _)),) = ort_runner.input_specs().items()
        in_dtype = np.float16 if in_type == "tensor(float16)" else np.float32
        out_names = ort_runner.output_names()
        for shape in shapes:
            x = rng.standard_normal(shape, dtype=np.float32)
            refs = list(ref_runner.infer({"input": x}).values())
            try:
                outs = ort_runner.infer({in_name: x.astype(in_dtype)})
            except Exception as e:  # a runtime failure at one size is a mismatch there, not a crash
                raise ParityError(f"ONNX Runtime failed at input {'x'.join(map(str, shape))}: "
                                  f"{first_line(e)}; file not written") from e
            if len(refs) != len(out_names):
                raise ParityError(f"the ONNX file has {len(out_names)} output(s), the PyTorch model returns "
                                  f"{len(refs)} tensor(s); file not written")
            reports.append(_size_report(shape, [(n, outs[n], ref) for n, ref in zip(out_names, refs)], rtol, atol))
            cmp = reports[-1].comparison
            if progress and cmp is not None:
                progress(f"{'x'.join(map(str, shape))}: max rel err {cmp.max_rel:.2e} {'ok' if cmp.passed else 'MISMATCH'}")
    if not any(r.comparison is not None for r in reports):
        raise ParityError("no input size could be compared with the source model: nothing was verified; file not written")
    bad = [r for r in reports if not r.passed]
    if bad:
        r = bad[0]
        c = r.comparison
        which = f" {r.output!r}" if r.output is not None and len(r.outputs) > 1 else ""
        error = ParityError(
            f"ONNX Runtime output{which} differs from PyTorch at input {'x'.join(map(str, r.shape))}: "
            f"max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g} (limits {atol:g} / {rtol:g}), NaN mismatches {c.nan_mismatch}; file not written"
        )
        error.shape = r.shape  # where ``localize`` looks for the first differing module
        raise error
    return reports
