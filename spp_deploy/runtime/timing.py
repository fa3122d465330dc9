"""Latency measurement shared by the demo, ``bench`` and the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Latency:
    samples_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)

    @property
    def min(self) -> float:
        return min(self.samples_ms)

    def percentile(self, q: float) -> float:
        s = sorted(self.samples_ms)
        return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]

    @property
    def cv(self) -> float:
        """Coefficient of variation: above ~0.1 the numbers are noisy."""
        return statistics.pstdev(self.samples_ms) / self.mean if self.mean > 0 else 0.0


def measure(fn: Callable[[], object], warmup: int = 3, iterations: int = 20, min_time_s: float = 0.0) -> Latency:
    """Run ``fn`` ``warmup`` times, then at least ``iterations`` times (and ``min_time_s``)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < iterations or time.perf_counter() - start < min_time_s:
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return Latency(samples)
