"""``spp-deploy inspect``: every SPP layer in a model, what it computes, where it is legal and
what export will do with it (table, or ``--json``)."""

from __future__ import annotations

import json

from .args import add_force_arg, add_input_shape_arg, add_json_arg, add_model_args, add_recognition_args
from .common import allocation_errors, input_shape, json_output, load_model_from_args, write_json


def collect(args) -> dict:
    import torch

    from ..recognize import scan
    from ..recognize.ranges import illegal_inputs, legal_at_spp_input

    model = load_model_from_args(args)
    shape = input_shape(args)
    declared = dict(args.spp_layer or [])
    layers = []
    with allocation_errors(shape):
        x = torch.randn(*shape)
        for r in scan(model, x, declared, sppf=not args.no_sppf, tabulate_limit=args.tabulate_limit):
            d = r.as_dict()
            if r.table is not None:
                from ..recognize.table_probe import legal_text

                d["legal_at_spp_input"] = legal_text(r.table)
            if r.op_site is not None and r.op_site.spec is not None:
                from ..recognize.oplevel import legal_text

                d["legal_at_spp_input"] = legal_text(r.op_site)
            if r.config is not None:
                d["legal_at_spp_input"] = legal_at_spp_input(r.config, r.spp_input[0] if r.spp_input else None)
                d["illegal_model_input"] = illegal_inputs(model, r, shape)
            layers.append(d)
        route = export_route(model, x, declared, not args.no_sppf, args.tabulate_limit)
    return {"model": args.model, "input_shape": list(shape), "layers": layers, "export_route": route}


def export_route(model, x, declared: dict, sppf: bool, tabulate_limit) -> dict:
    """Which exporter traces the model (``route``; None: none does, ``refused`` says why) and
    why the routes before it did not (the export's parity check may still move on)."""
    from ..export import trace_routes
    from ..util.errors import UserError

    try:
        t = trace_routes(model, x, spp_layers=declared, sppf=sppf, tabulate_limit=tabulate_limit)
        route, failures, refused = t.route, t.failures, None
    except UserError as e:
        route, failures, refused = None, getattr(e, "route_failures", []), str(e)
    return {"route": route, "not_used": [{"route": r, "why": str(e)} for r, e in failures], "refused": refused}


def _route_text(route: dict) -> str:
    if route["route"] is None:
        return f"export route: none traces: {route['refused']}"
    why = "; ".join(f"{d['route']}: {d['why']}" for d in route["not_used"])
    return f"export route: {route['route']}" + (f" ({why})" if why else "")


def _illegal_text(d: dict, shape) -> str:
    ill = d.get("illegal_model_input")
    if not ill:
        return ""
    from ..recognize.ranges import compress

    parts = []
    for axis, other in (("H", f"W={shape[3]}"), ("W", f"H={shape[2]}")):
        bad = ill[axis]
        parts.append(f"{axis} ({other}): " + (f"illegal {compress(bad)}" if bad else "all legal") + f" of 1-{ill['up_to']}")
    return "; ".join(parts)


def run(args) -> int:
    json_path, _ = json_output(args, "--json file")
    info = collect(args)
    if json_path is not None:
        write_json(json_path, json.dumps(info, indent=2))
        if json_path != "-":
            print(f"wrote {json_path}")
        return 0
    from rich.console import Console
    from rich.table import Table

    shape = info["input_shape"]
    table = Table(title=f"SPP layers in {info['model']} (example input {'x'.join(map(str, shape))})",
                  show_lines=True)
    for col in ("path", "recognized", "levels", "rule", "mode", "order", "features", "legal sizes", "export"):
        table.add_column(col, overflow="fold")
    for d in info["layers"]:
        c = d["config"] or {}
        legal = d.get("legal_at_spp_input", d["reason"])
        if d.get("spp_input"):
            legal = f"at SPP input (example {d['spp_input'][0]}x{d['spp_input'][1]}): {legal}"
        model_in = _illegal_text(d, shape)
        if model_in:
            legal += f"\nmodel input: {model_in}"
        table.add_row(d["path"], f"{d['kind']} ({d['how']}, {d['status']})", ",".join(map(str, c.get("levels", []))),
                      d["rule"], c.get("mode", (d.get("table") or d.get("pool") or {}).get("mode", "-")),
                      c.get("order", (d.get("table") or {}).get("layout", "-")),
                      str(d["feature_size"] or "-"), legal, d["action"])
    console = Console(width=max(Console().width, 160))
    if info["layers"]:
        console.print(table)
    else:
        print("no SPP layer found")
    print(_route_text(info["export_route"]))
    return 0


def register(sub) -> None:
    p = sub.add_parser("inspect", help="list the SPP layers of a model: rule, legal sizes, export action")
    add_model_args(p)
    add_input_shape_arg(p)
    add_recognition_args(p, "report ultralytics SPP without the SPPF rewrite")
    add_json_arg(p, "the layers")
    add_force_arg(p)
    p.set_defaults(func=run)
