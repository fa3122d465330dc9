"""``spp-deploy export``: PyTorch model -> parity-checked ONNX with dynamic batch/height/width."""

from __future__ import annotations

import time

from ..util.errors import UserError
from .args import add_force_arg, add_input_shape_arg, add_json_arg, add_model_args, add_output_arg
from .common import (allocation_errors, input_shape, load_model_from_args, output_path, print_parity,
                     run_with_report)
from .console import status
from .option_groups import add_export_options, export_options


def run(args) -> int:
    return run_with_report(args, _export)


def _export(args) -> dict:
    import torch

    from ..checked_export import export_onnx

    out = output_path(args, args.output, "output")
    if args.strip_functions and args.spp_impl != "plugin":
        raise UserError("--strip-functions needs --spp-impl plugin: only plugin-mode files hold SPP function bodies")
    dynamic = args.dynamic
    model = load_model_from_args(args)
    shape = input_shape(args)
    with allocation_errors(shape), status(f"exporting {args.model} (recognise SPP layers, trace, check parity)") as step:
        t0 = time.perf_counter()
        res = export_onnx(model, torch.randn(*shape), out,
                          export_options(args, progress=lambda text: step(f"parity {text}")))
    seconds = time.perf_counter() - t0
    print(f"exported {res.path} ({_layer_count(res)}, spp-impl {args.spp_impl}, "
          f"dynamic {','.join(dynamic) or 'none'}, route {res.route}) in {seconds:.1f}s")
    for route, why in res.failures:
        print(f"  {route} route not used: {why}")
    for r in res.layers:
        rule = f" {r.config.rule} {r.config.mode} levels {list(r.config.levels)}" if r.config else ""
        print(f"  {r.path}: {r.kind}{rule}: {r.action}" + (f" ({r.reason})" if r.reason and not r.rewrites else ""))
        if r.table is not None:
            from ..recognize.table_probe import legal_text

            st = r.tabulate_stats
            print(f"    legal: {legal_text(r.table)}; probed in {st.get('seconds', 0):.1f}s "
                  f"({st.get('calls', 0)} calls)")
    if args.strip_functions:
        print(f"  {strip_spp_bodies(res.path)} SPP function body/bodies stripped: for TensorRT's parser as is "
              "(trtexec --dynamicPlugins, Polygraphy); ONNX Runtime cannot run this file")
    if args.no_check:
        from .console import warn

        warn(f"{res.path} was not verified against PyTorch (--no-check)")
    if res.parity:
        print("parity, ONNX Runtime CPU vs PyTorch:")
        print_parity(res.parity)
    return export_report(res, args, dynamic, seconds)


def export_report(res, args, dynamic, seconds: float) -> dict:
    """``export --json``: the file, how it was made, each SPP layer, each parity size."""
    layers = [{"path": r.path, "kind": r.kind, "how": r.how, "rule": r.rule,
               "mode": r.config.mode if r.config else None, "levels": list(r.config.levels) if r.config else None,
               "action": r.action, "reason": r.reason or None} for r in res.layers]
    parity = []
    for r in res.parity:
        row = {"shape": list(r.shape), "status": "SKIPPED" if r.skipped else ("PASSED" if r.passed else "FAILED"),
               "skipped": r.skipped, "output": r.output}
        if r.comparison is not None:
            row.update({k: v for k, v in r.comparison.as_dict().items() if k in ("max_abs", "max_rel", "cosine")})
            row["outputs"] = {n: {k: v for k, v in c.as_dict().items() if k in ("max_abs", "max_rel", "passed")}
                              for n, c in r.outputs.items()}
        parity.append(row)
    return {"file": str(res.path), "spp_impl": args.spp_impl, "precision": args.precision, "opset": args.opset,
            "dynamic": list(dynamic), "seconds": round(seconds, 3), "spp_layers": res.spp_layers, "route": res.route,
            "routes_not_used": [{"route": r, "why": str(w)} for r, w in res.failures],
            "verified": not args.no_check, "layers": layers, "parity": parity}


def strip_spp_bodies(path) -> int:
    """Rewrite the file without its SPP function bodies (atomically; external data left where it
    is); returns how many were removed."""
    import onnx

    from ..contract import strip_functions
    from ..util.fileio import atomic_write

    model = onnx.load(path, load_external_data=False)
    stripped = strip_functions(model)
    atomic_write(path, lambda tmp: onnx.save(stripped, str(tmp)))
    return len(model.functions) - len(stripped.functions)


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
    add_export_options(p)
    p.add_argument("--strip-functions", action="store_true",
                   help="plugin mode: write the file without the SPP function bodies, as trtexec and Polygraphy's "
                        "TensorRT parser take it (after the parity check; ONNX Runtime cannot run the result)")
    add_output_arg(p, "output .onnx path", required=True)
    add_json_arg(p, "the file, its SPP layers and the parity rows")
    add_force_arg(p)
    p.set_defaults(func=run)
