"""``spp-deploy detect``: SPP-net detection features (fc7 per window) for one image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..util.errors import UserError
from ..runtime.backends import BACKENDS, REGISTRY
from .args import (_nonempty, add_force_arg, add_json_arg, add_model_args, add_model_file_args, add_output_arg,
                   value_type)
from .common import allocation_errors, output_path, require_backends, run_with_report
from .console import status

DETECT_BACKENDS = tuple(b for b in BACKENDS if REGISTRY[b].variant != "fp64")  # a float64 model runs no detector


def _scales(text: str) -> list[int]:
    from ..detection.scales import normalize_scales

    return normalize_scales(text)


def run(args) -> int:
    return run_with_report(args, _detect)


def _detect(args) -> dict:
    from ..detection.boxes import load_boxes
    from ..detection.pipeline import RunnerStages, TorchStages, detect, load_image

    backend = args.backend or ("trt" if args.engine else "ort-cpu" if args.onnx else "torch")
    if backend not in DETECT_BACKENDS:
        raise UserError(f"detect runs on {', '.join(DETECT_BACKENDS)}, not {backend}")
    if backend == "torch" and not args.model:
        raise UserError("backend torch needs --model")
    if backend != "torch" and not args.onnx:
        raise UserError(f"backend {backend} needs --onnx DIR (written by export-detector)")
    if backend == "trt" and not args.engine:
        raise UserError("backend trt needs --engine (the trunk's engine, built from DIR/trunk.onnx)")
    out = output_path(args, args.output, "output")
    image = load_image(args.image)
    boxes = load_boxes(args.windows)
    require_backends([backend])
    if backend == "torch":
        from .common import load_model_from_args

        stages = TorchStages(load_model_from_args(args))
    else:
        for flag, path in (("--engine", args.engine), ("--head-engine", args.head_engine)):
            if path and not Path(path).is_file():
                raise UserError(f"{flag} file not found: {path}")
        stages = RunnerStages(args.onnx, backend, engine=args.engine, head_engine=args.head_engine, plugin=args.plugin)
    timings: dict = {}
    with status(f"detecting: {len(boxes)} window(s) on {args.image} ({backend})"), stages, \
            allocation_errors(image.shape):
        feats = detect(image, boxes, stages, args.scales, timings=timings)
    H, W = image.shape[:2]
    print(f"{backend}: image {H}x{W}, {len(boxes)} windows, scales {','.join(map(str, args.scales))} -> "
          f"features {'x'.join(map(str, feats.shape))} ({feats.dtype}); trunk {timings.get('trunk', 0):.3f}s, "
          f"windows + fc {timings.get('head', 0):.3f}s")
    if backend == "trt" and not args.head_engine:
        print("  (head ran in ONNX Runtime CPU: TensorRT has no float64 for the exact projection; an engine "
              "built with a window-SPP plugin goes in --head-engine)")
    if out is not None:
        from ..util.fileio import atomic_write

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, feats)

        atomic_write(out, save)
        print(f"wrote {out}")
    head = "ort-cpu" if backend == "trt" and not args.head_engine else backend
    return {"backend": backend, "head_backend": head, "image": [H, W], "windows": len(boxes),
            "scales": list(args.scales), "features": list(feats.shape), "dtype": str(feats.dtype),
            "seconds": {"trunk": timings.get("trunk", 0.0), "head": timings.get("head", 0.0)},
            "output": str(out) if out is not None else None}


def register(sub) -> None:
    p = sub.add_parser("detect", help="SPP-net detection features (fc7 per window) for one image")
    add_model_args(p, required=False)
    add_model_file_args(p, onnx_help="directory written by export-detector (ort-* backends; trt: the head)",
                        engine_help="TensorRT engine of the trunk (backend trt)")
    p.add_argument("--head-engine", type=value_type(_nonempty, "path"),
                   help="TensorRT engine of the head (needs a window SPP plugin; default: the head runs in "
                        "ONNX Runtime CPU)")
    p.add_argument("--backend", choices=BACKENDS, help=f"one of {', '.join(DETECT_BACKENDS)}; default: trt with "
                                                       "--engine, else ort-cpu with --onnx, else torch")
    p.add_argument("--image", required=True, help="image file (needs Pillow) or an H x W x 3 RGB .npy array (0..255)")
    p.add_argument("--windows", required=True, help="boxes x1,y1,x2,y2 (1-based inclusive pixels): .csv, .json or .npy")
    p.add_argument("--scales", type=value_type(_scales, "scales"), default=[688],
                   help="shorter-side scales, comma separated (default 688; five-scale: 480,576,688,874,1200)")
    add_output_arg(p, "write the features [R, D] to this .npy file")
    add_json_arg(p, "a summary (windows, scales, feature shape, timings)")
    add_force_arg(p)
    p.set_defaults(func=run)
