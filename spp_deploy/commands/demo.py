"""``spp-deploy demo``: the main job (export, validate, benchmark a zoo model on ORT CPU)."""

from __future__ import annotations

from pathlib import Path


def run(args) -> int:
    from ..demo import run_demo

    return run_demo(Path(args.out_dir), args.model)


def register(sub) -> None:
    p = sub.add_parser("demo", help="export, validate and benchmark a zoo model on ONNX Runtime CPU")
    p.add_argument("--model", default="sppnet-zf5", help="zoo model name")
    p.add_argument("--out-dir", default="spp-deploy-demo")
    p.set_defaults(func=run)
