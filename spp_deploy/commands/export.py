"""``spp-deploy export``: PyTorch model -> parity-checked ONNX with dynamic batch/height/width."""

from __future__ import annotations

import time

from ..errors import UserError
from ..recognize.config import parse_declaration
from .common import (add_force_arg, add_model_args, add_tabulate_arg, allocation_errors, default_input_shape,
                     load_model_from_args, output_path, parse_sizes, print_parity)


def run(args) -> int:
    import torch

    from ..export import export_onnx
    from ..loading import parse_input_shape
    from ..runtime.compare import source_error

    out = output_path(args, args.output, "output")
    dynamic = [d.strip() for d in args.dynamic.split(",") if d.strip()]
    sizes = parse_sizes(args.sizes)
    # A given shape is checked before the model loads; the zoo default (or its absence) after.
    shape = parse_input_shape(default_input_shape(args)) if args.input_shape is not None else None
    declared = dict(parse_declaration(d) for d in args.spp_layer or [])
    model = load_model_from_args(args)
    shape = shape or parse_input_shape(default_input_shape(args))
    with allocation_errors(shape):
        why = source_error(model, shape)
        if why:
            why = _explain(model, shape, declared, args) or why
            raise UserError(f"the model cannot run at input shape {'x'.join(map(str, shape))}: {why}")
        t0 = time.perf_counter()
        res = export_onnx(
            model, torch.randn(*shape), out, dynamic=dynamic, opset=args.opset, spp_impl=args.spp_impl,
            check_parity=not args.no_check, sizes=sizes, recognize=not args.no_recognize, sppf=not args.no_sppf,
            spp_layers=declared, precision=args.precision, tabulate_limit=args.tabulate_limit,
        )
    print(f"exported {res.path} ({_layer_count(res)}, spp-impl {args.spp_impl}, "
          f"dynamic {','.join(dynamic) or 'none'}) in {time.perf_counter() - t0:.1f}s")
    for r in res.layers:
        rule = f" {r.config.bins} {r.config.mode} levels {list(r.config.levels)}" if r.config else ""
        print(f"  {r.path}: {r.kind}{rule}: {r.action}" + (f" ({r.reason})" if r.reason and not r.rewrites else ""))
        if r.table is not None:
            from ..recognize.tabulate import legal_text

            st = r.tabulate_stats
            print(f"    legal: {legal_text(r.table)}; probed in {st.get('seconds', 0):.1f}s "
                  f"({st.get('calls', 0)} calls)")
    if args.no_check:
        import sys

        print(f"warning: {res.path} was not verified against PyTorch (--no-check)", file=sys.stderr)
    if res.parity:
        print("parity, ONNX Runtime CPU vs PyTorch:")
        print_parity(res.parity)
    return 0


def _layer_count(res) -> str:
    """Binned SPP layers, plus ultralytics SPP/SPPF blocks (stride-1 pools, not binned, so not
    in ``res.spp_layers``) said as such rather than counted as zero."""
    yolo = [r for r in res.layers if r.how == "yolo"]
    parts = [f"{res.spp_layers} SPP layer(s)"] if res.spp_layers or not yolo else []
    if yolo:
        sppf = sum(1 for r in yolo if r.sppf_k)
        parts.append(f"{len(yolo)} ultralytics SPP/SPPF block(s)" + (f", {sppf} rewritten to SPPF" if sppf else ""))
    return ", ".join(parts)


def _explain(model, shape, declared, args) -> str | None:
    """Name the bin rule and size when a recognized SPP layer is what breaks at ``shape``."""
    import torch

    from ..recognize import canonicalize
    from ..runtime.compare import source_error

    if args.no_recognize:
        return None
    x = torch.zeros(*shape)
    with canonicalize(model, x, declared, sppf=False) as (traced, reports):
        why = source_error(traced, shape)
    return why if why and "bin rule" in why else None


def register(sub) -> None:
    p = sub.add_parser("export", help="export a PyTorch SPP model to ONNX (dynamic batch/height/width)")
    add_model_args(p)
    p.add_argument("--input-shape", help="example input BxCxHxW (zoo models have a default)")
    p.add_argument("--dynamic", default="batch,height,width", help="dynamic axes (default: batch,height,width)")
    p.add_argument("--opset", type=int, default=20)
    p.add_argument("--spp-impl", default="standard", help="standard (ONNX ops) or plugin (one TensorRT plugin node)")
    p.add_argument("--sizes", help="parity sizes HxW or BxHxW, comma separated (default: automatic sweep)")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"], help="fp16: a float16 model (for TensorRT 11)")
    p.add_argument("--spp-layer", action="append", metavar="PATH=levels:4,2,1;bins=RULE;mode=MODE;order=ORDER",
                   help="declare the module at PATH an SPP layer with this config (repeatable)")
    p.add_argument("--no-sppf", action="store_true", help="keep ultralytics SPP as parallel pools (no SPPF rewrite)")
    p.add_argument("--no-recognize", action="store_true", help="export the model as is: no SPP layer rewrite")
    add_tabulate_arg(p)
    p.add_argument("-o", "--output", required=True, help="output .onnx path")
    add_force_arg(p)
    p.set_defaults(func=run)
