"""``spp-deploy`` command line. User mistakes become one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import UserError


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="zoo:NAME, module.path:factory or path/file.py:factory")
    p.add_argument("--model-kwargs", help="JSON object passed to the factory")
    p.add_argument("--weights", help="state dict / checkpoint, loaded with torch.load(weights_only=True)")


def _load(args):
    from .loading import load_model, parse_kwargs

    return load_model(args.model, parse_kwargs(args.model_kwargs), args.weights)


def _default_shape(args) -> str:
    if args.input_shape:
        return args.input_shape
    if args.model.startswith("zoo:"):
        from .zoo import get_entry

        return "x".join(map(str, get_entry(args.model[4:]).input_shape))
    raise UserError("--input-shape is required for models outside the zoo (e.g. 1x3x224x224)")


def _parse_sizes(text: str | None):
    if not text:
        return None
    from .loading import parse_shape

    out = []
    for item in text.split(","):
        dims = parse_shape(item)
        if len(dims) == 2:
            dims = (1, *dims)
        if len(dims) != 3:
            raise UserError(f"bad size {item!r} in --sizes: expected HxW or BxHxW")
        out.append(dims)
    return out


def _print_parity(reports) -> None:
    for r in reports:
        shape = "x".join(map(str, r.shape))
        if r.skipped:
            print(f"  {shape:>18}  skipped: {r.skipped}")
        else:
            c = r.comparison
            print(f"  {shape:>18}  PASSED  max abs {c.max_abs:.2e}  max rel {c.max_rel:.2e}  cos {c.cosine:.8f}")


def cmd_export(args) -> int:
    import torch

    from .export import export_onnx
    from .loading import parse_input_shape
    from .runtime.compare import source_error

    out = Path(args.output)
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    dynamic = [d.strip() for d in args.dynamic.split(",") if d.strip()]
    sizes = _parse_sizes(args.sizes)
    model = _load(args)
    shape = parse_input_shape(_default_shape(args))
    why = source_error(model, shape)
    if why:
        raise UserError(f"the model cannot run at input shape {'x'.join(map(str, shape))}: {why}")
    t0 = time.perf_counter()
    res = export_onnx(
        model, torch.randn(*shape), out, dynamic=dynamic, opset=args.opset, spp_impl=args.spp_impl,
        check_parity=not args.no_check, sizes=sizes,
    )
    print(f"exported {res.path} ({res.spp_layers} SPP layer(s), spp-impl {args.spp_impl}, "
          f"dynamic {','.join(dynamic) or 'none'}) in {time.perf_counter() - t0:.1f}s")
    if res.parity:
        print("parity, ONNX Runtime CPU vs PyTorch:")
        _print_parity(res.parity)
    return 0


def cmd_zoo(args) -> int:
    from .zoo import ZOO

    for e in ZOO.values():
        print(f"zoo:{e.name:<18} input {'x'.join(map(str, e.input_shape)):<14} {e.source}; sizes: {e.input_rule}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(Path(args.out_dir), args.model)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spp-deploy", description="Deploy Spatial Pyramid Pooling models to ONNX and TensorRT.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a PyTorch SPP model to ONNX (dynamic batch/height/width)")
    _model_args(p)
    p.add_argument("--input-shape", help="example input BxCxHxW (zoo models have a default)")
    p.add_argument("--dynamic", default="batch,height,width", help="dynamic axes (default: batch,height,width)")
    p.add_argument("--opset", type=int, default=20)
    p.add_argument("--spp-impl", default="standard", choices=None, help="standard (ONNX ops) or plugin (TensorRT node)")
    p.add_argument("--sizes", help="parity sizes HxW or BxHxW, comma separated (default: automatic sweep)")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    p.add_argument("-o", "--output", required=True, help="output .onnx path")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("zoo", help="list the built-in seed models")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("demo", help="export, validate and benchmark a zoo model on ONNX Runtime CPU")
    p.add_argument("--model", default="sppnet-zf5", help="zoo model name")
    p.add_argument("--out-dir", default="spp-deploy-demo")
    p.set_defaults(func=cmd_demo)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"spp-deploy: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("spp-deploy: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
