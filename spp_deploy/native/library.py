"""Where the native libraries are: ``libspp_plugin.so`` (TensorRT plugin) and
``libspp_reference.so`` (CPU reference, C ABI, no CUDA/TensorRT), and the plugin's dlopen check.

Search order: the env var, then the package directory (``spp_deploy/``, ``spp_deploy/lib/``), then
``./build``. TensorRT registration goes through ``IPluginRegistry.load_library``
(``spp_deploy.runtime``), once per process, not through ``load_plugin_library``.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ..util.errors import UserError

PLUGIN_LIBRARY_NAME = "libspp_plugin.so"
REFERENCE_LIBRARY_NAME = "libspp_reference.so"
PLUGIN_LIB_ENV = "SPP_DEPLOY_PLUGIN_LIB"
REFERENCE_LIB_ENV = "SPP_DEPLOY_REFERENCE_LIB"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def plugin_source_dir() -> Path:
    """The CMake project (``plugins/`` next to the package in a source checkout)."""
    return _PACKAGE_DIR.parent / "plugins"


def _find(name: str, env: str) -> Path | None:
    if os.environ.get(env):
        p = Path(os.environ[env])
        if not p.is_file():
            raise UserError(f"{env}={p} does not name an existing file")
        return p
    for p in (_PACKAGE_DIR / name, _PACKAGE_DIR / "lib" / name, Path.cwd() / "build" / name):
        if p.is_file():
            return p
    return None


def find_plugin_library() -> Path | None:
    """``$SPP_DEPLOY_PLUGIN_LIB``, then the package directory, then ``./build``; None if absent."""
    return _find(PLUGIN_LIBRARY_NAME, PLUGIN_LIB_ENV)


def find_reference_library() -> Path | None:
    """``$SPP_DEPLOY_REFERENCE_LIB``, then the package directory, then ``./build``; None if absent."""
    return _find(REFERENCE_LIBRARY_NAME, REFERENCE_LIB_ENV)


def load_plugin_library(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """dlopen the TensorRT plugin library (RTLD_GLOBAL): proves it loads (its CUDA runtime and C++
    dependencies resolve). It registers nothing with TensorRT unless it was built with
    SPP_STATIC_REGISTRATION=ON; TensorRT builds and runs register it via ``load_library``."""
    p = Path(path) if path is not None else find_plugin_library()
    if p is None:
        raise UserError(
            f"{PLUGIN_LIBRARY_NAME} not found (set {PLUGIN_LIB_ENV} or build it with "
            "spp_deploy.native.cmake.build_plugins())"
        )
    if not p.is_file():
        raise UserError(f"plugin library {p} does not exist")
    try:
        return ctypes.CDLL(str(p), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise UserError(f"cannot load plugin library {p}: {e}") from None
