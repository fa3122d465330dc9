"""The one parity module: an exported file run by ONNX Runtime CPU against the PyTorch model it
came from, case by case (``check_parity``), for whole-image models at many input sizes
(``check_export_parity``, sizes from ``parity_sizes``) and for window pyramids and detection heads
at many map sizes and window sets (``check_window_parity``). One comparison (``compare_arrays``
per output), one report per case (``SizeReport``), one error naming the first case that differs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..util.errors import ParityError, first_line
from . import compare as _compare  # source_error looked up when called (tests replace it)
from .compare import DEFAULT_RTOL, Comparison, compare_arrays


@dataclass
class SizeReport:
    shape: tuple[int, int, int, int]
    comparison: Comparison | None  # the worst output's: the first that fails, else the largest max_rel
    skipped: str | None = None  # why this size was not compared (the source model breaks there)
    output: str | None = None  # the output ``comparison`` is about
    outputs: dict[str, Comparison] = field(default_factory=dict)  # every output's comparison, by name
    identical: bool | None = None  # every output bit for bit the same (None: not compared)
    exact: bool = False  # bit-identical output demanded (a bare max pyramid)
    where: str = ""  # the case in words ("input 1x3x16x16", "maps 1x8x13x17 with 64 windows")

    @property
    def passed(self) -> bool:
        ok = self.comparison is not None and self.comparison.passed and (self.identical or not self.exact)
        return self.skipped is not None or ok


def _size_report(shape: tuple, pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], rtol: float,
                 atol: float) -> SizeReport:
    """Compare each (name, file output, PyTorch output) at one size. Skipped where an output is
    not fixed-length in the source (the file says NaN, in the features of the pyramid that
    breaks, instead of guessing)."""
    for name, out, ref in pairs:
        if out.shape != ref.shape and out.size and np.isnan(out.reshape(len(out), -1)).any(axis=1).all():
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
            self.seen[shape] = _compare.source_error(self.model, shape)
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


@dataclass
class Case:
    """One comparison: what the file is given, and PyTorch's outputs (in the file's output order)."""

    shape: tuple
    where: str
    feed: dict[str, np.ndarray]
    reference: list[np.ndarray]


def _dims(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def check_parity(onnx_path: str | Path, cases: Iterable[Case], rtol: float = DEFAULT_RTOL, atol: float = 0.0,
                 exact: bool = False, progress: Callable[[str], None] | None = None) -> list[SizeReport]:
    """Run ``onnx_path`` in ONNX Runtime CPU on each case and compare with its reference.

    Args:
        cases: the cases, made lazily (each holds its PyTorch outputs).
        exact: also demand bit-identical outputs (a bare max pyramid).
    Returns:
        One ``SizeReport`` per case; ``ParityError`` naming the first failing case instead.
    """
    from .ort_runner import OrtRunner

    reports: list[SizeReport] = []
    with OrtRunner(onnx_path, "cpu") as runner:
        out_names = runner.output_names()
        for case in cases:
            try:
                outs = runner.infer(case.feed)
            except Exception as e:  # a runtime failure in one case (a baked-in size too) is a mismatch there
                raise ParityError(f"ONNX Runtime failed at {case.where}: {first_line(e)}; file not written") from e
            if len(case.reference) != len(out_names):
                raise ParityError(f"the ONNX file has {len(out_names)} output(s), the PyTorch model returns "
                                  f"{len(case.reference)} tensor(s); file not written")
            pairs = [(n, outs[n], ref) for n, ref in zip(out_names, case.reference)]
            r = _size_report(case.shape, pairs, rtol, atol)
            r.where, r.exact = case.where, exact
            if r.comparison is not None:
                r.identical = all(np.array_equal(out, ref) for _, out, ref in pairs)
            reports.append(r)
            if progress and r.comparison is not None:
                verdict = "ok" if r.passed else "MISMATCH"
                progress(f"{_dims(case.shape)}: max rel err {r.comparison.max_rel:.2e} {verdict}")
    _raise_first_failure(reports, rtol, atol)
    return reports


def _raise_first_failure(reports: Sequence[SizeReport], rtol: float, atol: float) -> None:
    if not any(r.comparison is not None for r in reports):
        raise ParityError("no input size could be compared with the source model: nothing was verified; "
                          "file not written")
    bad = [r for r in reports if not r.passed]
    if not bad:
        return
    r, c = bad[0], bad[0].comparison
    which = f" {r.output!r}" if r.output is not None and len(r.outputs) > 1 else ""
    how = "within tolerance but not bit-identical, " if c.passed else ""
    error = ParityError(
        f"ONNX Runtime output{which} differs from PyTorch at {r.where}: {how}max abs err {c.max_abs:.3g}, "
        f"max rel err {c.max_rel:.3g} (limits {atol:g} / {rtol:g}), NaN mismatches {c.nan_mismatch}; file not written"
    )
    error.shape = r.shape  # where ``localize`` looks for the first differing module
    raise error


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
    C = int(example.shape[1])
    reports: list[SizeReport] = []
    if sizes is None:
        shapes, skipped = parity_sizes(model, example)
        reports += [SizeReport(s, None, why) for s, why in skipped]
    else:
        shapes = []
        for b, h, w in sizes:
            why = _compare.source_error(model, (b, C, h, w))
            if why:
                reports.append(SizeReport((b, C, h, w), None, why))
            else:
                shapes.append((b, C, h, w))
    if not shapes:
        raise ParityError("no input size is legal for the source model: nothing to validate against")
    return reports + check_parity(onnx_path, _image_cases(model, onnx_path, shapes, seed), rtol, atol,
                                  progress=progress)


def _image_cases(model: torch.nn.Module, onnx_path: Path, shapes: Sequence[tuple], seed: int) -> Iterable[Case]:
    from .ort_runner import OrtRunner
    from .torch_runner import TorchRunner

    with OrtRunner(onnx_path, "cpu") as runner:
        ((in_name, (in_type, _)),) = runner.input_specs().items()
    in_dtype = np.float16 if in_type == "tensor(float16)" else np.float32
    rng = np.random.default_rng(seed)
    ref_runner = TorchRunner(model)
    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        refs = list(ref_runner.infer({"input": x}).values())
        yield Case(shape, f"input {_dims(shape)}", {in_name: x.astype(in_dtype)}, refs)


# ---- window pyramids (SPP-net detection heads): maps [S, C, H, W] and windows [R, 5] ----


@dataclass
class WindowParity:
    shape: tuple[int, int, int, int]  # S, H, W, R
    max_abs_diff: float
    bit_identical: bool


def check_window_parity(model: torch.nn.Module, onnx_path: str | Path, channels: int, stride: float,
                        cases: Sequence[tuple[int, int, int, int]] | None = None, rtol: float = 1e-5,
                        seed: int = 0, exact: bool = False) -> list[WindowParity]:
    """ONNX Runtime CPU vs the eager module, both given the same windows in the file's windows
    dtype (float32 windows: the same float32 values, so max pooling must match bit for bit);
    ``ParityError`` naming the first mismatching case.

    Args:
        cases: (S, H, W, R) map and window counts (default ``spp_deploy.ops.window_pyramid.PARITY_CASES``).
        exact: demand bit-identical output (a bare window pyramid); otherwise within ``rtol`` of
            the reference's largest magnitude (layers after the pyramid may sum in another order).
    """
    from ..ops.window_pyramid import PARITY_CASES

    made = _window_cases(model, onnx_path, channels, stride, PARITY_CASES if cases is None else cases, seed)
    reports = check_parity(onnx_path, made, rtol, exact=exact)
    return [WindowParity(r.shape, r.comparison.max_abs if r.comparison else math.nan, bool(r.identical))
            for r in reports]


def _window_cases(model: torch.nn.Module, onnx_path: str | Path, channels: int, stride: float,
                  cases: Sequence[tuple[int, int, int, int]], seed: int) -> Iterable[Case]:
    from ..ops.window_pyramid import parity_windows
    from .ort_runner import OrtRunner

    with OrtRunner(onnx_path, "cpu") as runner:
        (maps_name, _), (win_name, (win_type, _)) = runner.input_specs().items()
    w_dtype = np.float64 if win_type == "tensor(double)" else np.float32
    rng = np.random.default_rng(seed)
    for S, H, W, R in cases:
        # post-ReLU maps (what the pyramid sees in a detector) with some exact zeros
        x = np.maximum(rng.standard_normal((S, channels, H, W), dtype=np.float32), 0)
        win = parity_windows(rng, R, S, H, W, stride).astype(w_dtype)
        with torch.no_grad():
            ref = model(torch.from_numpy(x), torch.from_numpy(win)).numpy()
        yield Case((S, H, W, R), f"maps {S}x{channels}x{H}x{W} with {R} windows", {maps_name: x, win_name: win}, [ref])
