"""The engine cache: a key over everything that makes an engine different, and where engines live."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .profiles import Profile

CACHE_ENV = "SPP_DEPLOY_ENGINE_CACHE"

# How spp-deploy turns a file into an engine; bump it whenever that changes, so that engines built
# the old way are never served again. 1: the first builder; 2: TF32 cleared, `rounded` edge layers
# pinned to fp32 by name, bodies stripped; 3: edge pinning by dataflow (the parser's helper layers
# too), plugin layers checked on cache hits.
BUILD_RECIPE = 3


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash of a file (the plugin library), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_cache_key(onnx_bytes: bytes, trt_version: str, gpu_name: str, compute_capability: str,
                     precision: str, profiles: Sequence[Profile], plugin_sha256: str | None,
                     extra: Mapping[str, Any] | None = None, *, recipe: int | None = None,
                     spp_version: str | None = None) -> str:
    """sha256 over everything that makes an engine different: ONNX bytes, TensorRT version,
    GPU name and compute capability, precision, profiles, plugin library (its content hash), and how
    it was built: ``BUILD_RECIPE`` and the spp-deploy version (defaults: this installation's)."""
    from ... import __version__

    desc = {
        "recipe": BUILD_RECIPE if recipe is None else int(recipe),
        "spp_deploy": __version__ if spp_version is None else str(spp_version),
        "onnx": hashlib.sha256(onnx_bytes).hexdigest(),
        "tensorrt": str(trt_version),
        "gpu": str(gpu_name),
        "cc": str(compute_capability),
        "precision": precision,
        "profiles": [p.as_json() for p in profiles],
        "plugin": plugin_sha256,
        "extra": dict(sorted((extra or {}).items())),
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def cache_dir() -> Path:
    """``$SPP_DEPLOY_ENGINE_CACHE``, else ``$XDG_CACHE_HOME`` (or ~/.cache) /spp-deploy/engines."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spp-deploy" / "engines"
