"""``bench`` output: the trtexec-style performance summary table, JSON and CSV files."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..util.errors import UserError
from .core import BenchReport

CSV_FIELDS = ["backend", "transfers", "batch", "channels", "height", "width", "megapixels", "status", "reason",
              "threads", "iterations", "warmup_runs", "clock", "min_ms", "mean_ms", "median_ms", "p90_ms",
              "p99_ms", "max_ms", "stdev_ms", "cv", "noisy", "throughput_per_s"]


def _write(path: Path, text: str) -> None:
    from ..util.fileio import write_text

    try:
        write_text(path, text)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def to_json(report: BenchReport) -> str:
    return json.dumps(report.as_dict(), indent=2)


def to_csv(report: BenchReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in report.records:
        w.writerow(r.as_dict())
    return buf.getvalue()


def write_json(report: BenchReport, path: Path) -> None:
    _write(path, to_json(report) + "\n")


def write_csv(report: BenchReport, path: Path) -> None:
    _write(path, to_csv(report))


def _f(v: float) -> str:
    return f"{v:.3f}" if v < 100 else f"{v:.1f}"


def summary_table(report: BenchReport):
    """A rich Table: one row per (backend, shape[, copies]), like trtexec's performance summary."""
    from rich.table import Table

    m = report.machine
    title = (f"Performance summary: {report.model or report.onnx}  |  torch {m.get('torch')}, "
             f"onnxruntime {m.get('onnxruntime')}, {m.get('threads')} CPU thread(s)")
    cfg = report.config
    run = f"{cfg.iterations} iterations" + (f", >= {cfg.duration_s:g} s" if cfg.duration_s else "")
    warm = f"{cfg.warmup} runs" + (f", >= {cfg.warmup_time_s:g} s" if cfg.warmup_time_s else "")
    t = Table(title=title, caption=f"latency in ms per call (whole batch); warm-up {warm}; timed >= {run}; "
                                   "throughput = batch / mean latency", title_justify="left")
    for col in ("backend", "shape", "MPix", "thr", "iters", "min", "mean", "median", "p90", "p99", "max", "img/s", "CV"):
        t.add_column(col, justify="left" if col in ("backend", "shape") else "right", no_wrap=True)
    for r in report.records:
        shape = "x".join(map(str, r.shape))
        if r.status != "ok":
            t.add_row(r.label, shape, f"{r.megapixels:.3f}", str(r.threads or "-"), "-", *["-"] * 7,
                      "[yellow]skipped[/]", style="dim")
            continue
        s = r.stats
        cv = f"{s['cv']:.1%}" + (" [bold yellow]noisy[/]" if s["noisy"] else "")
        t.add_row(r.label, shape, f"{r.megapixels:.3f}", str(r.threads or "-"), str(s["iterations"]),
                  *(_f(s[k]) for k in ("min_ms", "mean_ms", "median_ms", "p90_ms", "p99_ms", "max_ms")),
                  f"{s['throughput_per_s']:.1f}", cv)
    return t


def print_summary(report: BenchReport, console=None) -> None:
    from rich.console import Console

    if console is None:
        console = Console(width=None if os.isatty(1) else 160, highlight=False)
    console.print(summary_table(report))
    for r in report.records:
        if r.status != "ok":
            console.print(f"skipped {r.label} {'x'.join(map(str, r.shape))}: {r.reason}", markup=False)
    for b, why in report.unavailable.items():
        console.print(f"unavailable backend {b}: {why}", markup=False)
