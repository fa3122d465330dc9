"""``spp-deploy build``: ONNX -> TensorRT engine (trtexec-style shapes), with an engine cache."""

from __future__ import annotations

from .args import add_force_arg, add_json_arg, add_output_arg
from .common import output_path, run_with_report
from .console import status
from .option_groups import add_build_options, build_options


def run(args) -> int:
    return run_with_report(args, _build)


def _build(args) -> dict:
    from ..runtime.trt.build import build_engine

    out = output_path(args, args.output, "output")
    output_path(args, str(out) + ".json", "engine metadata")
    with status(f"building a TensorRT engine from {args.onnx}"):
        res = build_engine(args.onnx, out, options=build_options(args))
    m = res.meta
    if res.note:
        print(f"note: {res.note}")
    how = "from the engine cache" if res.cache_hit else f"in {res.seconds:.1f}s"
    print(f"built {res.path} {how} (TensorRT {m.tensorrt}, {m.gpu} cc {m.compute_capability}, {m.precision}"
          f"{', SPP plugin ' + m.plugin if m.plugin else ''}; cache key {res.cache_key[:16]})")
    from ..runtime.trt.metadata import META_SUFFIX

    return {"engine": str(res.path), "metadata": str(res.path) + META_SUFFIX, "cache_hit": res.cache_hit,
            "cache_key": res.cache_key, "seconds": res.seconds, "note": res.note, "tensorrt": m.tensorrt,
            "gpu": m.gpu, "compute_capability": m.compute_capability, "precision": m.precision, "plugin": m.plugin,
            "profiles": m.profiles}


def register(sub) -> None:
    p = sub.add_parser("build", help="build a TensorRT engine from an ONNX file "
                                     "(needs TensorRT and Polygraphy: the tensorrt extra)")
    p.add_argument("onnx", help="ONNX file (from `spp-deploy export`)")
    add_output_arg(p, "engine file to write (metadata goes to OUTPUT.json); trtexec: --saveEngine", required=True,
                   aliases=("--saveEngine",))
    add_build_options(p)
    add_json_arg(p, "the engine built (paths, TensorRT, GPU, precision, profiles)")
    add_force_arg(p)
    p.set_defaults(func=run)
