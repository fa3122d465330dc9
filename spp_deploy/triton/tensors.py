"""A model file's inputs and outputs as Triton sees them: name, data type, dims.

A dim is an ``int`` (fixed), a ``str`` (a named dynamic dim: ONNX ``dim_param``) or ``None``
(dynamic, unnamed: an ONNX dim without a name, a TensorRT ``-1``). ONNX files are read with
``onnx`` (no weights loaded); TensorRT engines with TensorRT itself (imported lazily), the SPP
plugin library loaded first for plugin-mode engines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..util.errors import UserError, first_line

Dim = int | str | None

# onnx.TensorProto element type name -> Triton DataType name (model_config.proto)
_ONNX_TYPES = {
    "FLOAT": "TYPE_FP32", "FLOAT16": "TYPE_FP16", "DOUBLE": "TYPE_FP64", "BFLOAT16": "TYPE_BF16",
    "INT8": "TYPE_INT8", "INT16": "TYPE_INT16", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64",
    "UINT8": "TYPE_UINT8", "UINT16": "TYPE_UINT16", "UINT32": "TYPE_UINT32", "UINT64": "TYPE_UINT64",
    "BOOL": "TYPE_BOOL", "STRING": "TYPE_STRING",
}
# tensorrt.DataType name -> Triton DataType name
_TRT_TYPES = {
    "FLOAT": "TYPE_FP32", "HALF": "TYPE_FP16", "BF16": "TYPE_BF16", "INT8": "TYPE_INT8", "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64", "UINT8": "TYPE_UINT8", "BOOL": "TYPE_BOOL",
}


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # Triton's DataType name, e.g. TYPE_FP32
    dims: tuple[Dim, ...]

    @property
    def dynamic(self) -> tuple[bool, ...]:
        return tuple(not isinstance(d, int) for d in self.dims)


@dataclass
class ModelIO:
    """What a model file takes and gives, and where it came from."""

    kind: str  # "onnx" or "engine"
    path: Path
    inputs: list[Tensor]
    outputs: list[Tensor]
    # engines: per input, (min, max) of its first dim in optimization profile 0
    batch_profile: dict[str, tuple[int, int]] = field(default_factory=dict)
    plugin: Path | None = None  # the SPP plugin library a plugin-mode engine needs
    plugin_mode: bool = False  # a plugin-mode file (ONNX: spp_deploy.SpatialPyramidPool nodes)
    tensorrt: str | None = None  # engines: the TensorRT version that built it (metadata)


def onnx_io(path: str | os.PathLike) -> ModelIO:
    """Graph inputs (initializers excluded) and outputs of an ONNX file."""
    import onnx

    from ..runtime.trt.build import load_onnx
    from ..runtime.trt.plugin_mode import is_plugin_mode

    model, _ = load_onnx(path)

    def tensor(vi) -> Tensor:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise UserError(f"{path}: {vi.name!r} is not a tensor (Triton serves tensors only)")
        elem = onnx.TensorProto.DataType.Name(t.elem_type)
        if elem not in _ONNX_TYPES:
            raise UserError(f"{path}: tensor {vi.name!r} has element type {elem}, which Triton has no type for")
        if not t.HasField("shape"):
            raise UserError(f"{path}: tensor {vi.name!r} has no shape (not even its rank): Triton needs the dims")
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
        return Tensor(vi.name, _ONNX_TYPES[elem], dims)

    inits = {i.name for i in model.graph.initializer}
    inputs = [tensor(vi) for vi in model.graph.input if vi.name not in inits]
    outputs = [tensor(vi) for vi in model.graph.output]
    return ModelIO("onnx", Path(path), inputs, outputs, plugin_mode=is_plugin_mode(model))


def engine_io(path: str | os.PathLike, plugin: str | os.PathLike | None = None, trt: Any = None) -> ModelIO:
    """I/O tensors and profile-0 batch ranges of a serialized TensorRT engine. The engine's
    metadata (``ENGINE.json``, written by ``spp-deploy build``) says whether it needs the SPP
    plugin; ``plugin`` overrides the library it names."""
    from ..runtime.trt.common import CapturingLogger, import_tensorrt
    from ..runtime.trt.metadata import EngineMeta
    from ..runtime.trt.plugin_mode import load_plugin

    path = Path(path)
    if not path.is_file():
        raise UserError(f"engine file not found: {path}")
    meta = EngineMeta.load(path)
    lib = Path(plugin) if plugin else (Path(meta.plugin) if meta and meta.plugin_mode and meta.plugin else None)
    if lib is not None and not lib.is_file():
        if plugin:
            raise UserError(f"plugin library not found: {lib}", option="plugin")
        raise UserError(f"plugin library not found: {lib} (named by {path}.json): give the library", option="plugin")
    if lib is None and meta is not None and meta.plugin_mode:
        raise UserError(f"{path} uses the SPP plugin and its metadata names no library: give the library",
                        option="plugin")
    trt = trt or import_tensorrt("reading a TensorRT engine's inputs and outputs")
    if lib is not None:
        load_plugin(lib, trt)
    logger = CapturingLogger.create(trt)
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")
    data = path.read_bytes()
    try:
        runtime = trt.Runtime(logger)  # kept alive while the engine is read
        engine = runtime.deserialize_cuda_engine(data) if data else None
    except Exception as e:  # no CUDA device, driver mismatch
        raise UserError(f"cannot load engine {path}: {first_line(e)}") from None
    if engine is None:
        raise UserError(f"cannot load engine {path}: {logger.last_error()} "
                        "(corrupt file, built by another TensorRT version, or a plugin library is missing)")
    inputs, outputs, batch = [], [], {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dt = getattr(engine.get_tensor_dtype(name), "name", str(engine.get_tensor_dtype(name))).split(".")[-1].upper()
        if dt not in _TRT_TYPES:
            raise UserError(f"{path}: tensor {name!r} has TensorRT type {dt}, which Triton has no type for")
        dims = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
        t = Tensor(name, _TRT_TYPES[dt], dims)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            inputs.append(t)
            if dims:
                lo, _, hi = engine.get_tensor_profile_shape(name, 0)
                batch[name] = (int(lo[0]), int(hi[0]))
        else:
            outputs.append(t)
    return ModelIO("engine", path, inputs, outputs, batch, lib, bool(meta and meta.plugin_mode) or lib is not None,
                   meta.tensorrt if meta else None)
