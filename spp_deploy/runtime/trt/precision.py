"""How a build treats precision (TensorRT 10 weak typing with ``BuilderFlag.FP16``, or strong
typing from an fp16 ONNX file) and the fp32 pinning of the `rounded` rule's bin-edge layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...contract import EDGE_F32_MARK
from ...util.errors import UserError


@dataclass(frozen=True)
class PrecisionPlan:
    """How a build treats precision, decided before TensorRT is asked anything."""

    strongly_typed: bool  # the network is created strongly typed (types come from the ONNX file)
    fp16_flag: bool  # BuilderFlag.FP16 is set (weakly typed TensorRT 10 with --fp16 only)
    precision: str  # "fp16" or "fp32": what the metadata records
    note: str | None = None  # said to the user (e.g. --fp16 ignored for an fp16 file)


def plan_precision(trt_major: int, has_fp16_flag: bool, onnx_fp16: bool, fp16: bool) -> PrecisionPlan:
    """TensorRT 11 (or a 10.x without ``BuilderFlag.FP16``) is always strongly typed; an fp16 ONNX
    file is built strongly typed on 10.x too. A strongly typed network must not get the FP16 flag
    (TensorRT rejects it), so ``--fp16`` is ignored for an fp16 file and refused for an fp32 file
    where only strong typing exists."""
    always_strong = trt_major >= 11 or not has_fp16_flag
    strong = always_strong or onnx_fp16
    if fp16 and strong and not onnx_fp16:
        raise UserError(
            f"TensorRT {trt_major}.x builds strongly typed networks: fp16 needs an fp16 ONNX file "
            "(export the model in fp16 precision)"
        )
    note = ("--fp16 ignored: the ONNX file is fp16, so the network is strongly typed and its types "
            "come from the file" if fp16 and strong else None)
    return PrecisionPlan(strong, fp16 and not strong, "fp16" if (fp16 or onnx_fp16) else "fp32", note)


def network_is_strongly_typed(trt: Any, network: Any, requested: bool) -> bool:
    """The network's own STRONGLY_TYPED flag where the API exposes it (TensorRT 11 networks are
    strongly typed whatever was asked), else what was requested."""
    st = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
    get_flag = getattr(network, "get_flag", None)
    if st is not None and callable(get_flag):
        try:
            return bool(get_flag(st))
        except Exception:
            pass
    return requested


def pin_edge_layers_fp32(trt: Any, network: Any, config: Any = None) -> int:
    """Weakly typed fp16 builds (TensorRT 10): keep the `rounded` rule's float32 bin-edge layers in
    fp32 with precision constraints (set on ``config`` when given; the builder passes
    ``precision_constraints="obey"`` to Polygraphy's ``CreateConfig`` instead). Returns how many were pinned.

    The lowering names its edge nodes with ``EDGE_F32_MARK`` and the parser names layers after their
    nodes, but the parser adds helper layers with fixed names (``ONNXTRT_Broadcast`` shuffles that
    broadcast the rank-0 S/n, constants of initializers): so every layer on the float path into a
    marked layer is pinned too (``edge_path_layers``)."""
    f32 = getattr(trt, "float32", None)
    obey = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None)
    if f32 is None or obey is None or not hasattr(network, "num_layers"):  # no OBEY flag: TensorRT 11
        return 0
    pinned = edge_path_layers(network, f32)
    for i in pinned:
        layer = network.get_layer(i)
        layer.precision = f32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype == f32:
                layer.set_output_type(j, f32)
    if pinned and config is not None:
        config.set_flag(obey)
    return len(pinned)


def edge_path_layers(network: Any, f32: Any) -> list[int]:
    """Indices of the marked edge layers and of every layer that feeds one of them through float32
    tensors (walking back from the marked layers; integer shape math and the network inputs end a
    path). The edge math reads only H, W and constants, so the walk never reaches the feature maps."""
    producers = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            producers[layer.get_output(j).name] = i
    seen = {i for i in range(network.num_layers) if EDGE_F32_MARK in str(getattr(network.get_layer(i), "name", ""))}
    todo = list(seen)
    while todo:
        layer = network.get_layer(todo.pop())
        for k in range(getattr(layer, "num_inputs", 0)):
            t = layer.get_input(k)
            src = producers.get(t.name) if t is not None and t.dtype == f32 else None
            if src is not None and src not in seen:
                seen.add(src)
                todo.append(src)
    return sorted(seen)
