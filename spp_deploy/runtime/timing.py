"""Latency measurement shared by the demo, ``bench`` and the benchmark scripts.

``measure`` times a callable on the host clock; ``measure_cuda`` times it with CUDA events on the
current stream (torch imported lazily). Both warm up by count and/or time, then run for at least
``iterations`` and at least ``duration_s`` (trtexec's --iterations / --duration semantics).
``Latency`` holds the samples and derives min/mean/median/p90/p99/max, CV and throughput.
"""

from __future__ import annotations

import builtins
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

NOISY_CV = 0.10  # coefficient of variation above which a measurement is reported as noisy


def _of_samples(stat: Callable[[list[float]], float], doc: str = "") -> property:
    """A read-only ``Latency`` property: ``stat`` of its samples (milliseconds)."""
    return property(lambda self: stat(self.samples_ms), doc=doc or f"{stat.__name__} of the samples (ms)")


@dataclass
class Latency:
    samples_ms: list[float]
    warmup_runs: int = 0
    warmup_s: float = 0.0
    total_s: float = 0.0  # wall time of the timed loop (host), including per-iteration overhead
    clock: str = "host"  # "host" (perf_counter) or "cuda-event"

    def __post_init__(self) -> None:
        if not self.samples_ms:
            raise ValueError("Latency needs at least one sample")

    # The sample statistics, each a read-only property over ``samples_ms``.
    count = _of_samples(len, "number of timed samples")
    median = _of_samples(statistics.median)
    mean = _of_samples(statistics.fmean)
    min = _of_samples(builtins.min)
    max = _of_samples(builtins.max)
    stdev = _of_samples(statistics.pstdev, "population standard deviation")

    def percentile(self, q: float) -> float:
        """Linear-interpolated percentile (numpy's default method); q in [0, 100]."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {q}")
        s = sorted(self.samples_ms)
        pos = q / 100 * (len(s) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    p90 = property(lambda self: self.percentile(90), doc="90th percentile (ms)")
    p99 = property(lambda self: self.percentile(99), doc="99th percentile (ms)")

    @property
    def cv(self) -> float:
        """Coefficient of variation: above ``NOISY_CV`` (10%) the numbers are noisy."""
        return self.stdev / self.mean if self.mean > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.cv > NOISY_CV

    def throughput(self, batch: int = 1) -> float:
        """Items per second at the mean latency (``batch`` items per call)."""
        return batch * 1e3 / self.mean if self.mean > 0 else math.inf

    def summary(self, batch: int = 1) -> dict:
        return {
            "iterations": self.count,
            "warmup_runs": self.warmup_runs,
            "clock": self.clock,
            "min_ms": self.min,
            "mean_ms": self.mean,
            "median_ms": self.median,
            "p90_ms": self.p90,
            "p99_ms": self.p99,
            "max_ms": self.max,
            "stdev_ms": self.stdev,
            "cv": self.cv,
            "noisy": self.noisy,
            "throughput_per_s": self.throughput(batch),
        }


def _warm(fn: Callable[[], object], warmup: int, warmup_time_s: float) -> tuple[int, float]:
    runs, start = 0, time.perf_counter()
    while runs < warmup or time.perf_counter() - start < warmup_time_s:
        fn()
        runs += 1
    return runs, time.perf_counter() - start


def _loop(step: Callable[[], float], iterations: int, duration_s: float, max_iterations: int | None,
          progress: Callable[[int], None] | None) -> tuple[list[float], float]:
    if iterations < 1 and duration_s <= 0:
        raise ValueError("need iterations >= 1 or duration_s > 0")
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max(iterations, 1) or time.perf_counter() - start < duration_s:
        samples.append(step())
        if progress:
            progress(len(samples))
        if max_iterations and len(samples) >= max_iterations:
            break
    return samples, time.perf_counter() - start


def measure(
    fn: Callable[[], object],
    warmup: int = 3,
    iterations: int = 20,
    *,
    warmup_time_s: float = 0.0,
    duration_s: float | None = None,
    max_iterations: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Latency:
    """Host-clock latency of ``fn``.

    Warm-up: at least ``warmup`` calls and at least ``warmup_time_s`` seconds. Timed run: at least
    ``iterations`` calls and at least ``duration_s`` seconds, capped by
    ``max_iterations``. ``progress(n)`` is called after each timed call.
    """
    runs, warm_s = _warm(fn, warmup, warmup_time_s)

    def step() -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    samples, total = _loop(step, iterations, duration_s or 0.0, max_iterations, progress)
    return Latency(samples, runs, warm_s, total, "host")


def measure_cuda(
    fn: Callable[[], object],
    warmup: int = 3,
    iterations: int = 20,
    *,
    warmup_time_s: float = 0.0,
    duration_s: float = 0.0,
    max_iterations: int | None = None,
    progress: Callable[[int], None] | None = None,
    stream=None,
) -> Latency:
    """CUDA-event latency of ``fn`` (work enqueued on ``stream``, default: torch's current stream).

    Each sample is the GPU time between an event recorded before and after ``fn``; the host waits
    for the end event so samples do not overlap (like trtexec without --useSpinWait tricks).
    """
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("measure_cuda needs a CUDA device (torch.cuda.is_available() is False)")
    stream = stream or torch.cuda.current_stream()

    def warm_fn() -> None:
        fn()
        stream.synchronize()

    runs, warm_s = _warm(warm_fn, warmup, warmup_time_s)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def step() -> float:
        begin.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        return float(begin.elapsed_time(end))

    samples, total = _loop(step, iterations, duration_s, max_iterations, progress)
    return Latency(samples, runs, warm_s, total, "cuda-event")
