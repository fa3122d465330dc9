"""``spp-deploy export``: PyTorch model -> parity-checked ONNX with dynamic batch/height/width."""

from __future__ import annotations

import time

from .args import (add_dynamic_arg, add_force_arg, add_input_shape_arg, add_model_args, add_onnx_export_args,
                   add_output_arg, add_precision_arg, add_recognition_args, add_sweep_args)
from .common import allocation_errors, input_shape, load_model_from_args, output_path, print_parity


def run(args) -> int:
    import torch

    from ..deploy import export_onnx

    out = output_path(args, args.output, "output")
    dynamic = args.dynamic
    sizes = [(b or 1, h, w) for b, h, w in args.sizes] if args.sizes else None
    declared = dict(args.spp_layer or [])
    model = load_model_from_args(args)
    shape = input_shape(args)
    with allocation_errors(shape):
        t0 = time.perf_counter()
        res = export_onnx(
            model, torch.randn(*shape), out, dynamic=dynamic, opset=args.opset, spp_impl=args.spp_impl,
            check_parity=not args.no_check, sizes=sizes, recognize=not args.no_recognize, sppf=not args.no_sppf,
            spp_layers=declared, precision=args.precision, tabulate_limit=args.tabulate_limit, force=args.force,
        )
    print(f"exported {res.path} ({_layer_count(res)}, spp-impl {args.spp_impl}, "
          f"dynamic {','.join(dynamic) or 'none'}) in {time.perf_counter() - t0:.1f}s")
    for r in res.layers:
        rule = f" {r.config.rule} {r.config.mode} levels {list(r.config.levels)}" if r.config else ""
        print(f"  {r.path}: {r.kind}{rule}: {r.action}" + (f" ({r.reason})" if r.reason and not r.rewrites else ""))
        if r.table is not None:
            from ..recognize.tabulate import legal_text

            st = r.tabulate_stats
            print(f"    legal: {legal_text(r.table)}; probed in {st.get('seconds', 0):.1f}s "
                  f"({st.get('calls', 0)} calls)")
    if args.no_check:
        from .console import warn

        warn(f"{res.path} was not verified against PyTorch (--no-check)")
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


def register(sub) -> None:
    p = sub.add_parser("export", help="export a PyTorch SPP model to ONNX (dynamic batch/height/width)")
    add_model_args(p)
    add_input_shape_arg(p)
    add_dynamic_arg(p)
    add_onnx_export_args(p)
    add_precision_arg(p)
    add_sweep_args(p, "parity sizes (B defaults to 1; default: an automatic sweep)", None, None)
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    add_recognition_args(p, "keep ultralytics SPP as parallel pools (no SPPF rewrite)")
    p.add_argument("--no-recognize", action="store_true", help="export the model as is: no SPP layer rewrite")
    add_output_arg(p, "output .onnx path", required=True)
    add_force_arg(p)
    p.set_defaults(func=run)
