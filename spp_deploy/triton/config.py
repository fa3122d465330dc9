"""``ModelIO`` -> Triton's ``ModelConfig`` message, refusing in one line what Triton would reject.

Batching follows Triton's rule (the ONNX Runtime and TensorRT backends check the same): with
``max_batch_size > 0`` the first dim of every input and output is the implicit batch dim and
``dims`` list the rest; with ``max_batch_size == 0`` ``dims`` are the full shape. Dynamic dims
are ``-1``. Beyond Triton's own check (every first dim dynamic) the first dims must also be the
same axis: one ONNX ``dim_param`` name, or for an engine one profile range. A model whose inputs
have different leading axes (an image batch and a count of windows) is served without implicit
batching, since Triton would concatenate unrelated axes.
"""

from __future__ import annotations

import re

from ..util.constants import DEFAULT_TRITON_MAX_BATCH, TRITON_KINDS
from ..util.errors import UserError
from .tensors import ModelIO, Tensor

PLATFORMS = {"onnx": "onnxruntime_onnx", "engine": "tensorrt_plan"}
MODEL_FILES = {"onnx": "model.onnx", "engine": "model.plan"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_model_name(name: str) -> str:
    """A model name that is also a safe directory name in the repository."""
    if not _NAME.fullmatch(name or ""):
        raise UserError(f"bad model name {name!r}: use letters, digits, '_', '-', '.' (not starting with '.' or '-')")
    return name


def check_tensor_names(io: ModelIO) -> None:
    """Triton addresses inputs and outputs by name: every name must be unique and non-empty."""
    seen: dict[str, str] = {}
    for role, tensors in (("input", io.inputs), ("output", io.outputs)):
        for t in tensors:
            if not t.name:
                raise UserError(f"{io.path}: an {role} has no name: Triton addresses tensors by name")
            if t.name in seen:
                raise UserError(f"{io.path}: tensor name {t.name!r} is both {seen[t.name]} and an {role}: "
                                "Triton addresses inputs and outputs by name, they must differ")
            seen[t.name] = f"an {role}"
    if not io.inputs or not io.outputs:
        raise UserError(f"{io.path}: the model has no {'inputs' if not io.inputs else 'outputs'}")


def batch_dim_problem(io: ModelIO) -> str | None:
    """Why the first dims cannot be Triton's implicit batch dim (None when they can)."""
    named: dict[str, str] = {}
    for role, tensors in (("input", io.inputs), ("output", io.outputs)):
        for t in tensors:
            if not t.dims:
                return f"{role} {t.name!r} is a scalar (no batch dim)"
            d = t.dims[0]
            if isinstance(d, int):
                return f"{role} {t.name!r} has a fixed first dim ({d}), not a dynamic batch dim"
            if d is not None:
                named.setdefault(d, f"{role} {t.name!r}")
    if len(named) > 1:
        (a, wa), (b, wb) = list(named.items())[:2]
        return f"the first dims are different axes ({wa} has {a!r}, {wb} has {b!r})"
    ranges = sorted(set(io.batch_profile.values()))
    if len(ranges) > 1:
        text = ", ".join(f"{n}: {lo}..{hi}" for n, (lo, hi) in io.batch_profile.items())
        return f"the engine's inputs have different first-dim ranges in its profile ({text})"
    return None


def resolve_max_batch(io: ModelIO, requested: int | None) -> int:
    """``max_batch_size``: ``requested``, checked, or (None) the engine profile's largest batch,
    ``DEFAULT_TRITON_MAX_BATCH`` for an ONNX file, 0 when the first dims are no batch dim."""
    if requested is not None and requested < 0:
        raise UserError(f"max batch size must be >= 0, got {requested}")
    why = batch_dim_problem(io)
    profile = next(iter(io.batch_profile.values()), None)
    if requested is None:
        if why or (profile and profile[0] > 1):
            return 0
        return profile[1] if profile else DEFAULT_TRITON_MAX_BATCH
    if requested == 0:
        return 0
    if why:
        raise UserError(f"max batch size {requested} needs the first dim of every input and output to be one dynamic "
                        f"batch dim, but {why}: use max batch size 0 (explicit dims)")
    if profile and profile[0] > 1:
        raise UserError(f"max batch size {requested}: the engine's profile starts at batch {profile[0]}, "
                        "but Triton sends batches from 1: rebuild it with a min shape of batch 1")
    if profile and requested > profile[1]:
        raise UserError(f"max batch size {requested}: the engine's profile serves batch {profile[0]}..{profile[1]}: "
                        f"rebuild it with a max shape of batch >= {requested}, or serve at most {profile[1]}")
    return requested


def triton_dims(t: Tensor, batched: bool) -> list[int]:
    """Config ``dims`` of ``t``: dynamic -> -1, the batch dim dropped when ``batched``."""
    dims = t.dims[1:] if batched else t.dims
    for d in dims:
        if isinstance(d, int) and d < 1:
            raise UserError(f"tensor {t.name!r} has a dim of size {d}: Triton needs dims >= 1 or dynamic")
    return [d if isinstance(d, int) else -1 for d in dims]


def make_config(io: ModelIO, name: str, max_batch: int, instances: int = 1, kind: str = "auto"):
    """The ``ModelConfig`` message for serving ``io`` as model ``name``."""
    from .schema import model_config_pb2

    check_model_name(name)
    check_tensor_names(io)
    if instances < 1:
        raise UserError(f"the instance count must be >= 1, got {instances}")
    if kind not in TRITON_KINDS:
        raise UserError(f"unknown instance kind {kind!r} (known: {', '.join(TRITON_KINDS)})")
    if io.kind == "engine" and kind == "cpu":
        raise UserError("a TensorRT plan runs on a GPU only: Triton's TensorRT backend has no CPU instances")
    pb2 = model_config_pb2()
    config = pb2.ModelConfig(name=name, platform=PLATFORMS[io.kind], max_batch_size=max_batch)
    for tensors, field in ((io.inputs, config.input), (io.outputs, config.output)):
        for t in tensors:
            msg = field.add(name=t.name, data_type=pb2.DataType.Value(t.data_type))
            dims = triton_dims(t, max_batch > 0)
            if dims:
                msg.dims.extend(dims)
            elif max_batch > 0:  # a [batch] tensor: one element per batch item, reshaped to a scalar
                msg.dims.append(1)
                msg.reshape.SetInParent()
            else:
                raise UserError(f"tensor {t.name!r} is a scalar: Triton serves scalars only in batched models")
    if max_batch > 0:
        config.dynamic_batching.SetInParent()
    if kind == "auto" and io.kind == "engine":
        kind = "gpu"
    group = config.instance_group.add(count=instances)
    group.kind = pb2.ModelInstanceGroup.Kind.Value(f"KIND_{kind.upper()}")
    return config
