"""The native SPP plugin (TensorRT ``SpatialPyramidPool``) and its CPU reference library.

Sources live in ``plugins/`` (CMake project). This module finds, builds and loads the shared
libraries; it imports nothing heavy at module import (numpy only inside functions).

- ``find_plugin_library()`` / ``load_plugin_library(path)``: ``libspp_plugin.so`` (TensorRT plugin).
  ``load_plugin_library`` is a plain dlopen (a loadability check: the default build registers
  nothing at load time); TensorRT registration goes through ``IPluginRegistry.load_library``
  (``spp_deploy.runtime.trt_builder.load_plugin``), once per process.
- ``find_reference_library()``: ``libspp_reference.so`` (CPU reference, C ABI, no CUDA/TensorRT).
- ``build_plugins(build_dir, tensorrt_root=None, cuda_arch=None)``: CMake configure + build of the plugin.
- ``build_reference(build_dir)``: CMake configure + build of the reference library only.
- ``reference_pyramid(x, levels, mode, rule, order)``: the pyramid via the reference library.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

from .errors import UserError

from .contract import MAX_NB_LEVELS, MODE_CODES as _MODES, ORDER_CODES as _ORDERS, RULE_CODES as _RULES, Status

PLUGIN_LIBRARY_NAME = "libspp_plugin.so"
REFERENCE_LIBRARY_NAME = "libspp_reference.so"
PLUGIN_LIB_ENV = "SPP_DEPLOY_PLUGIN_LIB"
REFERENCE_LIB_ENV = "SPP_DEPLOY_REFERENCE_LIB"

STATUS_OK, STATUS_ILLEGAL_SIZE, STATUS_BAD_CONFIG, STATUS_BAD_ARGUMENT = (
    Status.OK, Status.ILLEGAL_SIZE, Status.BAD_CONFIG, Status.BAD_ARGUMENT)

# nvinfer1::PluginFieldType numbering (for config-parser tests).
FIELD_INT32 = 5
FIELD_CHAR = 6
FIELD_UNKNOWN = 8
FIELD_INT64 = 10


def plugin_source_dir() -> Path:
    """The CMake project (``plugins/`` next to the package in a source checkout)."""
    return Path(__file__).resolve().parent.parent / "plugins"


def _candidates(name: str, env: str) -> list[Path]:
    out = []
    if os.environ.get(env):
        out.append(Path(os.environ[env]))
    pkg = Path(__file__).resolve().parent
    out += [pkg / name, pkg / "lib" / name, Path.cwd() / "build" / name]
    return out


def _find(name: str, env: str) -> Path | None:
    if os.environ.get(env):
        p = Path(os.environ[env])
        if not p.is_file():
            raise UserError(f"{env}={p} does not name an existing file")
        return p
    for p in _candidates(name, env):
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
            f"{PLUGIN_LIBRARY_NAME} not found (set {PLUGIN_LIB_ENV} or build it with build_plugins())"
        )
    if not p.is_file():
        raise UserError(f"plugin library {p} does not exist")
    try:
        return ctypes.CDLL(str(p), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise UserError(f"cannot load plugin library {p}: {e}") from None


# ---- building ---------------------------------------------------------------------------------


def _find_nvcc() -> str | None:
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file():
            return cand
    return None


def _trt_header_dirs(tensorrt_root: str | os.PathLike | None) -> list[Path]:
    roots = []
    if tensorrt_root is not None:
        roots.append(Path(tensorrt_root))
    elif os.environ.get("TENSORRT_ROOT"):
        roots.append(Path(os.environ["TENSORRT_ROOT"]))
    else:
        roots += [Path("/usr"), Path("/usr/local/tensorrt"), Path("/opt/tensorrt")]
    dirs = []
    for r in roots:
        dirs += [r / "include", r / "include" / "x86_64-linux-gnu", r / "include" / "aarch64-linux-gnu", r]
    return dirs


_ERROR_LINE = r"CMake Error|\berror\b|fatal|undefined reference|could not be found|not found"
_NOISE = r"^(g?make(\[\d+\])?:|\*\*\*|-- |See also |Configuring incomplete)"


def first_error_line(output: str) -> str:
    """The first line of a CMake / compiler log that says what went wrong (the last lines are
    only "See also CMakeError.log" or make's "Error 1"). A "CMake Error at ...:" header gets the
    indented message line that follows it."""
    import re

    lines = [ln.strip() for ln in output.splitlines()]
    for i, ln in enumerate(lines):
        if not ln or re.match(_NOISE, ln) or not re.search(_ERROR_LINE, ln, re.I):
            continue
        if ln.endswith(":"):
            following = next((nxt for nxt in lines[i + 1:] if nxt), "")
            ln = f"{ln} {following}".strip()
        return ln
    rest = [ln for ln in lines if ln]
    return rest[-1] if rest else "(no output)"


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise UserError(f"{what} failed (exit {proc.returncode}): {first_error_line(proc.stdout)}")


def _read_summary(build_dir: Path) -> dict[str, str]:
    f = build_dir / "spp_build_summary.txt"
    out: dict[str, str] = {}
    if f.is_file():
        for ln in f.read_text().splitlines():
            if "=" in ln:
                k, v = ln.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def _configure(build_dir: Path, extra: list[str]) -> None:
    cmake = shutil.which("cmake")
    if cmake is None:
        raise UserError("cmake not found on PATH: install CMake >= 3.18 to build the SPP plugins")
    src = plugin_source_dir()
    if not (src / "CMakeLists.txt").is_file():
        raise UserError(f"plugin sources not found at {src} (needs a source checkout of spp-deploy)")
    build_dir.mkdir(parents=True, exist_ok=True)
    _run([cmake, "-S", str(src), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", *extra], "CMake configure")


def _build(build_dir: Path, target: str) -> None:
    jobs = str(max(1, os.cpu_count() or 1))
    _run([shutil.which("cmake") or "cmake", "--build", str(build_dir), "--target", target, "-j", jobs], f"build of {target}")


def build_reference(build_dir: str | os.PathLike) -> Path:
    """Configure and build only the CPU reference library (needs cmake and a C++17 compiler)."""
    bd = Path(build_dir)
    _configure(bd, ["-DSPP_BUILD_CUDA=OFF", "-DSPP_BUILD_PLUGIN=OFF"])
    _build(bd, "spp_reference")
    lib = bd / REFERENCE_LIBRARY_NAME
    if not lib.is_file():
        raise UserError(f"build finished but {lib} is missing")
    return lib


def build_plugins(
    build_dir: str | os.PathLike,
    tensorrt_root: str | os.PathLike | None = None,
    cuda_arch: str | Sequence[int] | None = None,
    static_registration: bool = False,
) -> Path:
    """Configure and build ``libspp_plugin.so``; returns its path.

    ``tensorrt_root`` (or ``$TENSORRT_ROOT``) holds ``include/NvInfer.h`` (and ``lib/libnvinfer.so``,
    needed only with ``static_registration``); ``cuda_arch`` is CMAKE_CUDA_ARCHITECTURES (default
    "75;80;86;89;90"). Raises ``UserError`` in one line when cmake, nvcc or TensorRT is missing.
    """
    if shutil.which("cmake") is None:
        raise UserError("cmake not found on PATH: install CMake >= 3.18 to build the SPP plugin")
    nvcc = _find_nvcc()
    if nvcc is None:
        raise UserError("nvcc not found (PATH, $CUDACXX, /usr/local/cuda/bin): install the CUDA toolkit to build the SPP plugin")
    if not any((d / "NvInfer.h").is_file() for d in _trt_header_dirs(tensorrt_root)):
        where = tensorrt_root or os.environ.get("TENSORRT_ROOT") or "/usr, /usr/local/tensorrt, /opt/tensorrt"
        raise UserError(f"TensorRT headers (NvInfer.h) not found under {where}: pass tensorrt_root or set "
                        "TENSORRT_ROOT (pip's tensorrt wheels ship no headers: use the TensorRT tar/deb packages)")
    extra = [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DSPP_STATIC_REGISTRATION={'ON' if static_registration else 'OFF'}"]
    if tensorrt_root is not None:
        extra.append(f"-DTENSORRT_ROOT={Path(tensorrt_root).resolve()}")
    if cuda_arch is not None:
        arch = cuda_arch if isinstance(cuda_arch, str) else ";".join(str(a) for a in cuda_arch)
        extra.append(f"-DCMAKE_CUDA_ARCHITECTURES={arch}")
    bd = Path(build_dir)
    _configure(bd, extra)
    summary = _read_summary(bd)
    if summary.get("SPP_HAVE_CUDA") != "ON":
        raise UserError("CMake did not enable CUDA (nvcc unusable?): cannot build the SPP plugin")
    if summary.get("SPP_HAVE_TENSORRT_HEADERS") != "ON":
        raise UserError("CMake did not find the TensorRT headers: pass tensorrt_root or set TENSORRT_ROOT")
    if static_registration and summary.get("SPP_HAVE_TENSORRT_LIBRARY") != "ON":
        raise UserError("static registration needs libnvinfer, which CMake did not find: pass tensorrt_root "
                        "(with lib/libnvinfer.so or libnvinfer.so.<major>), or build without static registration")
    _build(bd, "spp_plugin")
    lib = bd / PLUGIN_LIBRARY_NAME
    if not lib.is_file():
        raise UserError(f"build finished but {lib} is missing")
    return lib


# ---- reference library (ctypes) ----------------------------------------------------------------


class CField(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("type", ctypes.c_int32),
        ("length", ctypes.c_int32),
    ]


class CConfig(ctypes.Structure):
    _fields_ = [
        ("nbLevels", ctypes.c_int32),
        ("levels", ctypes.c_int32 * MAX_NB_LEVELS),
        ("mode", ctypes.c_int32),
        ("rule", ctypes.c_int32),
        ("order", ctypes.c_int32),
    ]

    def as_tuple(self) -> tuple[tuple[int, ...], str, str, str]:
        inv = lambda d, v: next(k for k, x in d.items() if x == v)  # noqa: E731
        return (
            tuple(self.levels[: self.nbLevels]),
            inv(_MODES, self.mode),
            inv(_RULES, self.rule),
            inv(_ORDERS, self.order),
        )


_REF_CACHE: dict[str, ctypes.CDLL] = {}


def open_reference_library(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """The reference library with its C signatures declared (cached per path)."""
    p = Path(path) if path is not None else find_reference_library()
    if p is None:
        raise UserError(f"{REFERENCE_LIBRARY_NAME} not found (set {REFERENCE_LIB_ENV} or run build_reference())")
    key = str(p.resolve())
    if key in _REF_CACHE:
        return _REF_CACHE[key]
    lib = ctypes.CDLL(key)
    i32, i64, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    p_i32, p_i64 = ctypes.POINTER(i32), ctypes.POINTER(i64)
    lib.spp_abi_version.restype = i32
    lib.spp_abi_version.argtypes = []
    lib.spp_status_string.restype = ctypes.c_char_p
    lib.spp_status_string.argtypes = [i32]
    lib.spp_feature_count.restype = i64
    lib.spp_feature_count.argtypes = [i64, p_i32, i32]
    lib.spp_axis_bins.restype = i32
    lib.spp_axis_bins.argtypes = [i32, i64, i32, i64, p_i64, p_i64, p_i64]
    lib.spp_size_error.restype = i32
    lib.spp_size_error.argtypes = [i32, i64, i64, p_i32, i32]
    for fn in (lib.spp_reference_forward_f32, lib.spp_reference_forward_f16):
        fn.restype = i32
        fn.argtypes = [vp, i64, i64, i64, i64, p_i32, i32, i32, i32, i32, vp, i64]
    lib.spp_config_parse.restype = i32
    lib.spp_config_parse.argtypes = [ctypes.POINTER(CField), i32, ctypes.POINTER(CConfig), ctypes.c_char_p, i32]
    lib.spp_config_serialize.restype = i64
    lib.spp_config_serialize.argtypes = [ctypes.POINTER(CConfig), ctypes.c_char_p, i64]
    lib.spp_config_deserialize.restype = i32
    lib.spp_config_deserialize.argtypes = [ctypes.c_char_p, i64, ctypes.POINTER(CConfig), ctypes.c_char_p, i32]
    if lib.spp_abi_version() != 1:
        raise UserError(f"{p}: unsupported reference ABI version {lib.spp_abi_version()}")
    _REF_CACHE[key] = lib
    return lib


def _enum(table: dict[str, int], value: str, what: str) -> int:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r} (known: {', '.join(table)})") from None


def reference_pyramid(
    x: Any,
    levels: Sequence[int],
    mode: str,
    rule: str,
    order: str,
    library: str | os.PathLike | None = None,
) -> Any:
    """The SPP vector [B, C*sum(n^2)] of an NCHW float32/float16 numpy array via the C++ reference.

    float16 input gives float16 output (fp32 accumulation, one final rounding, like the plugin).
    Raises ``ValueError`` on illegal sizes or configurations.
    """
    import numpy as np

    lib = open_reference_library(library)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"SPP expects a [B, C, H, W] array, got shape {x.shape}")
    if x.dtype == np.float32:
        fn = lib.spp_reference_forward_f32
    elif x.dtype == np.float16:
        fn = lib.spp_reference_forward_f16
    else:
        raise TypeError(f"reference_pyramid supports float32 and float16 input, got {x.dtype}")
    x = np.ascontiguousarray(x)
    lv = [int(n) for n in levels]
    if not 1 <= len(lv) <= 16:
        raise ValueError(f"pyramid levels must have 1..16 entries, got {lv}")
    if any(not 1 <= n <= 64 for n in lv):
        raise ValueError(f"pyramid levels must be in 1..64, got {lv}")
    m, r, o = _enum(_MODES, mode, "SPP mode"), _enum(_RULES, rule, "bin rule"), _enum(_ORDERS, order, "flatten order")
    B, C, H, W = (int(d) for d in x.shape)
    if H < 1 or W < 1:
        raise ValueError(f"SPP needs H, W >= 1, got {H}x{W}")
    c_levels = (ctypes.c_int32 * len(lv))(*lv)
    bad = lib.spp_size_error(r, H, W, c_levels, len(lv))
    if bad > 0:
        raise ValueError(
            f"bin rule {rule!r} is not defined (or not fixed-length) at input {H}x{W} for pyramid level {lv[bad - 1]}"
        )
    F = C * sum(n * n for n in lv)
    out = np.empty((B, F), dtype=np.float32)
    status = fn(x.ctypes.data, B, C, H, W, c_levels, len(lv), m, r, o, out.ctypes.data, out.size)
    if status != STATUS_OK:
        msg = lib.spp_status_string(status).decode()
        raise ValueError(f"SPP reference failed: {msg} (input {B}x{C}x{H}x{W}, levels {lv}, {rule})")
    return out.astype(np.float16) if x.dtype == np.float16 else out


def reference_axis_bins(rule: str, size: int, n: int, height: int | None = None, library: Any = None):
    """(start, end, span, valid) of one axis from the C++ header (for cross-checks with bins.py)."""
    import numpy as np

    lib = open_reference_library(library)
    start, end, span = (np.zeros(n, dtype=np.int64) for _ in range(3))
    p = ctypes.POINTER(ctypes.c_int64)
    rc = lib.spp_axis_bins(
        _enum(_RULES, rule, "bin rule"), int(size), int(n), int(size if height is None else height),
        start.ctypes.data_as(p), end.ctypes.data_as(p), span.ctypes.data_as(p),
    )
    if rc < 0:
        raise ValueError(f"bad arguments to spp_axis_bins: {rule}, {size}, {n}")
    return start, end, span, bool(rc)


def parse_config_fields(fields: Sequence[tuple[str, int, bytes, int]], library: Any = None):
    """Run the plugin's field parser on (name, type, data bytes, length) tuples.

    Returns ``(levels, mode, rule, order)``; raises ``ValueError`` with the parser's message.
    """
    lib = open_reference_library(library)
    keep = []
    arr = (CField * max(1, len(fields)))()
    for i, (name, ftype, data, length) in enumerate(fields):
        buf = ctypes.create_string_buffer(bytes(data), max(1, len(data)))
        keep.append(buf)
        arr[i] = CField(name.encode() if isinstance(name, str) else name, ctypes.cast(buf, ctypes.c_void_p), ftype, length)
    cfg = CConfig()
    err = ctypes.create_string_buffer(512)
    rc = lib.spp_config_parse(arr, len(fields), ctypes.byref(cfg), err, 512)
    if rc != STATUS_OK:
        raise ValueError(err.value.decode())
    return cfg.as_tuple()


def serialize_config(levels: Sequence[int], mode: str, rule: str, order: str, library: Any = None) -> bytes:
    lib = open_reference_library(library)
    cfg = CConfig()
    cfg.nbLevels = len(levels)
    for i, n in enumerate(list(levels)[:MAX_NB_LEVELS]):
        cfg.levels[i] = int(n)
    cfg.mode, cfg.rule, cfg.order = _enum(_MODES, mode, "mode"), _enum(_RULES, rule, "bin rule"), _enum(_ORDERS, order, "order")
    return serialize_with(lib.spp_config_serialize, cfg, "SPP")


def serialize_with(serialize: Any, cfg: ctypes.Structure, what: str) -> bytes:
    """The engine blob a C ABI ``*_config_serialize`` writes (size query, then the write)."""
    n = serialize(ctypes.byref(cfg), None, 0)
    if n < 0:
        raise ValueError(f"invalid {what} configuration")
    buf = ctypes.create_string_buffer(int(n))
    serialize(ctypes.byref(cfg), buf, n)
    return buf.raw


def deserialize_config(blob: bytes, library: Any = None):
    lib = open_reference_library(library)
    cfg = CConfig()
    err = ctypes.create_string_buffer(512)
    rc = lib.spp_config_deserialize(blob, len(blob), ctypes.byref(cfg), err, 512)
    if rc != STATUS_OK:
        raise ValueError(err.value.decode())
    return cfg.as_tuple()
