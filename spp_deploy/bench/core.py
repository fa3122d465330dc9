"""The measurement loop: every (backend, shape[, transfer mode]) timed with the shared timer."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..util.errors import UserError, first_line
from ..runtime.timing import NOISY_CV, measure, measure_cuda
from ..runtime.backends import GPU_BACKENDS, REGISTRY
from .timed import REMOTE_BACKENDS, Backend, BackendUnavailable, unavailable_reason
from .workload import Shape, shape_error


@dataclass
class BenchConfig:
    backends: Sequence[str]
    shapes: Sequence[Shape]
    warmup: int = 3
    warmup_time_s: float = 0.0
    iterations: int = 20
    duration_s: float = 0.0
    threads: int | None = None
    strict: bool = False
    cuda_graph: bool = False
    seed: int = 0
    engine: str | None = None  # trt: a prebuilt engine (else one is built from the ONNX file)
    plugin: str | None = None  # the SPP TensorRT plugin library (plugin-mode files / engines)
    triton_url: str | None = None  # triton-http (host:port; default localhost:8000)
    triton_grpc_url: str | None = None  # triton-grpc (default: the HTTP host, port 8001)
    triton_model: str | None = None  # the served model (default: the server's only ready model)
    inputs: Mapping[Shape, np.ndarray] | None = None  # the data to time per shape (loaded inputs); else random
    keep_outputs: bool = False  # one more, untimed run per (backend, shape): its outputs in BenchReport.outputs


@dataclass
class BenchRecord:
    backend: str
    shape: Shape
    status: str  # "ok" or "skipped"
    reason: str | None = None  # why skipped; for "ok", a note on how it was timed (e.g. no CUDA graph)
    transfers: str | None = None  # GPU: "with" / "without" host<->device copies
    threads: int | None = None
    stats: dict = field(default_factory=dict)  # Latency.summary(batch)

    @property
    def batch(self) -> int:
        return self.shape[0]

    @property
    def megapixels(self) -> float:
        """Pixels per image (H x W) in millions."""
        return self.shape[2] * self.shape[3] / 1e6

    @property
    def label(self) -> str:
        return self.backend + (f" ({self.transfers} copies)" if self.transfers else "")

    def as_dict(self) -> dict:
        b, c, h, w = self.shape
        d = {"backend": self.backend, "transfers": self.transfers, "shape": list(self.shape), "batch": b,
             "channels": c, "height": h, "width": w, "megapixels": self.megapixels, "status": self.status,
             "reason": self.reason, "threads": self.threads}
        d.update(self.stats)
        return d


@dataclass
class BenchReport:
    model: str | None
    onnx: str | None
    config: BenchConfig
    records: list[BenchRecord] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # backend -> why
    machine: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict, repr=False)  # shape -> the array timed (not in the JSON)
    outputs: dict = field(default_factory=dict, repr=False)  # backend -> {shape: {output: array}} (keep_outputs)

    @property
    def measured(self) -> list[BenchRecord]:
        return [r for r in self.records if r.status == "ok"]

    def as_dict(self) -> dict:
        cfg = asdict(self.config)
        cfg.pop("inputs")  # data, not configuration
        cfg["shapes"] = [list(s) for s in self.config.shapes]
        cfg["backends"] = list(self.config.backends)
        return {
            "model": self.model,
            "onnx": self.onnx,
            "machine": self.machine,
            "config": cfg,
            "noisy_cv_threshold": NOISY_CV,
            "unavailable_backends": [{"backend": b, "reason": r} for b, r in self.unavailable.items()],
            "results": [r.as_dict() for r in self.records],
        }


def machine_info(threads: int | None) -> dict:
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": threads}
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
    except Exception:
        info["onnxruntime"] = None
    try:
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return info


class _Progress:
    """A rich progress bar on stderr (combinations done; iterations of the current one)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.enabled, self.total = enabled, total
        self._p = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._p.__enter__()
            self._task = self._p.add_task("bench", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)

    def start(self, text: str) -> Callable[[int], None] | None:
        if self._p is None:
            return None
        self._p.update(self._task, description=text)

        def tick(n: int) -> None:
            if n % 5 == 0:
                self._p.update(self._task, description=f"{text}  iter {n}")

        return tick

    def advance(self) -> None:
        if self._p is not None:
            self._p.advance(self._task)


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def run_bench(
    config: BenchConfig,
    model=None,
    onnx_path: Path | None = None,
    model_name: str | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    workdir: Path | None = None,
) -> BenchReport:
    """Time every (backend, shape). Unavailable backends and shapes the model cannot take are
    recorded as skipped with the reason (``UserError`` instead under ``config.strict``)."""
    import torch

    from ..util.limits import check_timing

    check_timing(config.iterations, config.duration_s or None, config.warmup, config.warmup_time_s or None,
                 config.threads)

    warn = warn or (lambda msg: None)
    threads = config.threads or torch.get_num_threads()
    report = BenchReport(model_name, str(onnx_path) if onnx_path else None, config, machine=machine_info(threads))
    usable = _usable_backends(config, model, onnx_path, report, warn)
    legal, shape_skips = _legal_shapes(config, model, onnx_path, warn)
    for s, why in shape_skips.items():
        for b in usable:
            report.records.append(BenchRecord(b, s, "skipped", f"the model cannot take this shape: {why}"))
    if not usable:
        raise UserError("no backend can run here: " + "; ".join(f"{b}: {r}" for b, r in report.unavailable.items()))
    if not legal:
        raise UserError("the model cannot take any of the requested shapes: "
                        + "; ".join(f"{_shape_text(s)}: {r}" for s, r in shape_skips.items()))

    if model is not None and any(REGISTRY[b].needs == "model" for b in usable):
        from ..sources.outputs import model_output_names

        model_output_names(model, torch.zeros(1, *legal[0][1:]))  # a non-tensor output is refused, not timed
    rng = np.random.default_rng(config.seed)
    given = config.inputs or {}
    report.inputs = {s: np.asarray(given[s], dtype=np.float32) if s in given
                     else rng.standard_normal(s, dtype=np.float32) for s in legal}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _Progress(len(usable) * len(legal), progress) as bar:
            for b in usable:
                _time_backend(b, config, model, onnx_path, threads, legal, workdir, report, bar, warn)
    finally:
        torch.set_num_threads(old_threads)
    if all(b in report.unavailable for b in usable):  # each failed to open (a server down, an engine refused)
        raise UserError("no backend could run: " + "; ".join(f"{b}: {report.unavailable[b]}" for b in usable))
    return report


def _skip_backend(b: str, why: str, config: BenchConfig, report: BenchReport, warn: Callable[[str], None]) -> None:
    """Record ``b`` as unavailable (``UserError`` instead under ``config.strict``)."""
    if config.strict:
        raise UserError(f"backend {b} is not available: {why}")
    report.unavailable[b] = why
    warn(f"skipping backend {b}: {why}")


def _usable_backends(config: BenchConfig, model, onnx_path: Path | None, report: BenchReport,
                     warn: Callable[[str], None]) -> list[str]:
    """The backends that can run here with what was given (the registry says what each needs)."""
    usable = []
    for b in config.backends:
        needs = REGISTRY[b].needs
        if needs == "model" and model is None:
            why = "needs the PyTorch model"
        elif needs == "engine" and onnx_path is None and config.engine is None:
            why = "needs an ONNX file or an engine"
        elif needs == "onnx" and onnx_path is None:
            why = "needs an ONNX file"
        else:
            why = unavailable_reason(b)
        if why:
            _skip_backend(b, why, config, report, warn)
        else:
            usable.append(b)
    return usable


def _legal_shapes(config: BenchConfig, model, onnx_path: Path | None,
                  warn: Callable[[str], None]) -> tuple[list[Shape], dict[Shape, str]]:
    """(shapes the model and file can take, {shape: why not} for the others)."""
    onnx_dims = None
    if onnx_path is not None:
        from .workload import static_dims

        onnx_dims = static_dims(onnx_path)
    cache: dict = {}
    legal: list[Shape] = []
    skips: dict[Shape, str] = {}
    for s in config.shapes:
        why = shape_error(s, model, onnx_dims, cache)
        if why:
            if config.strict:
                raise UserError(f"the model cannot take input {_shape_text(s)}: {why}")
            skips[s] = why
            warn(f"skipping shape {_shape_text(s)}: the model cannot take it: {why}")
        else:
            legal.append(s)
    return legal, skips


def _time_backend(b: str, config: BenchConfig, model, onnx_path: Path | None, threads: int, legal: list[Shape],
                  workdir: Path | None, report: BenchReport, bar: _Progress, warn: Callable[[str], None]) -> None:
    """Open backend ``b`` once and time it at every legal shape (a backend that fails to open is
    recorded as unavailable)."""
    try:
        backend = Backend(b, model, onnx_path, threads, config.cuda_graph,
                          Path(config.engine) if config.engine else None,
                          Path(config.plugin) if config.plugin else None, legal,
                          workdir, {"url": config.triton_url, "grpc_url": config.triton_grpc_url,
                                    "model": config.triton_model}).__enter__()
    except BackendUnavailable as e:
        _skip_backend(b, str(e), config, report, warn)
        for _ in legal:
            bar.advance()
        return
    try:
        for s in legal:
            report.records += _bench_one(backend, s, report.inputs[s], config, threads, bar, warn)
            if config.keep_outputs and report.records[-1].status == "ok":
                report.outputs.setdefault(b, {})[s] = backend.outputs(report.inputs[s])
            bar.advance()
    finally:
        backend.__exit__(None, None, None)


def _bench_one(backend: Backend, shape: Shape, x: np.ndarray, config: BenchConfig, threads: int, bar: _Progress,
               warn: Callable[[str], None]) -> list[BenchRecord]:
    name, text = backend.name, _shape_text(shape)
    rec_threads = None if name in GPU_BACKENDS or name in REMOTE_BACKENDS else threads
    out: list[BenchRecord] = []
    variants = backend.variants(x)  # lazily: a GPU variant may rebind buffers the previous one used
    while True:
        try:
            v = next(variants, None)
            if v is None:
                break
            v.fn()  # one untimed call: a shape the backend rejects is skipped, not timed
        except Exception as e:
            why = first_line(e)
            if config.strict:
                raise UserError(f"{name} cannot run input {text}: {why}") from None
            warn(f"skipping {name} at {text}: {why}")
            out.append(BenchRecord(name, shape, "skipped", f"{name} failed at this shape: {why}", threads=rec_threads))
            break
        tick = bar.start(f"{name} {text}" + (f" ({v.transfers} copies)" if v.transfers else ""))
        timer = measure_cuda if v.clock == "cuda-event" else measure
        extra = {"stream": v.stream} if v.clock == "cuda-event" and v.stream is not None else {}
        lat = timer(v.fn, config.warmup, config.iterations, warmup_time_s=config.warmup_time_s,
                    duration_s=config.duration_s, progress=tick, **extra)
        if v.note:
            warn(f"{name} at {text}: {v.note}")
        rec = BenchRecord(name, shape, "ok", v.note, v.transfers, rec_threads, lat.summary(shape[0]))
        if lat.noisy:
            warn(f"{rec.label} at {text} is noisy: CV {lat.cv:.0%} > {NOISY_CV:.0%} "
                 "(close other programs, or measure longer: more iterations, duration or warm-up)")
        out.append(rec)
    return out

