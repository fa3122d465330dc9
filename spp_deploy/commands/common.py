"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ..errors import UserError


def add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, help="zoo:NAME, module.path:factory or path/file.py:factory")
    p.add_argument("--model-kwargs", help="JSON object passed to the factory")
    p.add_argument("--weights", help="state dict / checkpoint, loaded with torch.load(weights_only=True)")


def add_force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace existing output files, read-only ones included")


def output_path(args, path: str | None, what: str) -> Path | None:
    """Check an output path before any work starts (None when not asked for)."""
    if path is None:
        return None
    from ..fileio import check_output

    return check_output(path, what, force=getattr(args, "force", False), force_hint="--force")


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
        from ..errors import first_line

        raise UserError(f"out of memory at input shape {text}: {first_line(e)}") from None


def require_backends(backends) -> None:
    """Fail in one line, before any model loads or file is exported, when a backend cannot run here."""
    from ..bench.backends import unavailable_reason

    for b in backends:
        why = None if b in ("torch", "torch-fp64") else unavailable_reason(b)
        if why:
            raise UserError(f"backend {b} is not available here: {why}")


def load_model_from_args(args):
    from ..loading import load_model, parse_kwargs

    return load_model(args.model, parse_kwargs(args.model_kwargs), args.weights)


def default_input_shape(args) -> str:
    """--input-shape, or the zoo model's own default."""
    if getattr(args, "input_shape", None) is not None:
        if not args.input_shape.strip():
            raise UserError("--input-shape is empty: give BxCxHxW, e.g. 1x3x224x224 (or leave it out for a zoo model)")
        return args.input_shape
    if args.model.startswith("zoo:"):
        from ..zoo import get_entry

        return "x".join(map(str, get_entry(args.model[4:]).input_shape))
    raise UserError("--input-shape is required for models outside the zoo (e.g. 1x3x224x224)")


def parse_sizes(text: str | None):
    """'64x64,2x131x517' -> [(1, 64, 64), (2, 131, 517)] as (batch, height, width)."""
    if not text:
        return None
    from ..loading import parse_shape

    out = []
    for item in text.split(","):
        dims = parse_shape(item)
        if len(dims) == 2:
            dims = (1, *dims)
        if len(dims) != 3:
            raise UserError(f"bad size {item!r} in --sizes: expected HxW or BxHxW")
        out.append(dims)
    return out


def print_parity(reports) -> None:
    for r in reports:
        shape = "x".join(map(str, r.shape))
        if r.skipped:
            print(f"  {shape:>18}  skipped: {r.skipped}")
        else:
            c = r.comparison
            print(f"  {shape:>18}  PASSED  max abs {c.max_abs:.2e}  max rel {c.max_rel:.2e}  cos {c.cosine:.8f}")


def add_tabulate_arg(p: argparse.ArgumentParser) -> None:
    from ..recognize.tabulate import DEFAULT_LIMIT

    def limit(text: str) -> int:
        if not text.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
        return int(text)

    p.add_argument("--tabulate-limit", type=limit, default=DEFAULT_LIMIT, metavar="N",
                   help=f"probe SPP layers that follow no named bin rule at every H, W up to N and export "
                        f"their measured bins (exact up to N, NaN past it; 0: off; default {DEFAULT_LIMIT})")
