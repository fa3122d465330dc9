"""``spp-deploy demo``: the main job (export, validate, benchmark a zoo model on ORT CPU)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .args import add_force_arg, add_model_arg
from .common import output_path


def run(args) -> int:
    from ..demo import run_demo

    if not args.model.startswith("zoo:"):
        raise UserError(f"the demo runs zoo models: give --model zoo:NAME, not {args.model!r} (list: spp-deploy zoo)")
    name = args.model[4:]
    out_dir = Path(args.out_dir)
    if not args.out_dir.strip() or out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out-dir {args.out_dir!r} is not a directory")
    if out_dir.is_dir():
        output_path(args, out_dir / f"{name}.onnx", "output")
    return run_demo(out_dir, name)


def register(sub) -> None:
    p = sub.add_parser("demo", help="export, validate and benchmark a zoo model on ONNX Runtime CPU")
    add_model_arg(p, required=False, default="zoo:sppnet-zf5", help="a zoo model, zoo:NAME (default zoo:sppnet-zf5)")
    p.add_argument("--out-dir", default="spp-deploy-demo", help="directory for the exported model (created if missing)")
    add_force_arg(p)
    p.set_defaults(func=run)
