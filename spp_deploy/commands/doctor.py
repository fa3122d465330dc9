"""``spp-deploy doctor``: what this machine has for each backend."""

from __future__ import annotations

from .args import add_json_arg
from .common import emit_json, json_output


def run(args) -> int:
    from .doctor_checks import collect

    json_path, human = json_output(args)
    with human:
        rows = collect()
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    emit_json(json_path, {"checks": [{"name": k, "value": v} for k, v in rows]})
    return 0


def register(sub) -> None:
    p = sub.add_parser("doctor", help="versions of torch, onnx, onnxruntime, TensorRT, CUDA, GPU and the plugin")
    add_json_arg(p, "the checks")
    p.set_defaults(func=run)
