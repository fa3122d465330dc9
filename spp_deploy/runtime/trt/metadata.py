"""The engine's sidecar metadata (``ENGINE.json``): what it was built with, checked before it is
loaded, since an engine runs only on the TensorRT version and GPU it was built for."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

META_SUFFIX = ".json"


@dataclass
class EngineMeta:
    """Saved next to the engine as ``ENGINE.json``; the runner refuses an engine it does not fit."""

    tensorrt: str
    gpu: str
    compute_capability: str
    precision: str
    profiles: list
    onnx_sha256: str
    plugin: str | None = None
    plugin_mode: bool = False
    cache_key: str = ""
    created: float = field(default_factory=time.time)

    def save(self, engine_path: Path) -> None:
        from ...util.fileio import write_text

        write_text(Path(str(engine_path) + META_SUFFIX), json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, engine_path: Path) -> "EngineMeta | None":
        p = Path(str(engine_path) + META_SUFFIX)
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_text())
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except (ValueError, TypeError, KeyError):
            return None


def engine_mismatch(meta: EngineMeta | None, trt_version: str, gpu: Mapping[str, str]) -> str | None:
    """Why an engine described by ``meta`` cannot run here (TensorRT engines are tied to the exact
    TensorRT version and, without hardware compatibility, to the GPU's compute capability)."""
    if meta is None:
        return None
    if meta.tensorrt != trt_version:
        return f"engine was built with TensorRT {meta.tensorrt}, this is TensorRT {trt_version}: rebuild it with `spp-deploy build`"
    if meta.compute_capability != gpu.get("compute_capability"):
        return (f"engine was built for {meta.gpu} (compute capability {meta.compute_capability}), this GPU is "
                f"{gpu.get('name')} ({gpu.get('compute_capability')}): rebuild it on this machine")
    return None
