"""Every command-line argument the subcommands share, defined once (as Polygraphy's tools/args).

One grammar per concept: shapes ``BxCxHxW``, sizes ``[B]xHxW``, size ranges
``START:STOP[:COUNT]``, batch lists ``1,8``, ``--json [PATH]`` (stdout without a PATH). Values
are parsed by argparse ``type=`` functions built on the library's parsers, so a bad value is
reported as ``argument --flag: <the library's message>``: the library never names a flag, the
CLI does. Choices and defaults come from the library's constants. Nothing heavy is imported.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

from ..util.constants import (DEFAULT_OPSET, DEFAULT_PRECISION, DEFAULT_SPP_IMPL, DEFAULT_WINDOWS_DTYPE,
                              DYNAMIC_AXES, OPSETS, PRECISIONS, SPP_IMPLS, WINDOWS_DTYPES)
from ..util.errors import UserError

STDOUT = "-"

# Library arguments whose flag is not simply --name-with-dashes (UserError.option -> flag).
FLAGS = {"spp_layers": "--spp-layer"}


def flag_for(option: str) -> str:
    """The command-line flag for a library argument named in a ``UserError``."""
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def value_type(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    """An argparse ``type`` from a library parser: its ``UserError`` becomes argparse's
    "argument --flag: message"."""

    def convert(text: str):
        try:
            return parse(text)
        except UserError as e:  # argparse names the flag: the message alone, without the argument's name
            raise argparse.ArgumentTypeError(str(e.args[0]) if e.args and e.example is None else str(e)) from None

    convert.__name__ = name  # argparse's "invalid <name> value" fallback
    return convert


def _declaration(text: str):
    from ..recognize.config import parse_declaration  # imports torch: only when the flag is given

    return parse_declaration(text)


def _nonempty(text: str) -> str:
    if not text.strip():
        raise UserError("empty value")
    return text


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise UserError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


positive_int = value_type(_positive, "count")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"bad value {text!r}: expected comma-separated numbers, e.g. 0.485,0.456,0.406") from None


def _dynamic(text: str) -> list[str]:
    """'batch,height,width' (any of them) or 'none' for a static file."""
    from ..util.arguments import parse_dynamic

    return parse_dynamic(text)


def _kwargs(text: str) -> dict:
    from ..sources.loading import parse_kwargs

    return parse_kwargs(text)


def _shape(text: str):
    from ..util.shapes import parse_input_shape

    return parse_input_shape(text)


def _shapes(text: str):
    from ..util.shapes import parse_shapes

    return parse_shapes(text)


def _sizes(text: str):
    from ..util.shapes import parse_sizes

    return parse_sizes(text)


def _size_range(text: str):
    from ..util.shapes import parse_size_range

    return parse_size_range(text)


def _batches(text: str):
    from ..util.shapes import parse_batches

    return parse_batches(text)


def backends_type(known: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        from ..runtime.backends import parse_backends

        return parse_backends(text, known=tuple(known))

    return value_type(parse, "backends")


# -- argument groups ---------------------------------------------------------------------------------


def add_model_arg(p: argparse.ArgumentParser, required: bool = True, default: str | None = None,
                  help: str = "zoo:NAME, module.path:factory or path/file.py:factory") -> None:
    p.add_argument("--model", required=required, default=default, type=value_type(_nonempty, "model"), help=help)


def add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    add_model_arg(p, required)
    p.add_argument("--model-kwargs", type=value_type(_kwargs, "JSON"), help="JSON object passed to the factory")
    p.add_argument("--weights", help="state dict / checkpoint, loaded with torch.load(weights_only=True)")


def add_input_shape_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-shape", type=value_type(_shape, "shape"),
                   help="example input BxCxHxW (zoo models have a default)")


def add_recognition_args(p: argparse.ArgumentParser, no_sppf_help: str) -> None:
    p.add_argument("--spp-layer", action="append", type=value_type(_declaration, "declaration"),
                   metavar="PATH=levels:4,2,1;rule=RULE;mode=MODE;order=ORDER",
                   help="declare the module at PATH an SPP layer with this config (repeatable)")
    p.add_argument("--no-sppf", action="store_true", help=no_sppf_help)
    add_tabulate_arg(p)


def add_tabulate_arg(p: argparse.ArgumentParser) -> None:
    from ..util.constants import DEFAULT_TABULATE_LIMIT as DEFAULT_LIMIT

    def limit(text: str) -> int:
        if not text.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
        return int(text)

    p.add_argument("--tabulate-limit", type=limit, default=DEFAULT_LIMIT, metavar="N",
                   help=f"probe SPP layers that follow no named bin rule at every H, W up to N and export "
                        f"their measured bins (exact up to N, NaN past it; 0: off; default {DEFAULT_LIMIT})")


def add_onnx_export_args(p: argparse.ArgumentParser, purpose: str = "") -> None:
    """--opset and --spp-impl (export, and bench's temporary export)."""
    p.add_argument("--opset", type=int, choices=OPSETS, default=DEFAULT_OPSET, metavar="OPSET",
                   help=f"ONNX opset, {OPSETS[0]}..{OPSETS[-1]} (default {DEFAULT_OPSET}){purpose}")
    p.add_argument("--spp-impl", choices=SPP_IMPLS, default=DEFAULT_SPP_IMPL,
                   help=f"standard: ONNX ops; plugin: one TensorRT plugin node (default {DEFAULT_SPP_IMPL}){purpose}")


def add_windows_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--windows-dtype", choices=WINDOWS_DTYPES, default=DEFAULT_WINDOWS_DTYPE,
                   help="dtype of the head's windows input; float32 for TensorRT (trtexec, Polygraphy), which has "
                        "no float64: the head widens float32 windows to float64 exactly before projecting them "
                        f"(default {DEFAULT_WINDOWS_DTYPE})")


def add_dynamic_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dynamic", type=value_type(_dynamic, "axes"), default=list(DYNAMIC_AXES),
                   help=f"dynamic axes, comma separated, or none (default: {','.join(DYNAMIC_AXES)})")


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help=f"fp16: a float16 model (for TensorRT 11) (default {DEFAULT_PRECISION})")


def add_model_file_args(p: argparse.ArgumentParser, onnx_help: str = "ONNX file (ort-* backends)",
                        engine_help: str = "TensorRT engine (backend trt)", plugin_help: str | None = None,
                        engine_aliases: Sequence[str] = ()) -> None:
    p.add_argument("--onnx", type=value_type(_nonempty, "path"), help=onnx_help)
    p.add_argument("--engine", *engine_aliases, type=value_type(_nonempty, "path"), help=engine_help)
    add_plugin_arg(p, plugin_help)


def add_plugin_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--plugin", type=value_type(_nonempty, "path"),
                   help=help or "libspp_plugin.so for plugin-mode files/engines (default: $SPP_DEPLOY_PLUGIN_LIB, ./build)")


def add_backends_arg(p: argparse.ArgumentParser, known: Sequence[str], default: str | None, help_default: str) -> None:
    p.add_argument("--backends", type=backends_type(known), default=default,
                   help=f"comma separated: {', '.join(known)} (default: {help_default})")


def add_sweep_args(p, sizes_help: str, range_help: str, batch_help: str):
    """--sizes [B]xHxW,..., --size-range START:STOP[:COUNT], --batch 1,8 (validate, bench, export's
    --sizes). Returns the group."""
    g = p.add_argument_group("sizes")
    g.add_argument("--sizes", type=value_type(_sizes, "sizes"), metavar="[B]xHxW,...", help=sizes_help)
    if range_help:
        g.add_argument("--size-range", type=value_type(_size_range, "range"), metavar="START:STOP[:COUNT]",
                       help=range_help)
    if batch_help:
        g.add_argument("--batch", type=value_type(_batches, "batches"), metavar="B,...", help=batch_help)
    return g


def add_shapes_arg(p, help: str) -> None:
    p.add_argument("--shapes", type=value_type(_shapes, "shapes"), metavar="BxCxHxW,...", help=help)


def add_normalize_args(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--mean", type=value_type(_floats, "numbers"),
                   help=f"per-channel mean{what} on the 0..1 scale, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=value_type(_floats, "numbers"), help=f"per-channel std{what}, e.g. 0.229,0.224,0.225")


def add_seed_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--seed", type=int, default=0, help=f"{what} seed (default 0)")


def add_json_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", nargs="?", const=STDOUT, metavar="PATH", type=value_type(_nonempty, "path"),
                   help=f"write {what} as JSON to PATH (no PATH, or -: to stdout, and the rest to stderr)")


def add_output_arg(p: argparse.ArgumentParser, help: str, required: bool = False, aliases: Sequence[str] = ()) -> None:
    """-o/--output (``aliases``: other spellings, e.g. trtexec's --saveEngine)."""
    p.add_argument("-o", "--output", *aliases, required=required, help=help)


def _milliseconds(text: str) -> float:
    """trtexec's milliseconds as seconds."""
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"expected a number of milliseconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise UserError(f"expected a number of milliseconds >= 0, got {text!r}")
    return value / 1000


milliseconds = value_type(_milliseconds, "milliseconds")


def add_force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace existing output files, read-only ones included")


def add_interop_args(p: argparse.ArgumentParser, load_inputs_help: str, load_outputs_help: str | None,
                     save_outputs_help: str | None = None) -> None:
    """--save-inputs/--load-inputs/--save-outputs/--load-outputs (Polygraphy's JSON) and
    --save-trtexec-inputs (raw files for trtexec --loadInputs); ``load_outputs_help`` None: the
    command compares no outputs (bench), so no --load-outputs; ``save_outputs_help`` says what
    its --save-outputs holds when that differs from every backend's outputs."""
    g = p.add_argument_group("inputs and outputs for Polygraphy and trtexec")
    path = value_type(_nonempty, "path")
    g.add_argument("--save-inputs", type=path, metavar="JSON",
                   help="write the inputs fed, in Polygraphy's format (polygraphy run --load-inputs)")
    g.add_argument("--load-inputs", type=path, metavar="JSON", help=load_inputs_help)
    if load_outputs_help is not None or save_outputs_help is not None:
        g.add_argument("--save-outputs", type=path, metavar="JSON", help=save_outputs_help or
                       "write every backend's outputs as Polygraphy RunResults (polygraphy run --load-outputs)")
    if load_outputs_help is not None:
        g.add_argument("--load-outputs", type=path, metavar="JSON", help=load_outputs_help)
    g.add_argument("--save-trtexec-inputs", type=path, metavar="DIR",
                   help="write each input as a raw binary file NAME.ITER.bin in DIR, and DIR/trtexec.txt with the "
                        "matching trtexec --loadInputs/--shapes flags")
