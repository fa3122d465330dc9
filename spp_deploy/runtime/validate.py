"""The validation sweep behind ``spp-deploy validate``: every backend against the PyTorch model at
every requested size, with Polygraphy-style per-output tolerances."""

from __future__ import annotations

import contextlib
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..util.errors import UserError
from .base import _dtype_name
from .compare import Comparison, compare_arrays, source_error

# Default tolerances per precision: (rtol relative to the reference's largest magnitude, atol).
DEFAULT_TOLERANCES = {"fp32": (1e-5, 0.0), "trt-fp32": (1e-4, 1e-5), "fp16": (1e-2, 1e-3)}


@dataclass
class ValidateConfig:
    shapes: Sequence[tuple[int, int, int, int]]
    backends: Sequence[str]
    onnx: str | os.PathLike | None = None
    engine: str | os.PathLike | None = None
    plugin: str | os.PathLike | None = None
    rtol: Mapping[str, float] = field(default_factory=dict)  # output name or "*" -> rtol
    atol: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    reference: str = "torch"  # or "torch-fp64"
    images: Sequence[tuple[str, np.ndarray]] = ()  # (label, NCHW float32) real inputs, run as given
    threads: int | None = None


@dataclass
class Record:
    backend: str
    shape: tuple
    output: str
    comparison: Comparison | None = None
    top1: float | None = None  # fraction of rows whose argmax agrees (classifier outputs)
    rtol: float = 0.0
    atol: float = 0.0
    precision: str = "fp32"
    skipped: str | None = None
    error: str | None = None
    label: str | None = None  # image file for real inputs

    @property
    def passed(self) -> bool:
        if self.skipped is not None:
            return True
        return self.error is None and self.comparison is not None and self.comparison.passed

    @property
    def status(self) -> str:
        return "SKIPPED" if self.skipped is not None else ("PASSED" if self.passed else "FAILED")

    def as_dict(self) -> dict:
        d = {"backend": self.backend, "shape": list(self.shape), "output": self.output, "status": self.status,
             "rtol": self.rtol, "atol": self.atol, "precision": self.precision, "top1_agreement": self.top1,
             "skipped": self.skipped, "error": self.error, "input": self.label or "random"}
        if self.comparison is not None:
            c = self.comparison.as_dict()
            d.update({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in c.items() if k != "passed"})
            d["max_abs_index"] = list(self.comparison.max_abs_index)
        return d


@dataclass
class Report:
    records: list[Record] = field(default_factory=list)

    def failed(self) -> list[Record]:
        return [r for r in self.records if not r.passed]

    def compared(self) -> int:
        """Comparisons actually made (not skipped): zero means nothing was validated."""
        return sum(r.skipped is None for r in self.records)

    @property
    def passed(self) -> bool:
        """No failure, and at least one comparison: a run that skipped everything checked nothing."""
        return not self.failed() and self.compared() > 0

    def counts(self) -> dict[str, int]:
        out = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0}
        for r in self.records:
            out[r.status] += 1
        return out

    def as_dict(self) -> dict:
        return {"summary": self.counts(), "passed": self.passed, "results": [r.as_dict() for r in self.records]}


DEFAULT_SAMPLES = 6  # sizes drawn from a size range without COUNT


def sweep_shapes(channels: int, sizes: Sequence[tuple] | None, size_range: tuple[int, int] | None,
                 samples: int, batches: Sequence[int], seed: int) -> list[tuple[int, int, int, int]]:
    """Full BxCxHxW shapes: explicit (B or None, H, W) sizes, or ``samples`` seeded random (H, W)
    in the range (both ends included), each at every batch size (an explicit B is kept).

    Args:
        channels: the model's input channels (C of every shape).
        sizes: explicit (B or None, H, W) sizes, or None.
        size_range: (lo, hi) for H and W, or None.
        samples: how many (H, W) pairs to draw from ``size_range`` (its two ends included).
        batches: the batch sizes each size without an explicit B gets (none: 1).
        seed: seeds the draw, so a sweep is repeatable.

    Returns:
        The shapes in order, without repeats.
    """
    hw: list[tuple[int | None, int, int]] = []
    if sizes:
        hw += [tuple(s) for s in sizes]
    if size_range:
        lo, hi = size_range[:2]
        rng = random.Random(seed)
        picks = [(lo, lo), (hi, hi)] + [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(max(0, samples - 2))]
        hw += [(None, h, w) for h, w in picks[:max(samples, 1)]]
    out: list[tuple[int, int, int, int]] = []
    for b, h, w in hw:
        for bb in ([b] if b is not None else (list(batches) or [1])):
            s = (bb, channels, h, w)
            if s not in out:
                out.append(s)
    return out


def parse_tolerances(text: str | None, flag: str = "tolerance") -> dict[str, float]:
    """'1e-5' -> {'*': 1e-5}; 'output:1e-5,aux:1e-3' -> per output. ``flag`` names the value in
    messages (the CLI passes its flag).

    Args:
        text: the tolerance as given, or None.
        flag: what a message calls the value.

    Returns:
        {output name or '*': tolerance}; empty for None.

    Raises:
        UserError: not a finite number >= 0.
    """
    if text is None:
        return {}
    if not text.strip():
        raise UserError(f"bad {flag} {text!r}: expected a number or output:number")
    out = {}
    for item in text.split(","):
        name, sep, val = item.strip().rpartition(":")
        try:
            v = float(val)
        except ValueError:
            raise UserError(f"bad {flag} {item!r}: expected a number or output:number") from None
        if v < 0 or not math.isfinite(v):
            raise UserError(f"bad {flag} {item!r}: must be a finite number >= 0")
        out[name if sep else "*"] = v
    return out


def _precision_of(backend: str, runner) -> str:
    try:
        (dtype, _), *_ = runner.input_specs().values()
    except Exception:
        return "fp32"
    if _dtype_name(dtype) == "float16":
        return "fp16"
    meta = getattr(runner, "path", None)
    if backend == "trt" and meta is not None:
        from .trt.metadata import EngineMeta

        m = EngineMeta.load(Path(meta))
        if m is not None and m.precision == "fp16":
            return "fp16"
        return "trt-fp32"
    return "fp32"


def _tol(cfg: ValidateConfig, output: str, precision: str) -> tuple[float, float]:
    drt, dat = DEFAULT_TOLERANCES[precision]
    return cfg.rtol.get(output, cfg.rtol.get("*", drt)), cfg.atol.get(output, cfg.atol.get("*", dat))


def _check_tolerance_names(cfg: ValidateConfig, runners) -> None:
    """A tolerance for an output that no backend has is a typo, not a default: name the real ones."""
    known = sorted({n for r in runners for n in r.output_names()})
    for option in ("atol", "rtol"):
        for name in getattr(cfg, option):
            if name != "*" and name not in known:
                raise UserError(f"no output named {name!r} (the outputs: {', '.join(known)})", option=option)


def _top1(out: np.ndarray, ref: np.ndarray) -> float | None:
    if out.ndim != 2 or out.shape != ref.shape or out.shape[1] < 2:
        return None
    return float(np.mean(np.argmax(out, axis=1) == np.argmax(ref, axis=1)))


def run_validation(model, cfg: ValidateConfig, on_record: Callable[[Record], None] | None = None,
                   on_step: Callable[[], None] | None = None,
                   on_infer: Callable[[str, dict, dict], None] | None = None) -> Report:
    """Run the sweep. Shapes the PyTorch model cannot take are skipped with its own error; a
    shape outside a TensorRT engine's profile is skipped for that backend with the profile.
    ``on_infer(backend, feed, outputs)`` sees every inference (the reference's first), before
    its records: what ``--save-inputs``/``--save-outputs`` write and ``--localize`` replays.

    Args:
        model: the PyTorch reference (an ``nn.Module`` or callable).
        cfg: what to compare: shapes or inputs, backends, tolerances, files.
        on_record: called with each record as it is made (progress, streaming output).
        on_step: called once per input and backend (progress bars).
        on_infer: called with (backend, feed, outputs) of every inference.

    Returns:
        The report: one record per backend, shape and output.
    """
    from .torch_runner import TorchRunner

    sweep = _Sweep(cfg, Report(), on_record, on_step, on_infer)
    ref_runner = TorchRunner(model, float64=cfg.reference == "torch-fp64")
    inputs = _runnable_inputs(model, sweep)
    if not inputs:
        return sweep.report
    with contextlib.ExitStack() as stack:
        runners = _open_runners(model, cfg, stack)
        _check_tolerance_names(cfg, runners.values())
        for shape, label, x in inputs:
            ref_out = ref_runner.infer({ref_runner.input_name: x})
            sweep.infer(ref_runner.name, {ref_runner.input_name: x}, ref_out)
            for b, runner in runners.items():
                _compare_backend(sweep, b, runner, shape, label, x, ref_out)
                sweep.step()
    return sweep.report


@dataclass
class _Sweep:
    """One run's settings, report and callbacks, so that its steps share them without long argument lists."""

    cfg: ValidateConfig
    report: Report
    on_record: Callable[[Record], None] | None = None
    on_step: Callable[[], None] | None = None
    on_infer: Callable[[str, dict, dict], None] | None = None

    def emit(self, rec: Record) -> None:
        self.report.records.append(rec)
        if self.on_record:
            self.on_record(rec)

    def step(self) -> None:
        if self.on_step:
            self.on_step()

    def infer(self, backend: str, feed: dict, outputs: dict) -> None:
        if self.on_infer:
            self.on_infer(backend, feed, outputs)


def _runnable_inputs(model, sweep: _Sweep) -> list[tuple[tuple, str | None, np.ndarray]]:
    """(shape, label, array) of every input the PyTorch model can take, random ones first (seeded,
    drawn only for those that run); the others are skipped for every backend here, once."""
    cfg = sweep.cfg
    rng = np.random.default_rng(cfg.seed)
    candidates = [(shape, None, None) for shape in cfg.shapes] + [(arr.shape, label, arr) for label, arr in cfg.images]
    inputs: list[tuple[tuple, str | None, np.ndarray]] = []
    for shape, label, arr in candidates:
        why = source_error(model, shape)
        if why:
            for b in cfg.backends:
                sweep.emit(Record(b, tuple(shape), "*", skipped=f"the PyTorch model cannot run here: {why}",
                                  label=label))
                sweep.step()
            continue
        x = rng.standard_normal(shape, dtype=np.float32) if arr is None else arr.astype(np.float32)
        inputs.append((tuple(shape), label, x))
    return inputs


def _open_runners(model, cfg: ValidateConfig, stack: contextlib.ExitStack) -> dict:
    """Every backend's runner, opened once for the whole sweep and closed with ``stack``."""
    from .backends import make_runner

    runners = {}
    for b in cfg.backends:
        r = make_runner(b, model=model, onnx=cfg.onnx, engine=cfg.engine, plugin=cfg.plugin, threads=cfg.threads)
        runners[b] = stack.enter_context(r)
    return runners


def _compare_backend(sweep: _Sweep, b: str, runner, shape: tuple, label: str | None, x: np.ndarray,
                     ref_out: dict) -> None:
    """One backend on one input: its records (one per output), or one skip/error record that says why not."""
    specs = runner.input_specs()
    precision = _precision_of(b, runner)
    if len(specs) != 1:
        raise UserError(f"{b}: the model has {len(specs)} inputs; validate supports one")
    (in_name, (dtype, _)), = specs.items()
    xin = x.astype(_dtype_name(dtype)) if _dtype_name(dtype) in ("float16", "float32", "float64") else x
    if b == "trt":
        from .trt.profiles import shape_outside_profile

        lo, hi = runner.profile(in_name)
        why = shape_outside_profile(in_name, shape, lo, hi)
        if why:
            sweep.emit(Record(b, shape, "*", skipped=why, label=label, precision=precision))
            return
    try:
        outs = runner.infer({in_name: xin})
    except UserError as e:
        sweep.emit(Record(b, shape, "*", error=str(e), label=label, precision=precision))
        return
    sweep.infer(b, {in_name: xin}, outs)
    names = runner.output_names() if hasattr(runner, "output_names") else list(outs)
    refs = list(ref_out.values())
    if len(names) != len(refs):
        sweep.emit(Record(b, shape, "*", error=f"{b} gives {len(names)} output(s), the PyTorch model "
                          f"returns {len(refs)} tensor(s) ({', '.join(ref_out)})", label=label, precision=precision))
        return
    for name, ref in zip(names, refs):
        rtol, atol = _tol(sweep.cfg, name, precision)
        out = outs[name].astype(np.float64 if ref.dtype == np.float64 else np.float32)
        cmp = compare_arrays(out, ref, rtol=rtol, atol=atol)
        sweep.emit(Record(b, shape, name, cmp, _top1(out, ref), rtol, atol, precision, label=label))


def saved_records(cfg: ValidateConfig, saved: Sequence[tuple[str, Sequence[Mapping[str, np.ndarray]]]],
                  inputs: Sequence[tuple[str, np.ndarray]],
                  refs: Sequence[tuple[np.ndarray, Mapping[str, np.ndarray]]]) -> list[Record]:
    """Records for outputs saved elsewhere (a Polygraphy RunResults: (runner, [outputs per
    iteration])) against the PyTorch outputs ``refs`` ((input, outputs) as run here): iteration i
    of each runner belongs to ``inputs[i]`` ((label, array)); an iteration whose input did not
    run here (the model cannot take it) is skipped. Default tolerances: TensorRT fp32's.

    Args:
        cfg: the tolerances (``rtol``/``atol``, per output).
        saved: (runner name, [outputs per iteration]) as read from the file.
        inputs: (label, array) per iteration.
        refs: (input, PyTorch outputs) of each input run here.

    Returns:
        One record per runner, iteration and output.
    """
    records = []
    for runner, iterations in saved:
        backend = f"{runner} (saved)"
        for i, outs in enumerate(iterations):
            if i >= len(inputs):
                records.append(Record(backend, (), "*", error=f"no input for iteration {i}: the inputs file has "
                                      f"{len(inputs)}", label=f"iteration {i}"))
                continue
            where, x = inputs[i]
            ref = next((o for xr, o in refs if xr.shape == x.shape and np.array_equal(xr, x)), None)
            if ref is None:
                records.append(Record(backend, tuple(x.shape), "*", skipped="the PyTorch model did not run this input",
                                      label=where))
                continue
            missing = [n for n in ref if n not in outs]
            if missing:
                records.append(Record(backend, tuple(x.shape), "*", error=f"no output named {missing[0]!r} "
                                      f"(saved: {', '.join(outs)})", label=where))
                continue
            for name, r in ref.items():
                rtol, atol = _tol(cfg, name, "trt-fp32")
                out = np.asarray(outs[name]).astype(np.float64 if r.dtype == np.float64 else np.float32)
                records.append(Record(backend, tuple(x.shape), name, compare_arrays(out, r, rtol=rtol, atol=atol),
                                      _top1(out, r), rtol, atol, "trt-fp32", label=where))
    return records
