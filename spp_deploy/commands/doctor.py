"""``spp-deploy doctor``: what this machine has for each backend."""

from __future__ import annotations


def run(args) -> int:
    from ..doctor import collect

    rows = collect()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def register(sub) -> None:
    sub.add_parser("doctor", help="versions of torch, onnx, onnxruntime, TensorRT, CUDA, GPU and the plugin").set_defaults(func=run)
