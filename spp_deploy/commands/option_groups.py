"""The command-line groups that build the library's options objects (as Polygraphy's
``tools/args`` groups parse into loaders): ``add_export_options`` adds the export flags a command
takes and ``export_options`` builds the ``ExportOptions`` from what was parsed, so ``export``,
``bench`` (its temporary export) and ``export-detector`` say and read the same flags once; the
same for ``build`` (``BuildOptions``) and ``validate`` (``ValidateOptions``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from .args import (add_backends_arg, add_dynamic_arg, add_onnx_export_args, add_plugin_arg, add_precision_arg,
                   add_recognition_args, add_seed_arg, add_sweep_args, positive_int, value_type)

EXPORT_FIELDS = "_export_fields"  # the parser default naming the ExportOptions fields a command's flags give


def _add_sizes(p: argparse.ArgumentParser, **_: Any) -> None:
    add_sweep_args(p, "parity sizes (B defaults to 1; default: an automatic sweep)", None, None)


def _add_no_check(p: argparse.ArgumentParser, **_: Any) -> None:
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")


def _add_recognition(p: argparse.ArgumentParser, **_: Any) -> None:
    add_recognition_args(p, "keep ultralytics SPP as parallel pools (no SPPF rewrite)")


def _add_no_recognize(p: argparse.ArgumentParser, **_: Any) -> None:
    p.add_argument("--no-recognize", action="store_true", help="export the model as is: no SPP layer rewrite")


def _add_impl(p: argparse.ArgumentParser, purpose: str = "") -> None:
    add_onnx_export_args(p, purpose)


# field -> (the flags that give it, added once per group of fields; its value from the namespace)
_EXPORT_FLAGS: dict[str, tuple[Callable[..., None] | None, Callable[[argparse.Namespace], Any]]] = {
    "dynamic": (lambda p, **_: add_dynamic_arg(p), lambda a: a.dynamic),
    "opset": (_add_impl, lambda a: a.opset),
    "spp_impl": (_add_impl, lambda a: a.spp_impl),
    "precision": (lambda p, **_: add_precision_arg(p), lambda a: a.precision),
    "sizes": (_add_sizes, lambda a: a.sizes),  # [B]xHxW; no B: batch 1 (ExportOptions makes it so)
    "check_parity": (_add_no_check, lambda a: not a.no_check),
    "spp_layers": (_add_recognition, lambda a: dict(a.spp_layer) if a.spp_layer else None),
    "sppf": (_add_recognition, lambda a: not a.no_sppf),
    "tabulate_limit": (_add_recognition, lambda a: a.tabulate_limit),
    "recognize": (_add_no_recognize, lambda a: not a.no_recognize),
    "force": (None, lambda a: a.force),  # every command's own --force (commands.args.add_force_arg)
}
ALL_EXPORT_FIELDS = tuple(_EXPORT_FLAGS)
BENCH_EXPORT_FIELDS = ("opset", "spp_impl", "spp_layers", "sppf", "tabulate_limit", "recognize")
DETECTOR_EXPORT_FIELDS = ("opset", "spp_impl", "check_parity", "force")


def add_export_options(p: argparse.ArgumentParser, fields: Sequence[str] = ALL_EXPORT_FIELDS,
                       purpose: str = "") -> None:
    """The flags giving ``fields`` of ``ExportOptions`` (``purpose``: said after --opset/--spp-impl's help)."""
    added = set()
    for name in fields:
        add = _EXPORT_FLAGS[name][0]
        if add is not None and add not in added:
            add(p, purpose=purpose)
            added.add(add)
    p.set_defaults(**{EXPORT_FIELDS: tuple(fields)})


def export_options(args: argparse.Namespace, **given: Any):
    """The ``ExportOptions`` the command's export flags say, with ``given`` (values the command
    fixes, e.g. ``progress``) on top; fields the command has no flag for keep their defaults."""
    from ..options import ExportOptions

    values = {name: _EXPORT_FLAGS[name][1](args) for name in getattr(args, EXPORT_FIELDS)}
    return ExportOptions(**{**values, **given})


def add_build_options(p: argparse.ArgumentParser) -> None:
    """The flags giving ``BuildOptions`` (trtexec's spellings as aliases)."""
    p.add_argument("--min-shape", "--minShapes", help="trtexec syntax: input:1x3x64x64[,other:...]")
    p.add_argument("--opt-shape", "--optShapes", help="trtexec syntax: input:1x3x224x224")
    p.add_argument("--max-shape", "--maxShapes", help="trtexec syntax: input:8x3x1024x1024")
    p.add_argument("--fp16", action="store_true",
                   help="half precision (TensorRT 10, fp32 file: BuilderFlag.FP16; an fp16 file is built strongly "
                        "typed and needs no flag; TensorRT 11: needs an fp16 ONNX, "
                        "`spp-deploy export --precision fp16`)")
    add_plugin_arg(p)
    p.add_argument("--timing-cache", "--timingCacheFile",
                   help="timing cache file (read if present, written after the build)")
    p.add_argument("--workspace", type=float, help="workspace memory pool limit in GiB")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not fill the engine cache")


def build_options(args: argparse.Namespace):
    """The ``BuildOptions`` of ``add_build_options``' flags."""
    from ..options import BuildOptions

    return BuildOptions(min_shape=args.min_shape, opt_shape=args.opt_shape, max_shape=args.max_shape, fp16=args.fp16,
                        plugin=args.plugin, timing_cache=args.timing_cache, workspace_gib=args.workspace,
                        use_cache=not args.no_cache)


def _tolerances(text: str):
    from ..runtime.validate import parse_tolerances

    return parse_tolerances(text)


def add_validate_options(p: argparse.ArgumentParser) -> None:
    """The flags giving ``ValidateOptions`` (the plugin comes with the model files' flags)."""
    from ..runtime.backends import BACKENDS, MODEL_BACKENDS

    add_backends_arg(p, BACKENDS, None, "ort-cpu with --onnx, plus trt with --engine")
    p.add_argument("--reference", default="torch", choices=[b for b in MODEL_BACKENDS if b in BACKENDS],
                   help="reference backend")
    add_sweep_args(p, "sizes; B missing: each --batch size (default 64x64,131x517,2x224x224)",
                   "COUNT random sizes (default 6), both ends included, square or not (seeded)",
                   "batch sizes for sizes without an explicit B (default 1)")
    p.add_argument("--channels", type=positive_int,
                   help="input channels (models outside the zoo; default: first Conv2d)")
    add_seed_arg(p, "random input and size-range")
    tol = value_type(_tolerances, "tolerance")
    p.add_argument("--atol", type=tol, help="absolute tolerance, or per output: output:1e-5,...")
    p.add_argument("--rtol", type=tol, help="tolerance relative to the reference's largest magnitude, or per output")


def validate_options(args: argparse.Namespace, backends: Sequence[str], default_sizes: bool = True):
    """The ``ValidateOptions`` of ``add_validate_options``' flags for the resolved ``backends``;
    without --sizes, the library's default sizes, or none (``default_sizes`` False: real inputs
    or a --size-range are given instead)."""
    from ..options import ValidateOptions

    if args.sizes:
        sizes = tuple((h, w) if b is None else (b, h, w) for b, h, w in args.sizes)
    else:
        sizes = ValidateOptions.sizes if default_sizes else ()
    return ValidateOptions(backends=tuple(backends), sizes=sizes, batch=tuple(args.batch or (1,)),
                           channels=args.channels, rtol=args.rtol or None, atol=args.atol or None, seed=args.seed,
                           reference=args.reference, plugin=args.plugin)
