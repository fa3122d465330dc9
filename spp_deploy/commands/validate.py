"""``spp-deploy validate``: the PyTorch model against the ONNX file and/or TensorRT engine on the
chosen backends across a size sweep; PASSED/FAILED per size, backend and output; exit 1 on failure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import UserError
from .common import add_force_arg, add_model_args, load_model_from_args, output_path, parse_sizes, require_backends


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
    from ..runtime.backends import parse_backends
    from ..runtime.validate import ValidateConfig, parse_range, parse_tolerances, run_validation, sweep_shapes

    default = "ort-cpu" + (",trt" if args.engine else "") if args.onnx else ("trt" if args.engine else "")
    if args.backends is None and not default:
        raise UserError("nothing to validate: give --onnx and/or --engine (or --backends torch-fp64)")
    backends = parse_backends(default if args.backends is None else args.backends)
    if any(b.startswith("ort-") for b in backends) and not args.onnx:
        raise UserError("ONNX Runtime backends need --onnx")
    if "trt" in backends and not args.engine:
        raise UserError("backend trt needs --engine (build one with `spp-deploy build`)")
    for label, p in (("--onnx", args.onnx), ("--engine", args.engine)):
        if p and not Path(p).is_file():
            raise UserError(f"{label} file not found: {p}")
    json_path = output_path(args, args.json, "--json file")
    sizes = parse_sizes(args.sizes)
    rng_ = parse_range(args.size_range) if args.size_range else None
    if not sizes and not rng_ and not args.images:
        sizes = [(1, 64, 64), (1, 131, 517), (2, 224, 224)]
    try:
        batches = [int(b) for b in args.batch.split(",")] if args.batch else []
    except ValueError:
        raise UserError(f"bad --batch {args.batch!r}: expected integers like 1,2") from None
    if any(b < 1 for b in batches):
        raise UserError("--batch sizes must be >= 1")
    rtol, atol = parse_tolerances(args.rtol, "--rtol"), parse_tolerances(args.atol, "--atol")
    images = []
    if args.images is not None:
        from ..runtime.inputs import load_input

        mean, std = _floats(args.mean, "--mean"), _floats(args.std, "--std")
        files = [f.strip() for f in args.images.split(",") if f.strip()]
        if not files:
            raise UserError("--images is empty: give image or .npy files, comma separated")
        for f in files:
            images.append((Path(f).name, load_input(f, mean, std)))
    require_backends(backends)  # before the model loads: a missing runtime fails at once
    model = load_model_from_args(args)
    channels = _channels(args, model)
    shapes = sweep_shapes(channels, sizes, rng_, args.samples, batches, args.seed)
    cfg = ValidateConfig(shapes=shapes, backends=backends, onnx=args.onnx, engine=args.engine, plugin=args.plugin,
                         rtol=rtol, atol=atol, seed=args.seed, reference=args.reference, images=images)
    total = (len(shapes) + len(images)) * len(backends)
    print(f"validate: {', '.join(backends)} vs {args.reference} ({args.model}), {len(shapes)} size(s)"
          f"{f' + {len(images)} image(s)' if images else ''}, seed {args.seed}")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    err_console = Console(file=sys.stderr)
    with Progress(TextColumn("validating"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True,
                  disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("validate", total=total)
        report = run_validation(model, cfg, on_record=lambda r: print(format_record(r), flush=True),
                                on_step=lambda: progress.advance(task))
    counts = report.counts()
    worst = max((r.comparison.max_rel for r in report.records if r.comparison and r.comparison.shape_ok), default=0.0)
    verdict = "PASSED" if report.passed else "FAILED"
    if report.compared():
        print(f"{verdict}: {counts['PASSED']} passed, {counts['FAILED']} failed, {counts['SKIPPED']} skipped "
              f"(worst max rel err {worst:.2e})")
    else:
        print(f"{verdict}: nothing was compared: all {counts['SKIPPED']} requested input(s) were skipped")
    if json_path is not None:
        from ..fileio import write_text

        write_text(json_path, json.dumps(report.as_dict(), indent=1))
        print(f"report written to {json_path}")
    return 0 if verdict == "PASSED" else 1


def _channels(args, model) -> int:
    if args.model.startswith("zoo:"):
        from ..zoo import get_entry

        return get_entry(args.model[4:]).input_shape[1]
    if args.channels:
        return args.channels
    import torch

    first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if first is None:
        raise UserError("cannot tell the model's input channels: pass --channels")
    return first.in_channels


def _floats(text: str | None, flag: str):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"bad {flag} {text!r}: expected comma-separated numbers") from None


def register(sub) -> None:
    p = sub.add_parser("validate", help="compare ONNX / TensorRT backends with PyTorch across input sizes")
    add_model_args(p)
    p.add_argument("--onnx", help="ONNX file (ort-* backends)")
    p.add_argument("--engine", help="TensorRT engine (backend trt)")
    p.add_argument("--plugin", help="libspp_plugin.so for plugin-mode files/engines")
    p.add_argument("--backends", help="comma list of torch, torch-fp64, ort-cpu, ort-cuda, ort-trt, trt "
                                      "(default: ort-cpu, plus trt with --engine)")
    p.add_argument("--reference", default="torch", choices=["torch", "torch-fp64"], help="reference backend")
    p.add_argument("--sizes", help="HxW or BxHxW, comma separated (default 64x64,131x517,2x224x224)")
    p.add_argument("--size-range", help="LO..HI: random square/non-square sizes in this range (with --samples)")
    p.add_argument("--samples", type=int, default=6, help="sizes drawn from --size-range (ends included)")
    p.add_argument("--batch", help="batch sizes for sizes without an explicit B, e.g. 1,2")
    p.add_argument("--channels", type=int, help="input channels (models outside the zoo; default: first Conv2d)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", help="absolute tolerance, or per output: output:1e-5,...")
    p.add_argument("--rtol", help="tolerance relative to the reference's largest magnitude, or per output")
    p.add_argument("--images", help="real inputs: image files or .npy, comma separated (run at native size)")
    p.add_argument("--mean", help="per-channel mean for --images (0..1 scale), e.g. 0.485,0.456,0.406")
    p.add_argument("--std", help="per-channel std for --images, e.g. 0.229,0.224,0.225")
    p.add_argument("--json", help="write the full report as JSON")
    add_force_arg(p)
    p.set_defaults(func=run)
