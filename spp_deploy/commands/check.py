"""``spp-deploy check --target tensorrt``: static lint of an ONNX file against onnx-tensorrt's
documented operator support."""

from __future__ import annotations

from .args import add_json_arg
from .common import emit_json, json_output


def run(args) -> int:
    json_path, human = json_output(args)
    with human:
        code, report = _check(args)
    emit_json(json_path, report)
    return code


def _check(args) -> tuple[int, dict]:
    from ..runtime.trt.build import load_onnx
    from ..runtime.trt.lint import errors, lint_tensorrt

    model, _ = load_onnx(args.onnx)
    findings = lint_tensorrt(model)
    shown = [f for f in findings if args.verbose or f.severity != "info"]
    for f in shown:
        print(f.line())
    bad = errors(findings)
    warn = sum(f.severity == "warning" for f in findings)
    nodes = len(model.graph.node)
    report = {"file": args.onnx, "target": args.target, "passed": not bad, "nodes": nodes, "errors": len(bad),
              "warnings": warn, "findings": [f.as_dict() for f in findings]}
    if bad:
        print(f"FAILED: {len(bad)} node(s) TensorRT cannot parse, {warn} warning(s) ({nodes} nodes checked)")
        return 1, report
    print(f"PASSED: {nodes} nodes checked for TensorRT, {warn} warning(s)")
    return 0, report


def register(sub) -> None:
    p = sub.add_parser("check", help="lint an ONNX file for a deployment target (TensorRT operator support)")
    p.add_argument("onnx", help="ONNX file")
    p.add_argument("--target", default="tensorrt", choices=["tensorrt"], help="deployment target (default: tensorrt)")
    add_json_arg(p, "the findings")
    p.set_defaults(func=run)
