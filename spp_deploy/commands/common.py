"""Helpers the subcommands share for acting on parsed arguments (their definitions: ``args``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from ..util.errors import UserError

# Arguments naming files a command reads: an output may be none of them.
INPUT_ARGS = (("weights", "--weights file"), ("onnx", "--onnx file"), ("engine", "--engine file"),
              ("head_engine", "--head-engine file"), ("plugin", "--plugin library"), ("input", "--input file"),
              ("image", "--image file"), ("windows", "--windows file"), ("timing_cache", "--timing-cache file"),
              ("load_inputs", "--load-inputs file"), ("load_outputs", "--load-outputs file"))


def command_inputs(args) -> list[tuple[str, str]]:
    """(what, path) of every file the command reads: the inputs its flags name, each --images
    file, and the model's source file (``file.py:factory`` or ``module:factory``)."""
    found = [(what, getattr(args, name)) for name, what in INPUT_ARGS if getattr(args, name, None)]
    onnx = getattr(args, "onnx", None)
    if onnx and Path(onnx).is_dir():  # a detector: the directory export-detector wrote
        found += [("--onnx file", str(p)) for p in sorted(Path(onnx).iterdir()) if p.is_file()]
    images = getattr(args, "images", None)
    if isinstance(images, str):
        found += [("--images file", f.strip()) for f in images.split(",") if f.strip()]
    source = model_source(getattr(args, "model", None))
    if source is not None:
        found.append(("--model source", source))
    return found


def model_source(spec: str | None) -> str | None:
    """The file a ``file.py:factory`` or ``module.path:factory`` model spec loads, found without
    importing anything (None for zoo models and what cannot be found)."""
    if not spec or spec.startswith("zoo:") or ":" not in spec:
        return None
    target = spec.rpartition(":")[0]
    if target.endswith(".py"):
        return target
    import sys
    from importlib.machinery import PathFinder

    where = None
    try:
        for part in target.split("."):
            found = PathFinder.find_spec(part, where if where is not None else sys.path)
            if found is None:
                return None
            where = found.submodule_search_locations
    except (ImportError, ValueError, OSError):
        return None
    return found.origin if found.has_location else None


def output_path(args, path: str | None, what: str) -> Path | None:
    """Check an output path before any work starts (None when not asked for): not one of the
    command's inputs, nor another of its outputs, and an existing file only with --force."""
    if path is None:
        return None
    from ..util.fileio import check_output, is_stream

    claimed = args.__dict__.setdefault("_outputs", [])
    others = [] if is_stream(path) else claimed  # two reports may both go to /dev/null
    out = check_output(path, what, force=getattr(args, "force", False), inputs=command_inputs(args) + others)
    claimed.append((what, str(out)))
    return out


@contextlib.contextmanager
def allocation_errors(shape):
    """An allocator failure at ``shape`` (torch raises RuntimeError, numpy MemoryError) as one line."""
    text = "x".join(map(str, shape))
    try:
        yield
    except MemoryError:
        raise UserError(f"out of memory at input shape {text}") from None
    except RuntimeError as e:
        if "allocate" not in str(e) and "out of memory" not in str(e).lower():
            raise
        from ..util.errors import first_line

        raise UserError(f"out of memory at input shape {text}: {first_line(e)}") from None


def require_backends(backends) -> None:
    """Fail in one line, before any model loads or file is exported, when a backend cannot run here."""
    from ..runtime.backends import unavailable_reason

    for b in backends:
        if b == "trt":
            from ..runtime.trt.common import import_tensorrt

            import_tensorrt(f"backend {b}")  # its own message says how to install it
        why = unavailable_reason(b)
        if why:
            raise UserError(f"backend {b} is not available here: {why}")


def load_model_from_args(args):
    import logging
    import time

    from ..sources.loading import load_model

    log = logging.getLogger("spp_deploy")
    log.info("loading model %s%s", args.model, f" with weights {args.weights}" if args.weights else "")
    t0 = time.perf_counter()
    model = load_model(args.model, args.model_kwargs or {}, args.weights)
    log.info("model loaded in %.1fs (%s parameters)", time.perf_counter() - t0,
             f"{sum(p.numel() for p in model.parameters()):,}")
    return model


def input_shape(args) -> tuple[int, int, int, int]:
    """--input-shape (parsed by argparse), or the zoo model's own default."""
    if getattr(args, "input_shape", None) is not None:
        return args.input_shape
    if args.model.startswith("zoo:"):
        from ..sources.zoo import get_entry

        return get_entry(args.model[4:]).input_shape
    raise UserError("--input-shape is required for models outside the zoo (e.g. 1x3x224x224)")


def json_output(args, what: str = "--json file"):
    """(path or None, redirect): ``--json`` without a PATH (or ``-``) prints the JSON on stdout,
    so everything else the command prints goes to stderr for the time of ``redirect``."""
    import sys

    if getattr(args, "json", None) == "-":
        return "-", contextlib.redirect_stdout(sys.stderr)
    return output_path(args, getattr(args, "json", None), what), contextlib.nullcontext()


def run_with_report(args, work: Callable[[object], dict]) -> int:
    """Run ``work(args)`` (with its printing moved to stderr when the JSON goes to stdout) and
    write the report it returns as ``--json`` asks: what export, build, detect and triton share."""
    json_path, human = json_output(args)
    with human:
        report = work(args)
    emit_json(json_path, report)
    return 0


def emit_json(path, data: dict) -> None:
    """A command's ``--json`` report (nothing when not asked for): on stdout for ``-``, else
    written to the file (checked up front by ``json_output``) and said on stdout. Non-finite
    numbers become null: the file is strict JSON."""
    if path is None:
        return
    import json

    write_json(path, json.dumps(finite(data), indent=1, allow_nan=False))
    if path != "-":
        print(f"report written to {path}")


def finite(value):
    """``value`` with every NaN/inf float (nested in dicts, lists, tuples) as None."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def write_json(path, text: str) -> None:
    """The JSON report to ``path``, or to stdout for ``-``."""
    if path == "-":
        print(text)
        return
    from ..util.fileio import write_text

    write_text(path, text + "\n")


def print_parity(reports) -> None:
    for r in reports:
        shape = "x".join(map(str, r.shape))
        if r.skipped:
            print(f"  {shape:>18}  skipped: {r.skipped}")
        else:
            c = r.comparison
            worst = f"  (worst of {len(r.outputs)} outputs: {r.output})" if len(r.outputs) > 1 else ""
            print(f"  {shape:>18}  PASSED  max abs {c.max_abs:.2e}  max rel {c.max_rel:.2e}  cos {c.cosine:.8f}{worst}")


class Interop:
    """What --save-inputs/--save-outputs/--save-trtexec-inputs collect during a command, checked
    before the work starts and written at its end (``spp_deploy.interop``)."""

    def __init__(self, args) -> None:
        self.inputs_path = output_path(args, getattr(args, "save_inputs", None), "--save-inputs file")
        self.outputs_path = output_path(args, getattr(args, "save_outputs", None), "--save-outputs file")
        self.trtexec_dir = getattr(args, "save_trtexec_inputs", None)
        if self.trtexec_dir is not None:
            from ..util.fileio import check_output_dir

            check_output_dir(self.trtexec_dir, "--save-trtexec-inputs directory")
        self.feeds: list[dict] = []
        self.results: dict[str, list[dict]] = {}

    def add(self, runner: str, feed: dict | None, outputs: dict) -> None:
        """One inference: its feed (None: the same as the last one's) and outputs, by runner."""
        if feed is not None:
            self.feeds.append(dict(feed))
        self.results.setdefault(runner, []).append(dict(outputs))

    def write(self) -> None:
        from .. import interop

        if self.inputs_path is not None:
            interop.save_inputs(self.inputs_path, self.feeds, force=True)  # checked (with --force) up front
            print(f"inputs written to {self.inputs_path} (Polygraphy JSON)")
        if self.outputs_path is not None:
            interop.save_outputs(self.outputs_path, list(self.results.items()), force=True)
            print(f"outputs written to {self.outputs_path} (Polygraphy RunResults)")
        if self.trtexec_dir is not None:
            interop.save_trtexec_inputs(self.trtexec_dir, self.feeds)
            print(f"trtexec inputs written to {self.trtexec_dir} (flags: {Path(self.trtexec_dir) / 'trtexec.txt'})")


def loaded_inputs(path: str) -> list[tuple[str, object]]:
    """(label, array) per iteration of a Polygraphy inputs file whose feeds hold one float
    BxCxHxW array each."""
    from ..interop import read_inputs

    out = []
    for i, feed in enumerate(read_inputs(path)):
        if len(feed) != 1:
            raise UserError(f"{path} iteration {i} feeds {len(feed)} inputs ({', '.join(feed)}); the model takes one")
        (arr,) = feed.values()
        label = f"{Path(path).name}[{i}]"
        if arr.ndim != 4 or arr.dtype.kind != "f":
            raise UserError(f"--load-inputs {label} is {arr.dtype} of shape {'x'.join(map(str, arr.shape)) or 'a scalar'}: "
                            "expected a float image batch BxCxHxW")
        out.append((label, arr))
    return out
