"""gpu_check.py's TensorRT part: every zoo model's engine built through spp-deploy's Polygraphy path
(standard and plugin mode; fp32, fp16 from an fp16 export, and on TensorRT 10 the weakly typed FP16
flag build of the fp32 file) and run at legal sizes against ONNX Runtime CPU on the same file; the
window-SPP head with R = 0 and R = 2000 windows. A case that cannot run here (no TensorRT, no plugin
library, fp16 not legal on this TensorRT) is recorded as skipped with the reason, never as passed."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

MODES = ("standard", "plugin")
PRECISIONS = ("fp32", "fp16-file", "fp16-flag")  # fp16-flag: TensorRT 10 weak typing + BuilderFlag.FP16
WINDOW_COUNTS = (0, 2000)
WINDOW_CHANNELS, WINDOW_STRIDE = 16, 16.0
SIZES_PER_MODEL = 3  # the example shape and parity_sizes' first legal ones


@dataclass
class TrtCase:
    model: str  # a zoo name, or "window-spp"
    mode: str
    precision: str

    @property
    def label(self) -> str:
        return f"{self.model} {self.mode} {self.precision}"

    def describe(self) -> str:
        if self.model == "window-spp":
            return f"{self.label}: head engine, windows R = {' and R = '.join(map(str, WINDOW_COUNTS))}, vs ORT CPU"
        return f"{self.label}: engine, {SIZES_PER_MODEL} legal sizes, vs ORT CPU"


@dataclass
class TrtRow:
    case: str
    shape: str
    status: str  # ok | failed | skipped | error
    max_abs: float = 0.0
    max_rel: float = 0.0
    nan_mismatch: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")


def plan(names: list[str] | None = None) -> list[TrtCase]:
    """What ``run`` would build and compare, in order."""
    from spp_deploy.sources import zoo

    cases = [TrtCase(n, m, p) for n in (names or zoo.zoo_names()) for m in MODES for p in PRECISIONS]
    return cases + [TrtCase("window-spp", m, "fp32") for m in MODES]


def _tolerance(precision: str) -> tuple[float, float]:
    from spp_deploy.runtime.validate import DEFAULT_TOLERANCES

    return DEFAULT_TOLERANCES["fp16" if precision.startswith("fp16") else "trt-fp32"]


def _compare(case: TrtCase, shape: str, out: dict, ref: dict) -> TrtRow:
    from spp_deploy.runtime.compare import compare_arrays

    rtol, atol = _tolerance(case.precision)
    worst = [compare_arrays(out[n], ref[n], rtol, atol) for n in ref]
    bad = [c for c in worst if not c.passed]
    c = max(worst, key=lambda c: c.max_abs)
    return TrtRow(case.label, shape, "failed" if bad else "ok", c.max_abs, c.max_rel, c.nan_mismatch,
                  f"rtol {rtol:g}, atol {atol:g}")


def _spec(name: str, dims) -> str:
    return f"{name}:{'x'.join(map(str, dims))}"


def _zoo_case(case: TrtCase, work: Path, plugin: Path | None) -> list[TrtRow]:
    import numpy as np
    import onnx
    import torch

    from spp_deploy import export_onnx
    from spp_deploy.sources import zoo
    from spp_deploy.runtime.parity import parity_sizes
    from spp_deploy.runtime.ort_runner import OrtRunner
    from spp_deploy.runtime.trt.build import build_engine
    from spp_deploy.runtime.trt.runner import TrtRunner

    entry, model = zoo.get_entry(case.model), zoo.create(case.model)
    example = torch.randn(*entry.input_shape)
    sizes = [tuple(entry.input_shape)] + [tuple(s) for s in parity_sizes(model, example, SIZES_PER_MODEL)[0]]
    sizes = list(dict.fromkeys(sizes))[:SIZES_PER_MODEL]
    path = work / f"{case.model}-{case.mode}-{case.precision}.onnx"
    half = case.precision == "fp16-file"
    export_onnx(model, example, path, spp_impl=case.mode, precision="fp16" if half else "fp32", check_parity=False)
    lo = tuple(min(s[i] for s in sizes) for i in range(4))
    hi = tuple(max(s[i] for s in sizes) for i in range(4))
    name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    engine = build_engine(path, path.with_suffix(".engine"), min_shape=_spec(name, lo),
                          opt_shape=_spec(name, sizes[0]), max_shape=_spec(name, hi),
                          fp16=case.precision == "fp16-flag", plugin=plugin, use_cache=False).path
    rows, rng = [], np.random.default_rng(0)
    with TrtRunner(engine, plugin=plugin) as trt_run, OrtRunner(path, "cpu", plugin=plugin) as ort_run:
        for s in sizes:
            x = rng.standard_normal(s).astype(np.float16 if half else np.float32)
            rows.append(_compare(case, "x".join(map(str, s)), trt_run.infer({name: x}), ort_run.infer({name: x})))
    return rows


def _window_case(case: TrtCase, work: Path, plugin: Path | None) -> list[TrtRow]:
    import numpy as np

    from spp_deploy.checked_export import export_window_model
    from spp_deploy.ops.window_pyramid import parity_windows
    from spp_deploy.runtime.ort_runner import OrtRunner
    from spp_deploy.runtime.trt.build import build_engine
    from spp_deploy.runtime.trt.runner import TrtRunner
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    C, path = WINDOW_CHANNELS, work / f"window-{case.mode}.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=C, stride=WINDOW_STRIDE, spp_impl=case.mode,
                        check_parity=False, windows_dtype="float32")
    top = max(WINDOW_COUNTS)
    engine = build_engine(path, path.with_suffix(".engine"),
                          min_shape=f"features:1x{C}x1x1,windows:0x5", opt_shape=f"features:1x{C}x40x50,windows:300x5",
                          max_shape=f"features:2x{C}x64x64,windows:{top}x5", plugin=plugin, use_cache=False).path
    rows, rng = [], np.random.default_rng(0)
    with TrtRunner(engine, plugin=plugin) as trt_run, OrtRunner(path, "cpu", plugin=plugin) as ort_run:
        for R in WINDOW_COUNTS:
            feed = {"features": rng.standard_normal((2, C, 41, 55)).astype(np.float32),
                    "windows": parity_windows(rng, R, 2, 41, 55, WINDOW_STRIDE).astype(np.float32)}
            rows.append(_compare(case, f"2x{C}x41x55, R={R}", trt_run.infer(feed), ort_run.infer(feed)))
    return rows


def _skip_reason(case: TrtCase, trt, plugin: Path | None) -> str | None:
    if trt is None:
        return "TensorRT is not installed"
    if case.mode == "plugin" and plugin is None:
        return "no plugin library (spp-deploy plugin build, or --plugin)"
    if case.precision == "fp16-flag" and not hasattr(trt.BuilderFlag, "FP16"):
        return f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed only): fp16-file covers it"
    return None


def run(cases: list[TrtCase], plugin: Path | None, log=print) -> list[TrtRow]:
    """Every case in turn; an exception is that case's error row, and the next case still runs."""
    from spp_deploy.util.errors import UserError
    from spp_deploy.native.library import find_plugin_library
    from spp_deploy.runtime.trt.common import import_tensorrt

    try:
        trt = import_tensorrt("gpu_check.py's TensorRT part")
    except UserError:
        trt = None
    plugin = plugin or find_plugin_library()
    rows: list[TrtRow] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-trt-") as tmp:
        for case in cases:
            why = _skip_reason(case, trt, plugin)
            if why:
                rows.append(TrtRow(case.label, "-", "skipped", detail=why))
                continue
            log(f"trt: {case.label} ...")
            try:
                run_case = _window_case if case.model == "window-spp" else _zoo_case
                rows += run_case(case, Path(tmp), plugin)
            except Exception as e:  # noqa: BLE001 - recorded, the other cases still run
                lines = [ln for ln in str(e).strip().splitlines() if ln.strip()] or [""]
                rows.append(TrtRow(case.label, "-", "error", detail=f"{type(e).__name__}: {lines[-1]}"))
    return rows
