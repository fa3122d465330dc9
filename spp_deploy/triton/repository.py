"""Lay out a Triton model repository: ``REPO/NAME/config.pbtxt``, ``REPO/NAME/1/model.onnx|plan``,
the SPP plugin library a plugin-mode engine needs (``REPO/NAME/libspp_plugin.so``) and
``REPO/README.md`` (the server command line for the whole repository, plugin flags included).

A model directory is staged beside its final place and renamed into it, so an interrupted run
leaves no half-written model (Triton would try to load one). Triton only reads subdirectories of
the repository and of a model directory, so the README and the library beside them are ignored
by the server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..util.errors import UserError
from ..util.fileio import check_output_dir
from .config import MODEL_FILES, check_model_name
from .tensors import ModelIO

README = "README.md"
HEADING = "# Triton model repository (written by `spp-deploy triton`)"
VERSION = "1"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:<yy.mm>-py3"


@dataclass
class Written:
    model_dir: Path
    files: list[Path]
    readme: Path


def check_repository(repo: str | os.PathLike, name: str, force: bool = False) -> Path:
    """The repository directory (its parent must exist) with no model ``name`` in it yet
    (replaced only with ``force``); checked before anything is read or written."""
    text = os.fspath(repo)
    if not text.strip():
        raise UserError("repository path is empty")
    root = check_output_dir(text, "repository")  # a file, a long name, /proc: one line
    if not root.exists() and not root.parent.is_dir():
        raise UserError(f"repository's parent directory does not exist: {root.parent}")
    base = root if root.exists() else root.parent
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"cannot write repository {root}: {base} is not writable")
    check_model_name(name)
    readme = root / README
    if readme.exists() and not force and not _ours(readme):
        raise UserError(f"{readme} exists and was not written by spp-deploy: not replaced; to replace it, use",
                        option="force", example="")
    target = root / name
    if target.exists() and not force:
        raise UserError(f"model {name!r} already exists in repository {root}: not replaced; to replace it, use",
                        option="force", example="")
    return root


def write_model(repo: Path, name: str, io: ModelIO, config, force: bool = False) -> Written:
    """Write model ``name`` (``config`` from ``make_config``) into ``repo``; the README after it."""
    from .schema import parse_text, to_text

    repo = check_repository(repo, name, force)
    text = to_text(config)
    if parse_text(text) != config:  # the text must read back as exactly this message
        raise UserError("internal error: config.pbtxt does not read back as written")
    repo.mkdir(exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=repo))
    try:
        (stage / "config.pbtxt").write_text(text)
        version = stage / VERSION
        version.mkdir()
        shutil.copyfile(io.path, version / MODEL_FILES[io.kind])
        for rel in external_data(io):
            (version / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(io.path.parent / rel, version / rel)
        if io.kind == "engine" and io.plugin is not None:
            shutil.copyfile(io.plugin, stage / io.plugin.name)
        _swap_into_place(stage, repo / name)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    target = repo / name
    files = sorted(p for p in target.rglob("*") if p.is_file())
    return Written(target, files, write_readme(repo))


def external_data(io: ModelIO) -> list[str]:
    """Relative paths of an ONNX file's external weight files (copied beside it)."""
    if io.kind != "onnx":
        return []
    import onnx

    model = onnx.load(str(io.path), load_external_data=False)
    out = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location")
            if loc and loc not in out:
                if Path(loc).is_absolute() or ".." in Path(loc).parts or not (io.path.parent / loc).is_file():
                    raise UserError(f"{io.path}: external data file {loc!r} is missing or outside the file's directory")
                out.append(loc)
    return out


def _swap_into_place(stage: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.rename(target, old / target.name)
    try:
        os.rename(stage, target)
    except OSError as e:
        if old is not None:
            os.rename(old / target.name, target)
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def models(repo: Path) -> list[tuple[str, object]]:
    """(name, ModelConfig) of every model directory in ``repo`` with a readable config."""
    from .schema import parse_text

    out = []
    for d in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cfg = d / "config.pbtxt"
        if cfg.is_file():
            try:
                out.append((d.name, parse_text(cfg.read_text())))
            except UserError:
                continue
    return out


def plugin_libraries(repo: Path) -> list[Path]:
    """Plugin libraries beside the TensorRT plans (``REPO/NAME/*.so``), relative to ``repo``."""
    plans = [name for name, cfg in models(repo) if cfg.platform == "tensorrt_plan"]
    return sorted(p.relative_to(repo) for name in plans for p in (repo / name).glob("*.so") if p.is_file())


def server_command(repo: Path, mount: str = "/models") -> str:
    """``tritonserver`` command line for the repository mounted at ``mount``."""
    libs = plugin_libraries(repo)
    flag = ""
    if libs:
        flag = " --backend-config=tensorrt,plugins=\"" + ";".join(f"{mount}/{p.as_posix()}" for p in libs) + "\""
    return f"tritonserver --model-repository={mount}{flag}"


def _ours(readme: Path) -> bool:
    """The README this module writes (its first line), which it may rewrite."""
    try:
        with open(readme, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == HEADING
    except OSError:
        return False


def write_readme(repo: Path) -> Path:
    """``REPO/README.md``: what is served and how to start the server for it."""
    from ..util.fileio import write_text

    entries = models(repo)
    libs = plugin_libraries(repo)
    lines = [HEADING, "",
             "| model | platform | max_batch_size | inputs | outputs |", "| --- | --- | --- | --- | --- |"]
    for name, cfg in entries:
        io = lambda ts: ", ".join(f"`{t.name}` {_dims(t, cfg.max_batch_size)}" for t in ts)  # noqa: E731
        lines.append(f"| {name} | {cfg.platform} | {cfg.max_batch_size} | {io(cfg.input)} | {io(cfg.output)} |")
    gpu = any(cfg.platform == "tensorrt_plan" for _, cfg in entries)
    lines += ["", "Start the server (Triton's official container; the repository mounted at /models):", "", "```sh",
              f"docker run --rm {'--gpus all ' if gpu else ''}-p 8000:8000 -p 8001:8001 -p 8002:8002 "
              f"-v \"$PWD\":/models {TRITON_IMAGE} \\", f"    {server_command(repo)}", "```", ""]
    if libs:
        preload = ":".join(f"/models/{p.as_posix()}" for p in libs)
        lines += ["The TensorRT plans use the SPP plugin: the server must load the library before it loads the",
                  "plans, which the `--backend-config=tensorrt,plugins=...` flag above does. The alternative is",
                  f"the environment variable `LD_PRELOAD={preload}` (docker: `-e LD_PRELOAD=...`).",
                  "The library, the plans and the server must use the same TensorRT version: pick the",
                  "tritonserver image whose TensorRT built the engines (or build both inside that image).", ""]
    elif gpu:
        lines += ["A TensorRT plan runs only with the TensorRT version (and GPU compute capability) that built it:",
                  "pick the tritonserver image with that TensorRT version.", ""]
    lines += ["Ports: 8000 HTTP, 8001 gRPC, 8002 metrics. Check with `curl localhost:8000/v2/health/ready`;",
              "time it with `spp-deploy bench --backends triton-http,triton-grpc --triton-model NAME "
              "--shapes ...`.", ""]
    return write_text(repo / README, "\n".join(lines))


def _dims(t, max_batch: int) -> str:
    dims = ["B"] * (max_batch > 0) + [str(d) if d > 0 else "?" for d in t.dims]
    return "[" + ", ".join(dims) + "]"
