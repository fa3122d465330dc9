"""``spp-deploy bench``: latency and throughput per backend and input shape (trtexec-style summary),
with ``--json``/``--csv`` reports and a latency-vs-megapixels ``--plot``."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from ..runtime.backends import BENCH_BACKENDS, DEFAULT_BENCH_BACKENDS, REGISTRY, TRITON_BACKENDS
from ..util.errors import UserError
from .args import (add_backends_arg, add_force_arg, add_json_arg, add_model_args, add_model_file_args,
                   add_interop_args, add_seed_arg, add_shapes_arg, add_sweep_args, milliseconds)
from .common import Interop, json_output, load_model_from_args, loaded_inputs, output_path
from .console import QUIET, verbosity
from .option_groups import BENCH_EXPORT_FIELDS, add_export_options, export_options

DEFAULT_BACKENDS = ",".join(DEFAULT_BENCH_BACKENDS)


def _warn(msg: str) -> None:
    from .console import warn

    warn(msg)


TIMING_FLAGS = {"iterations": "--iterations", "duration_s": "--duration", "warmup": "--warmup",
                "warmup_time_s": "--warmup-time", "threads": "--threads"}


def run(args) -> int:
    from ..bench.report import print_summary
    from ..bench.workload import onnx_input_channels

    # Cheap checks first: every bad argument fails before a model is loaded or a second is timed.
    backends = args.backends
    json_path, human = json_output(args)
    csv_path, plot_path = _report_paths(args)
    onnx_path = _check_args(args, backends)
    io = Interop(args)
    loaded = _loaded(args)
    unavailable = _unavailable(args, backends)  # known now: fail (or know what to skip) before any export
    model = load_model_from_args(args) if args.model else None
    all_shapes = _shapes(args, model, onnx_path, loaded)
    config = _config(args, backends, all_shapes, loaded)
    with human:
        report = _bench(args, backends, unavailable, config, model, onnx_path, all_shapes)
        print_summary(report)
        name = onnx_input_channels(onnx_path)[1] if onnx_path is not None else "input"
        _collect(io, report, name)
        io.write()
    _write_reports(report, json_path, csv_path, plot_path)
    return 0


def _report_paths(args) -> tuple:
    """(--csv path, --plot path), checked before any work."""
    csv_path = output_path(args, args.csv, "--csv file")
    plot_path = output_path(args, args.plot, "--plot file")
    if plot_path is not None:
        from ..bench.plot import check_plot_path

        check_plot_path(plot_path)
    return csv_path, plot_path


def _check_args(args, backends) -> Path | None:
    """Every argument that can be checked without a model; returns --onnx as a Path."""
    from ..bench.workload import onnx_input_channels
    from ..util.limits import check_timing

    check_timing(args.iterations, args.duration, args.warmup, args.warmup_time, args.threads, TIMING_FLAGS)
    if args.sizes and args.size_range:
        raise UserError("give --sizes or --size-range, not both")
    if args.shapes and (args.sizes or args.size_range):
        raise UserError("give either --shapes or a size sweep (--sizes / --size-range), not both")
    if args.model is None and args.onnx is None and not all(b in TRITON_BACKENDS for b in backends):
        raise UserError("give --model (and optionally --onnx), or --onnx for ONNX Runtime / TensorRT backends only")
    for flag, value in (("--url", args.url), ("--grpc-url", args.grpc_url), ("--triton-model", args.triton_model)):
        if value is not None and not any(b in TRITON_BACKENDS for b in backends):
            raise UserError(f"{flag} is for the triton-http / triton-grpc backends, and none is listed")
        if value is not None and not value.strip():
            raise UserError(f"{flag} is empty")
    onnx_path = None
    if args.onnx:
        onnx_path = Path(args.onnx)
        if not onnx_path.is_file():
            raise UserError(f"ONNX file not found: {onnx_path}")
    named = getattr(args.shapes, "input_name", None)
    if named is not None and onnx_path is not None and named != onnx_input_channels(onnx_path)[1]:
        raise UserError(f"--shapes names input {named!r}; {onnx_path} has {onnx_input_channels(onnx_path)[1]!r}")
    return onnx_path


def _unavailable(args, backends) -> dict[str, str]:
    """{backend: why} for those that cannot run here; an error when none can, or under --strict."""
    from ..bench import unavailable_reason

    unavailable = {b: why for b in backends if (why := _needs(b, args) or unavailable_reason(b))}
    if unavailable and args.strict:
        b, why = next(iter(unavailable.items()))
        raise UserError(f"backend {b} is not available: {why}")
    if len(unavailable) == len(backends):
        raise UserError("no backend can run here: " + "; ".join(f"{b}: {r}" for b, r in unavailable.items()))
    return unavailable


def _shapes(args, model, onnx_path: Path | None, loaded: dict) -> list:
    """The shapes to time: loaded inputs', --shapes, or the size sweep (channels from the file,
    the zoo entry or the model's first Conv2d)."""
    from ..bench.workload import build_shapes, onnx_input_channels, size_range_squares

    shapes = list(loaded) if loaded else args.shapes
    sizes = args.sizes or (size_range_squares(args.size_range) if args.size_range else None)
    default = None
    if args.model and args.model.startswith("zoo:"):
        from ..sources.zoo import get_entry

        default = get_entry(args.model[4:]).input_shape
    channels = onnx_input_channels(onnx_path)[0] if onnx_path is not None else None
    if channels is None and default is not None:
        channels = default[1]
    if channels is None and model is not None and sizes:
        channels = _guess_channels(model)
    if sizes and channels is None:
        raise UserError("cannot tell the input channel count for --sizes / --size-range: give --shapes BxCxHxW")
    if not shapes and not sizes and default is None:
        raise UserError("no input shapes: give --shapes BxCxHxW,... or --sizes [B]xHxW,... / "
                        "--size-range START:STOP[:COUNT]")
    return build_shapes(shapes, sizes, args.batch, channels, default)


def _config(args, backends, all_shapes, loaded: dict):
    """The BenchConfig of the command line (iterations and warm-up defaults by --duration/--warmup-time)."""
    from ..bench import BenchConfig

    iterations = args.iterations if args.iterations is not None else (1 if args.duration else 20)
    warmup = args.warmup if args.warmup is not None else (0 if args.warmup_time else 3)
    for flag, value in (("--engine", args.engine), ("--plugin", args.plugin)):
        if value and not Path(value).is_file():
            raise UserError(f"{flag} file not found: {value}")
    return BenchConfig(backends, all_shapes, warmup, args.warmup_time or 0.0, iterations, args.duration or 0.0,
                       args.threads, args.strict, args.cuda_graph, args.seed, args.engine, args.plugin,
                       args.url, args.grpc_url, args.triton_model, loaded or None, bool(args.save_outputs))


def _write_reports(report, json_path, csv_path, plot_path) -> None:
    """--plot, --csv and --json: all written or none."""
    from ..bench.report import to_json, write_csv, write_json

    with _all_or_none(json_path, csv_path, plot_path):
        if plot_path:  # first: of the three, the one that can still fail on the data
            from ..bench.plot import plot_latency

            plot_latency(report, plot_path)
        if csv_path:
            write_csv(report, csv_path)
        if json_path == "-":
            print(to_json(report))
        elif json_path:
            write_json(report, json_path)
    for path in (json_path, csv_path, plot_path):
        if path not in (None, "-"):
            print(f"wrote {path}")


@contextlib.contextmanager
def _all_or_none(*paths):
    """The reports are one result: when writing one fails (disk full, Ctrl-C), the ones this run
    created are removed again (files it replaced under --force cannot be brought back)."""
    new = [Path(p) for p in paths if p not in (None, "-") and not os.path.lexists(p)]
    try:
        yield
    except BaseException:
        for p in new:
            if p.is_file() and not p.is_symlink():
                p.unlink()
        raise


def _bench(args, backends, unavailable, config, model, onnx_path, all_shapes):
    from ..bench import run_bench

    with tempfile.TemporaryDirectory(prefix="spp-bench-") as tmp:
        needs_onnx = any(REGISTRY[b].needs == "onnx" or (REGISTRY[b].needs == "engine" and not args.engine)
                         for b in backends if b not in unavailable)
        if onnx_path is None and needs_onnx and model is not None:
            onnx_path = _export_temp(model, all_shapes, Path(tmp) / "model.onnx", args)
        name = args.model or (str(onnx_path) if onnx_path else f"Triton model {args.triton_model or '(the only one served)'}")
        report = run_bench(config, model, onnx_path, name, progress=not args.no_progress and verbosity() > QUIET,
                           warn=_warn, workdir=Path(tmp))
        if args.onnx is None:
            report.onnx = None  # a temporary file: do not point at it
    if args.no_data_transfers:
        report.records = [r for r in report.records if r.transfers != "with"]
    return report


def _collect(io, report, name: str) -> None:
    """The inputs timed (one feed per shape) and, per backend that ran every shape, the outputs
    of its untimed run on each (a backend missing a shape would misalign the iterations)."""
    io.feeds = [{name: x} for x in report.inputs.values()]
    for b, outs in report.outputs.items():
        if all(s in outs for s in report.inputs):
            io.results[b] = [outs[s] for s in report.inputs]
        else:
            _warn(f"outputs of {b} not saved: it did not run at every shape")


def _loaded(args) -> dict:
    """--load-inputs as {shape: array}: each iteration is one shape to time, on that data."""
    if not args.load_inputs:
        return {}
    if args.shapes or args.sizes or args.size_range or args.batch:
        raise UserError("--load-inputs gives the shapes to time: leave out --shapes, --sizes, --size-range and --batch")
    out = {}
    for label, arr in loaded_inputs(args.load_inputs):
        if arr.shape in out:
            raise UserError(f"--load-inputs {label}: a second input of shape {'x'.join(map(str, arr.shape))} "
                            "(bench times one input per shape)")
        out[arr.shape] = arr
    return out


def _needs(backend: str, args) -> str | None:
    """What a backend lacks on this command line (the library says the same without flag names)."""
    needs = REGISTRY[backend].needs
    if needs == "model" and args.model is None:
        return "needs --model"
    if needs == "engine" and args.model is None and args.onnx is None and args.engine is None:
        return "needs --onnx or --engine"
    if needs == "onnx" and args.model is None and args.onnx is None:
        return "needs --onnx"
    return None


def _guess_channels(model) -> int | None:
    """The in_channels of the first Conv2d (for size sweeps on non-zoo models)."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
    return None


def _export_temp(model, shapes, path: Path, args) -> Path:
    """Export to a temporary ONNX file with the export command's code (parity check skipped: the
    timing run is not a validation run; use ``spp-deploy export`` for that)."""
    import torch

    from ..bench.workload import shape_error
    from ..checked_export import export_onnx

    errors = {}
    for s in shapes:
        errors[s] = shape_error(s, model)
        if errors[s] is None:
            example = s
            break
    else:  # nothing to time: say so before exporting
        raise UserError("the model cannot take any of the requested shapes: "
                        + "; ".join(f"{'x'.join(map(str, s))}: {why}" for s, why in errors.items()))
    print(f"exporting {args.model} to a temporary ONNX file (spp-impl {args.spp_impl}, dynamic batch/height/width)",
          file=sys.stderr)
    export_onnx(model, torch.randn(1, *example[1:]), path, export_options(args, check_parity=False))
    return path


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark latency/throughput per backend and input size (table, JSON, CSV, plot)")
    add_model_args(p, required=False)
    add_model_file_args(p, onnx_help="ONNX file to time (default: export --model to a temporary file)",
                        engine_help="trt backend: a prebuilt engine (default: build one from the ONNX file); "
                                    "trtexec: --loadEngine", engine_aliases=("--loadEngine",))
    e = p.add_argument_group("the temporary export (without --onnx; as `spp-deploy export`)")
    add_export_options(e, BENCH_EXPORT_FIELDS, "; for the temporary export")
    add_backends_arg(p, BENCH_BACKENDS, DEFAULT_BACKENDS, DEFAULT_BACKENDS)
    g = add_sweep_args(p, "size sweep; B missing: each --batch size (channels from the model)",
                       "size sweep: COUNT square sizes evenly spaced from START to STOP (default COUNT 5)",
                       "batch sizes, e.g. 1,8 (replace the batch of --shapes; default 1 for sweeps)")
    add_shapes_arg(g, "BxCxHxW,... or trtexec's input:BxCxHxW,... (default: the zoo model's input shape)")
    t = p.add_argument_group("timing")
    t.add_argument("--warmup", type=int, help="warm-up runs (default 3; 0 with --warmup-time)")
    t.add_argument("--warmup-time", type=float, help="warm up for at least this many seconds")
    t.add_argument("--warmUp", dest="warmup_time", type=milliseconds, metavar="MS",
                   help="trtexec's spelling: warm up for at least MS milliseconds")
    t.add_argument("--iterations", type=int, help="timed runs, at least (default 20; 1 with --duration)")
    t.add_argument("--duration", type=float, help="time for at least this many seconds")
    t.add_argument("--threads", type=int, help="CPU threads for torch and ONNX Runtime (default: torch's default)")
    t.add_argument("--cuda-graph", "--useCudaGraph", action="store_true",
                   help="GPU: CUDA graphs (trt, ort-cuda, ort-trt; no-copy runs only)")
    t.add_argument("--no-data-transfers", "--noDataTransfers", action="store_true",
                   help="GPU: report only the runs without host<->device copies (as trtexec --noDataTransfers)")
    add_seed_arg(t, "input data")
    o = p.add_argument_group("output")
    add_json_arg(o, "the results")
    o.add_argument("--csv", help="write the results as CSV")
    o.add_argument("--plot", help="write latency vs megapixels as a PNG (needs matplotlib)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_force_arg(o)
    s = p.add_argument_group("Triton Inference Server (triton-http, triton-grpc backends)")
    s.add_argument("--url", metavar="HOST:PORT", help="the server's HTTP endpoint (default localhost:8000)")
    s.add_argument("--grpc-url", metavar="HOST:PORT", help="the server's gRPC endpoint (default: the --url host, port 8001)")
    s.add_argument("--triton-model", metavar="NAME", help="the served model (default: the server's only ready model)")
    add_interop_args(p, "time these inputs (a Polygraphy inputs file; each iteration one shape) instead of "
                        "random data", None,
                     "write each backend's outputs of one more, untimed run per shape as Polygraphy RunResults "
                     "(iteration i: --save-inputs' iteration i; polygraphy run --load-outputs)")
    p.add_argument("--strict", action="store_true", help="fail instead of skipping unavailable backends or shapes")
    p.set_defaults(func=run)
