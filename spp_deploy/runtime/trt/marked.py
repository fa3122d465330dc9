"""A debug engine for ``localize``: the ONNX file built through the same Polygraphy chain as
``build``, with chosen intermediate tensors marked as network outputs (Polygraphy's
``--trt-outputs``), for the one input shape, and run once.

Marked outputs stop TensorRT fusing layers across them, so this engine can round differently from
the engine being checked (Polygraphy has the same caveat); its precision and plugin library are the
checked engine's (its ENGINE.json) when that is given.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...util.errors import UserError


def run_marked(onnx_path: str | os.PathLike, x: np.ndarray, names: Sequence[str], *,
               engine: str | os.PathLike | None = None,
               plugin: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """{tensor: value} for the file's outputs and those of ``names`` the network has, on input ``x``."""
    from .build import build_engine, load_onnx
    from .metadata import EngineMeta
    from .profiles import Profile, onnx_inputs
    from .runner import TrtRunner

    model, _ = load_onnx(onnx_path)
    inputs = list(onnx_inputs(model))
    if len(inputs) != 1:
        raise UserError(f"{onnx_path} has {len(inputs)} inputs: localizing feeds one", option="onnx")
    meta = EngineMeta.load(Path(engine)) if engine is not None else None
    fp16 = meta is not None and meta.precision == "fp16"
    plugin = plugin or (meta.plugin if meta is not None and meta.plugin_mode else None)
    shape = tuple(int(d) for d in x.shape)
    with tempfile.TemporaryDirectory(prefix="spp-localize-") as tmp:
        out = Path(tmp) / "marked.engine"
        build_engine(onnx_path, out, Profile({inputs[0]: (shape, shape, shape)}), fp16=fp16, plugin=plugin,
                     use_cache=False, mark_outputs=list(names))
        with TrtRunner(out, plugin=plugin) as runner:
            (name, (dtype, _)), = runner.input_specs().items()
            return runner.infer({name: x.astype(dtype)})
