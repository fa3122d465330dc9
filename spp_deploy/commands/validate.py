"""``spp-deploy validate``: the PyTorch model against the ONNX file and/or TensorRT engine on the
chosen backends across a size sweep; PASSED/FAILED per size, backend and output; exit 1 on failure."""

from __future__ import annotations

import sys
from pathlib import Path

from ..util.errors import UserError
from ..options import ValidateOptions
from .args import add_force_arg, add_interop_args, add_json_arg, add_model_args, add_model_file_args, add_normalize_args
from .common import Interop, emit_json, json_output, load_model_from_args, loaded_inputs, require_backends
from .console import progress_enabled
from .option_groups import add_validate_options, validate_options

DEFAULT_SIZES = [(None, *s) if len(s) == 2 else s for s in ValidateOptions.sizes]  # old name: the library's default


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
    """The whole command but its JSON file: (exit code, report, extra JSON fields). Every bad
    option fails before the model loads."""
    from ..api import validate_config
    from ..runtime.validate import DEFAULT_SAMPLES

    backends = _backends(args)
    size_range = args.size_range
    options = validate_options(args, backends, default_sizes=not (size_range or args.images or args.load_inputs))
    if args.load_outputs and not args.load_inputs:
        raise UserError("--load-outputs compares saved outputs with PyTorch on the inputs they came from: "
                        "give those inputs with --load-inputs")
    io = Interop(args)
    images, loaded = _real_inputs(args)
    saved = None
    if args.load_outputs:
        from ..interop import read_outputs

        saved = read_outputs(args.load_outputs)
    require_backends(backends)  # before the model loads: a missing runtime fails at once
    model = load_model_from_args(args)
    channels = _channels(args, model)
    samples = (size_range.count or DEFAULT_SAMPLES) if size_range else 0
    cfg = validate_config(options, channels, args.onnx, args.engine, images, size_range, samples)
    report, seen = _sweep(args, model, cfg, backends, len(images), io)
    if saved is not None:
        from ..runtime.validate import saved_records

        refs = [(next(iter(f.values())), io.results[args.reference][i]) for i, f in enumerate(io.feeds)]
        for r in saved_records(cfg, saved, loaded, refs):
            print(format_record(r), flush=True)
            report.records.append(r)
    io.write()
    verdict = _print_summary(report)
    extra = {}
    if args.localize:
        found = seen.localize(model, cfg)
        if found is not None:
            print(found.describe())
            extra["localize"] = found.as_dict()
    return (0 if verdict == "PASSED" else 1), report, extra


def _backends(args) -> list[str]:
    """The backends to run (default: those the given files allow), each with the file it needs."""
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
    return backends


def _real_inputs(args) -> tuple[list, list]:
    """(every real input: --images then --load-inputs, just the --load-inputs ones) as (label,
    array); the second is what --load-outputs' iterations belong to."""
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
    return images, loaded


def _sweep(args, model, cfg, backends: list[str], n_images: int, io: Interop):
    """The sweep with a progress bar on stderr and each record printed as it comes: (report, the
    --localize replay)."""
    from ..runtime.validate import run_validation

    total = (len(cfg.shapes) + n_images) * len(backends)
    print(f"validate: {', '.join(backends)} vs {args.reference} ({args.model}), {len(cfg.shapes)} size(s)"
          f"{f' + {n_images} image(s)' if n_images else ''}, seed {args.seed}")
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
    return report, seen


def _print_summary(report) -> str:
    """Print the verdict line (counts and worst error, or that nothing was compared); return the verdict."""
    counts = report.counts()
    worst = max((r.comparison.max_rel for r in report.records if r.comparison and r.comparison.shape_ok), default=0.0)
    verdict = "PASSED" if report.passed else "FAILED"
    if report.compared():
        print(f"{verdict}: {counts['PASSED']} passed, {counts['FAILED']} failed, {counts['SKIPPED']} skipped "
              f"(worst max rel err {worst:.2e})")
    else:
        print(f"{verdict}: nothing was compared: all {counts['SKIPPED']} requested input(s) were skipped")
    return verdict


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
    if args.channels:  # ValidateOptions.channels
        return args.channels
    from ..api import input_channels

    return input_channels(model)


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare ONNX / TensorRT backends with PyTorch across input sizes")
    add_model_args(p)
    add_model_file_args(p)
    add_validate_options(p)
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
