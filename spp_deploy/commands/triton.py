"""``spp-deploy triton``: a Triton Inference Server model repository for an exported ONNX file or a
TensorRT engine (config.pbtxt written through Triton's own ModelConfig message)."""

from __future__ import annotations

from pathlib import Path

from ..util.constants import DEFAULT_TRITON_MAX_BATCH, TRITON_KINDS
from ..util.errors import UserError
from .args import add_json_arg, add_model_file_args
from .common import run_with_report


def run(args) -> int:
    return run_with_report(args, _triton)


def _triton(args) -> dict:
    from ..api import triton_repository
    from ..triton.repository import check_repository, server_command
    from ..triton.schema import model_config_pb2

    if (args.onnx is None) == (args.engine is None):
        raise UserError("give exactly one of --onnx (served by ONNX Runtime) or --engine (served by TensorRT)")
    if args.onnx and args.plugin:
        raise UserError("--plugin is for --engine: Triton's ONNX Runtime backend runs a plugin-mode ONNX file as is "
                        "(its SPP nodes carry a model-local function)")
    if args.instances < 1:
        raise UserError(f"--instances must be >= 1, got {args.instances}")
    if args.max_batch is not None and args.max_batch < 0:
        raise UserError(f"--max-batch must be >= 0, got {args.max_batch}")
    if args.engine and args.kind == "cpu":
        raise UserError("--kind cpu: a TensorRT plan runs on a GPU only "
                        "(Triton's TensorRT backend has no CPU instances)")
    check_repository(args.output, args.name, args.force)  # the output first: before any input is looked at
    model_config_pb2()
    for flag, value in (("--onnx", args.onnx), ("--engine", args.engine), ("--plugin", args.plugin)):
        if value and not Path(value).is_file():
            raise UserError(f"{flag} file not found: {value}")
    try:
        made = triton_repository(args.output, args.name, onnx=args.onnx, engine=args.engine, plugin=args.plugin,
                                 max_batch=args.max_batch, instances=args.instances, kind=args.kind, force=args.force)
    except UserError as e:
        if "max batch size" not in str(e):
            raise
        raise UserError(str(e).replace("max batch size", "--max-batch", 1)) from None
    repo, out, config, io, max_batch = made.repository, made.written, made.config, made.io, made.max_batch
    batching = (f"max_batch_size {max_batch}, dynamic batching" if max_batch
                else "max_batch_size 0 (no implicit batch dim)")
    pb2 = model_config_pb2()
    group = config.instance_group[0]
    kind = pb2.ModelInstanceGroup.Kind.Name(group.kind)
    print(f"wrote {out.model_dir} ({config.platform}, {batching}, {group.count} instance(s) {kind})")
    for f in out.files:
        print(f"  {f.relative_to(repo)}")
    tensors_json: dict = {"inputs": [], "outputs": []}
    for role, tensors in (("input", config.input), ("output", config.output)):
        for t in tensors:
            dims = ["B"] * (max_batch > 0) + [str(d) if d > 0 else "-1" for d in t.dims]
            print(f"  {role} {t.name}: {pb2.DataType.Name(t.data_type)} [{', '.join(dims)}]")
            tensors_json[role + "s"].append({"name": t.name, "data_type": pb2.DataType.Name(t.data_type),
                                             "dims": list(t.dims)})
    if io.kind == "engine" and io.tensorrt:
        print(f"  built with TensorRT {io.tensorrt} (its metadata): serve it with a tritonserver release "
              "whose TensorRT is that version")
    if io.kind == "onnx" and io.plugin_mode:
        print("  plugin-mode ONNX: Triton's ONNX Runtime backend runs its SPP nodes through their model-local function")
    print(f"server command (see {out.readme}):")
    print(f"  {server_command(repo)}  # in the tritonserver container, {repo} mounted at /models")
    return {"repository": str(repo), "model": args.name, "model_dir": str(out.model_dir), "platform": config.platform,
            "max_batch_size": max_batch, "dynamic_batching": bool(max_batch),
            "instances": {"count": group.count, "kind": kind}, "files": [str(f.relative_to(repo)) for f in out.files],
            **tensors_json, "readme": str(out.readme), "server_command": server_command(repo)}


def _nonneg(text: str) -> int:
    import argparse

    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def register(sub) -> None:
    p = sub.add_parser("triton", help="write a Triton Inference Server model repository for an ONNX file or engine")
    p.add_argument("-o", "--output", required=True, metavar="REPO",
                   help="model repository directory (created if missing)")
    p.add_argument("--name", required=True, help="model name: the directory REPO/NAME and the name clients use")
    add_model_file_args(p, onnx_help="ONNX file: served by Triton's ONNX Runtime backend (platform onnxruntime_onnx)",
                        engine_help="TensorRT engine: served by Triton's TensorRT backend (platform tensorrt_plan)",
                        plugin_help="--engine: the SPP plugin library a plugin-mode engine needs, copied into the "
                                    "repository (default: the one its ENGINE.json metadata names)")
    p.add_argument("--max-batch", type=_nonneg, metavar="N",
                   help="max_batch_size (0: no implicit batch dim; default: the engine profile's largest batch, "
                        f"{DEFAULT_TRITON_MAX_BATCH} for an ONNX file, 0 when the first dims are no batch dim)")
    p.add_argument("--instances", type=_nonneg, default=1, metavar="K", help="model instances (default 1)")
    p.add_argument("--kind", choices=TRITON_KINDS, default="auto",
                   help="instance kind (default auto: GPU when the server has one; engines: gpu)")
    p.add_argument("--force", action="store_true", help="replace a model of the same name in the repository")
    add_json_arg(p, "the model written (files, platform, batching, tensors, server command)")
    p.set_defaults(func=run)
