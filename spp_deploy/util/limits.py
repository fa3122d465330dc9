"""What one command may ask of this machine: thread counts, timed runs and memory. Past these a
request starves other processes (threads), never ends (iterations, seconds) or dies in the
allocator after the model has loaded, so it is refused up front in one line."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Mapping

from .errors import UserError

MAX_ITERATIONS = 1_000_000
MAX_SECONDS = 24 * 3600.0
THREADS_PER_CORE = 4  # oversubscription beyond this only adds contention


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def max_threads() -> int:
    return THREADS_PER_CORE * usable_cores()


def check_count(value, name: str, minimum: int = 1, maximum: int = MAX_ITERATIONS, why: str = "") -> None:
    """A whole number in [minimum, maximum] (None: not given); ``name`` is how the caller calls it."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise UserError(f"{name} must be {'> 0' if minimum == 1 else f'>= {minimum}'}, got {value}")
    if value > maximum:
        raise UserError(f"{name} must be <= {maximum}{why}, got {value}")


def check_seconds(value, name: str, maximum: float = MAX_SECONDS) -> None:
    """A finite number of seconds in (0, maximum] (None: not given)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be > 0 and finite, got {value!r}")
    if value > maximum:
        raise UserError(f"{name} must be <= {maximum:g} s, got {value:g}")


TIMING_NAMES = {k: k for k in ("iterations", "duration_s", "warmup", "warmup_time_s", "threads")}


def check_timing(iterations=None, duration_s=None, warmup=None, warmup_time_s=None, threads=None,
                 names: Mapping[str, str] = TIMING_NAMES) -> None:
    """Bench settings within bounds; ``names`` maps each setting to what the caller calls it."""
    check_count(iterations, names["iterations"])
    check_seconds(duration_s, names["duration_s"])
    check_count(warmup, names["warmup"], minimum=0)
    check_seconds(warmup_time_s, names["warmup_time_s"])
    check_count(threads, names["threads"], maximum=max_threads(),
                why=f" ({THREADS_PER_CORE} x the {usable_cores()} usable CPU core(s))")


def _cgroup_limit() -> int | None:
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return None


def _available() -> int | None:
    """MemAvailable from /proc/meminfo: what can be allocated now without swapping (Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit() -> int | None:
    """Bytes this process can allocate now: the machine's available memory, physical memory, or
    the container's limit, whichever is lowest (None when none is known)."""
    found = [v for v in (physical_memory(), _cgroup_limit(), _available()) if v]
    return min(found) if found else None


def check_memory(needed: int, what: str, option: str | None = None) -> None:
    """Refuse ``what`` when it needs more than ``memory_limit()``: one line naming both sizes."""
    limit = memory_limit()
    if limit and needed > limit:
        raise UserError(f"{what} needs about {needed / 2**30:.3g} GiB, more than the memory available here "
                        f"({limit / 2**30:.3g} GiB)", option=option)
