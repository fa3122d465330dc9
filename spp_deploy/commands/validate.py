"""``spp-deploy validate``: the PyTorch model against the ONNX file and/or TensorRT engine on the
chosen backends across a size sweep; PASSED/FAILED per size, backend and output; exit 1 on failure."""

from __future__ import annotations

import sys
from pathlib import Path

from ..util.constants import BACKENDS
from ..util.errors import UserError
from .args import (add_backends_arg, add_interop_args, add_force_arg, add_json_arg, add_model_args, add_model_file_args,
                   add_normalize_args, add_seed_arg, add_sweep_args, positive_int, value_type)
from .console import progress_enabled
from .common import Interop, emit_json, json_output, load_model_from_args, loaded_inputs, require_backends

DEFAULT_SIZES = [(None, 64, 64), (None, 131, 517), (2, 224, 224)]


def _fmt_idx(idx) -> str:
    return "(" + ",".join(map(str, idx)) + ")"


def format_record(r) -> str:
    shape = "x".join(map(str, r.shape))
    head = f"{r.status:7} {r.backend:10} {shape:>16}"
    if r.label:
        head += f" [{r.label}]"
    if r.skipped is not None:
        return f"{head}  skipped: {r.skipped}"
    if r.error is not None:
        return f"{head}  error: {r.error}"
    c = r.comparison
    if not c.shape_ok:
        return f"{head}  {r.output}: output shape differs from PyTorch"
    s = (f"{head}  {r.output}: max abs {c.max_abs:.2e} at {_fmt_idx(c.max_abs_index)}  max rel {c.max_rel:.2e}  "
         f"mean abs {c.mean_abs:.2e}  cos {c.cosine:.7f}")
    if r.top1 is not None:
        s += f"  top-1 {100 * r.top1:.0f}%"
    if c.nan_mismatch:
        s += f"  NaN mismatches {c.nan_mismatch}"
    if not r.passed:
        s += f"  (limits atol {r.atol:g} / rtol {r.rtol:g})"
    return s


def run(args) -> int:
    json_path, human = json_output(args)
    with human:
        code, report, extra = _validate(args)
    emit_json(json_path, {**report.as_dict(), **extra})
    return code


def _validate(args):
    from ..runtime.validate import DEFAULT_SAMPLES, ValidateConfig, run_validation, sweep_shapes

    default = "ort-cpu" + (",trt" if args.engine else "") if args.onnx else ("trt" if args.engine else "")
    if args.backends is None and not default:
        raise UserError("nothing to validate: give --onnx and/or --engine (or --backends torch-fp64)")
    backends = args.backends or default.split(",")
    if any(b.startswith("ort-") for b in backends) and not args.onnx:
        raise UserError("ONNX Runtime backends need --onnx")
    if "trt" in backends and not args.engine:
        raise UserError("backend trt needs --engine (build one with `spp-deploy build`)")
    for label, p in (("--onnx", args.onnx), ("--engine", args.engine)):
        if p and not Path(p).is_file():
            raise UserError(f"{label} file not found: {p}")
    sizes, size_range = args.sizes, args.size_range
    if not sizes and not size_range and not args.images and not args.load_inputs:
        sizes = DEFAULT_SIZES
    if args.load_outputs and not args.load_inputs:
        raise UserError("--load-outputs compares saved outputs with PyTorch on the inputs they came from: "
                        "give those inputs with --load-inputs")
    io = Interop(args)
    images = []
    if args.images is not None:
        from ..util.inputs import load_input

        files = [f.strip() for f in args.images.split(",")]
        if not all(files):
            raise UserError(f"bad --images {args.images!r}: give image or .npy files, comma separated")
        for f in files:
            images.append((Path(f).name, load_input(f, args.mean, args.std)))
    loaded = []
    if args.load_inputs:
        import numpy as np

        loaded = [(label, np.asarray(arr, dtype=np.float32)) for label, arr in loaded_inputs(args.load_inputs)]
        images += loaded
    saved = None
    if args.load_outputs:
        from ..interop import read_outputs

        saved = read_outputs(args.load_outputs)
    require_backends(backends)  # before the model loads: a missing runtime fails at once
    model = load_model_from_args(args)
    channels = _channels(args, model)
    samples = (size_range.count or DEFAULT_SAMPLES) if size_range else 0
    shapes = sweep_shapes(channels, sizes, size_range, samples, args.batch or [], args.seed)
    cfg = ValidateConfig(shapes=shapes, backends=backends, onnx=args.onnx, engine=args.engine, plugin=args.plugin,
                         rtol=args.rtol or {}, atol=args.atol or {}, seed=args.seed, reference=args.reference,
                         images=images)
    total = (len(shapes) + len(images)) * len(backends)
    print(f"validate: {', '.join(backends)} vs {args.reference} ({args.model}), {len(shapes)} size(s)"
          f"{f' + {len(images)} image(s)' if images else ''}, seed {args.seed}")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err_console = Console(file=sys.stderr)
    with Progress(TextColumn("validating"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True,
                  disable=not progress_enabled()) as progress:
        task = progress.add_task("validate", total=total)
        seen = Replay()

        def on_record(r) -> None:
            print(format_record(r), flush=True)
            seen.record(r)

        def on_infer(backend: str, feed: dict, outs: dict) -> None:
            seen.infer(backend, feed, outs)
            io.add(backend, feed if backend == args.reference else None, outs)

        report = run_validation(model, cfg, on_record=on_record, on_step=lambda: progress.advance(task),
                                on_infer=on_infer)
    if saved is not None:
        from ..runtime.validate import saved_records

        refs = [(next(iter(f.values())), io.results[args.reference][i]) for i, f in enumerate(io.feeds)]
        for r in saved_records(cfg, saved, loaded, refs):
            print(format_record(r), flush=True)
            report.records.append(r)
    io.write()
    counts = report.counts()
    worst = max((r.comparison.max_rel for r in report.records if r.comparison and r.comparison.shape_ok), default=0.0)
    verdict = "PASSED" if report.passed else "FAILED"
    if report.compared():
        print(f"{verdict}: {counts['PASSED']} passed, {counts['FAILED']} failed, {counts['SKIPPED']} skipped "
              f"(worst max rel err {worst:.2e})")
    else:
        print(f"{verdict}: nothing was compared: all {counts['SKIPPED']} requested input(s) were skipped")
    extra = {}
    if args.localize:
        found = seen.localize(model, cfg)
        if found is not None:
            print(found.describe())
            extra["localize"] = found.as_dict()
    return (0 if verdict == "PASSED" else 1), report, extra


class Replay:
    """What ``--localize`` replays: the input of the first failing ONNX Runtime or TensorRT
    comparison (else the first such input, to show that no module differs)."""

    def __init__(self) -> None:
        self.last = None  # (backend, feed) of the latest inference
        self.first = None  # (record, feed) of the first ONNX Runtime / TensorRT comparison
        self.failing = None  # (record, feed) of the first failing one

    def infer(self, backend: str, feed: dict, outputs: dict) -> None:
        self.last = (backend, feed)

    def record(self, r) -> None:
        localizable = r.backend.startswith("ort-") or r.backend == "trt"
        if r.skipped is not None or not localizable or self.last is None:
            return
        if self.last[0] != r.backend:
            return
        if self.first is None:
            self.first = (r, self.last[1])
        if self.failing is None and not r.passed:
            self.failing = (r, self.last[1])

    def localize(self, model, cfg):
        """The localization on the chosen input, or None (said why) when it cannot run."""
        chosen = self.failing or self.first
        if chosen is None:
            print("localize: no ONNX Runtime or TensorRT comparison ran (localizing needs an ort-* or trt backend)")
            return None
        if cfg.onnx is None:
            print("localize: the module map comes from the engine's ONNX file: give it with --onnx")
            return None
        import numpy as np

        from ..runtime.localize import localize

        r, feed = chosen
        (x,) = feed.values()
        return localize(model, cfg.onnx, np.asarray(x, dtype=np.float32), backend=r.backend, rtol=r.rtol,
                        atol=r.atol, plugin=cfg.plugin, threads=cfg.threads, engine=cfg.engine)


def _channels(args, model) -> int:
    if args.model.startswith("zoo:"):
        from ..sources.zoo import get_entry

        return get_entry(args.model[4:]).input_shape[1]
    if args.channels:
        return args.channels
    from ..api import input_channels

    return input_channels(model)


def _tolerances(text: str):
    from ..runtime.validate import parse_tolerances

    return parse_tolerances(text)


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare ONNX / TensorRT backends with PyTorch across input sizes")
    add_model_args(p)
    add_model_file_args(p)
    add_backends_arg(p, BACKENDS, None, "ort-cpu with --onnx, plus trt with --engine")
    p.add_argument("--reference", default="torch", choices=["torch", "torch-fp64"], help="reference backend")
    add_sweep_args(p, "sizes; B missing: each --batch size (default 64x64,131x517,2x224x224)",
                   "COUNT random sizes (default 6), both ends included, square or not (seeded)",
                   "batch sizes for sizes without an explicit B (default 1)")
    p.add_argument("--channels", type=positive_int,
                   help="input channels (models outside the zoo; default: first Conv2d)")
    add_seed_arg(p, "random input and size-range")
    tol = value_type(_tolerances, "tolerance")
    p.add_argument("--atol", type=tol, help="absolute tolerance, or per output: output:1e-5,...")
    p.add_argument("--rtol", type=tol, help="tolerance relative to the reference's largest magnitude, or per output")
    p.add_argument("--images", help="real inputs: image files or .npy, comma separated (run at native size)")
    add_normalize_args(p, " for --images")
    add_interop_args(p, "real inputs: a Polygraphy inputs file (one input per iteration), run as given",
                     "compare the outputs saved in this Polygraphy RunResults file (each runner's iteration i) "
                     "with PyTorch on --load-inputs' iteration i (default tolerances: TensorRT fp32's)")
    p.add_argument("--localize", action="store_true",
                   help="on the first failing ONNX Runtime or TensorRT input, compare every module's output and "
                        "name the first (in execution order) that differs beyond tolerance (TensorRT: a debug "
                        "engine from --onnx with those tensors marked as outputs)")
    add_json_arg(p, "the full report")
    add_force_arg(p)
    p.set_defaults(func=run)
