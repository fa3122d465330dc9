"""Building the native libraries: CMake configure + build of ``plugins/`` (the TensorRT plugin
with nvcc, or only the CPU reference), and the one line of a failed tool's log worth showing.

Every missing tool (cmake, nvcc, TensorRT headers) is a one-line ``UserError`` before anything runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..util.errors import UserError
from .library import PLUGIN_LIBRARY_NAME, REFERENCE_LIBRARY_NAME, plugin_source_dir


def find_nvcc() -> str | None:
    """``$CUDACXX``, then nvcc on PATH, then ``/usr/local/cuda/bin/nvcc``; None if none exists."""
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


def run_tool(cmd: list[str], what: str) -> None:
    """Run a build tool; on failure a one-line ``UserError``: ``what``, exit code, first real error."""
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
    run_tool([cmake, "-S", str(src), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", *extra], "CMake configure")


def _build(build_dir: Path, target: str, library: str) -> Path:
    jobs = str(max(1, os.cpu_count() or 1))
    run_tool([shutil.which("cmake") or "cmake", "--build", str(build_dir), "--target", target, "-j", jobs],
             f"build of {target}")
    lib = build_dir / library
    if not lib.is_file():
        raise UserError(f"build finished but {lib} is missing")
    return lib


def build_reference(build_dir: str | os.PathLike) -> Path:
    """Configure and build only the CPU reference library (needs cmake and a C++17 compiler)."""
    bd = Path(build_dir)
    _configure(bd, ["-DSPP_BUILD_CUDA=OFF", "-DSPP_BUILD_PLUGIN=OFF"])
    return _build(bd, "spp_reference", REFERENCE_LIBRARY_NAME)


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
    nvcc = find_nvcc()
    if nvcc is None:
        raise UserError("nvcc not found (PATH, $CUDACXX, /usr/local/cuda/bin): install the CUDA toolkit to build "
                        "the SPP plugin")
    if not any((d / "NvInfer.h").is_file() for d in _trt_header_dirs(tensorrt_root)):
        where = tensorrt_root or os.environ.get("TENSORRT_ROOT") or "/usr, /usr/local/tensorrt, /opt/tensorrt"
        raise UserError(f"TensorRT headers (NvInfer.h) not found under {where} (pip's tensorrt wheels ship no "
                        "headers: use the TensorRT tar/deb packages): give the install's root here or set "
                        "TENSORRT_ROOT",
                        option="tensorrt_root")
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
        raise UserError("CMake did not find the TensorRT headers: give the install's root here or set TENSORRT_ROOT",
                        option="tensorrt_root")
    if static_registration and summary.get("SPP_HAVE_TENSORRT_LIBRARY") != "ON":
        raise UserError("static registration needs libnvinfer, which CMake did not find (build without static "
                        "registration, or give a TensorRT install with lib/libnvinfer.so here)", option="tensorrt_root")
    return _build(bd, "spp_plugin", PLUGIN_LIBRARY_NAME)
