"""``bench --plot``: median latency against megapixels, one line per backend (and batch size)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from ..util.errors import UserError
from ..util.extras import pip_install_hint
from .core import BenchReport


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except Exception as e:
        raise UserError(f"plotting needs matplotlib ({type(e).__name__}: {e}); "
                        f"install the plot extra: {pip_install_hint('plot')}") from None


def check_plot_path(path: str | os.PathLike) -> None:
    """Fail before the benchmark when matplotlib is missing or cannot write ``path``'s format
    (it infers the format from the suffix; no suffix: PNG)."""
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    fmt = _format(path)
    known = FigureCanvasBase.get_supported_filetypes()
    if fmt not in known:
        raise UserError(f"cannot write the plot {os.fspath(path)}: matplotlib has no {fmt!r} format "
                        f"(it writes {', '.join(sorted(known))})")


def _format(path: str | os.PathLike) -> str:
    return Path(path).suffix[1:].lower() or "png"


def plot_latency(report: BenchReport, path: Path) -> Path:
    """Write a PNG (or any format matplotlib infers from the suffix) and return its path."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    series: dict[tuple[str, int], list] = defaultdict(list)
    for r in report.measured:
        series[(r.label, r.batch)].append(r)
    if not series:
        raise UserError("nothing was measured: no plot to draw")
    labels = sorted({k[0] for k in series})
    batches = sorted({k[1] for k in series})
    colors = {lab: f"C{i % 10}" for i, lab in enumerate(labels)}
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    for (label, batch), recs in sorted(series.items()):
        recs.sort(key=lambda r: r.megapixels)
        x = [r.megapixels for r in recs]
        y = [r.stats["median_ms"] for r in recs]
        lo = [r.stats["min_ms"] for r in recs]
        hi = [r.stats["p90_ms"] for r in recs]
        bi = batches.index(batch)
        name = label + (f", batch {batch}" if len(batches) > 1 else "")
        ax.plot(x, y, styles[bi % 4], marker=markers[bi % 4], color=colors[label], label=name, linewidth=1.8)
        ax.fill_between(x, lo, hi, color=colors[label], alpha=0.15, linewidth=0)
    m = report.machine
    ax.set_xlabel("Input size (megapixels per image, H × W / 10⁶)", fontsize=11)
    ax.set_ylabel("Latency per call (ms, median; band: min to p90)", fontsize=11)
    ax.set_title(f"{report.model or report.onnx}: latency vs input size\n"
                 f"torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, {m.get('threads')} CPU thread(s)",
                 fontsize=11)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    from ..util.fileio import atomic_write

    fmt = _format(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot write the plot {path}: {e}") from None
    finally:
        plt.close(fig)
    return Path(path)
