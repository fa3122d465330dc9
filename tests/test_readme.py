"""README.md runs as written: every fenced code block is executed, so the README cannot drift.

- ``python`` blocks run as ``__main__`` scripts in a temporary directory (``tempfile`` there too).
- ``sh`` blocks: each command line (``\\``-continuations joined, ``&&`` chains split) runs in one
  temporary directory shared by the whole README, after the earlier commands of its block
  (``validate`` reads the file that ``export`` wrote). ``spp-deploy ARGS`` runs as
  ``spp_deploy.cli.main(ARGS)`` -- what the console script calls -- in this process (one torch
  import instead of one per command keeps the file under 90 s on 2 cores); it must return 0.
- ``pip install`` lines are not run (CI has installed already); they must name a constraints
  file and extras that exist in pyproject.toml.
- Skipped, each with its reason: the commands in ``NEEDS_GPU`` and every line after the
  ``GPU_MARKER`` comment, and the commands in ``NOT_RUN``.

The README's placeholders are real files here, created under the names the README uses
(``FIXTURES``); no command text is rewritten. The README is the source: a changed command in it
changes what runs here, and only a new placeholder or a new program needs this file edited.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pasted_seed import seed000_file

# One worker runs them all under pytest-xdist: later commands read the files earlier ones wrote.
pytestmark = pytest.mark.xdist_group("readme")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GPU_MARKER = "# with TensorRT and nvcc:"

# Commands that cannot run without a GPU / TensorRT / nvcc, wherever they appear:
# (subcommand words, flag that must be present or None) -> reason.
NEEDS_GPU = {
    (("plugin", "build"), None): "compiles the TensorRT plugin: needs nvcc and the TensorRT headers",
    (("build",), None): "builds a TensorRT engine: needs TensorRT and an NVIDIA GPU",
    (("run",), "--engine"): "runs a TensorRT engine: needs TensorRT and an NVIDIA GPU",
}
# Other commands deliberately not run here: argv prefix -> reason.
NOT_RUN = {
    ("python", "-m", "pytest"): "the test suite itself (CI runs it; running it here would recurse)",
    ("docker", "run"): "starts Triton's container: needs docker, the image and (for TensorRT plans) an NVIDIA GPU",
    ("curl",): "queries a running Triton server",
    ("spp-deploy", "bench", "--backends", "triton-http,triton-grpc"): "times a running Triton server",
}

MODELS = '''\
import torch
from torch import nn


class Pyramid(nn.Module):
    def __init__(self, levels=(1, 2, 4)):
        super().__init__()
        self.pools = nn.ModuleList(nn.AdaptiveMaxPool2d(n) for n in levels)

    def forward(self, x):
        return torch.cat([p(x).flatten(1) for p in self.pools], 1)


def build_net(classes=1000):
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), Pyramid(), nn.Linear(8 * 21, classes))
'''


def _write_ckpt(path: Path) -> None:
    import torch

    ns: dict = {}
    exec(compile(MODELS, "mypkg/models.py", "exec"), ns)
    torch.save(ns["build_net"](classes=10).state_dict(), path)


def _write_image(path: Path) -> None:
    Image = pytest.importorskip("PIL.Image", reason="Pillow (the image extra) is not installed")
    import numpy as np

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)


# The README's placeholders, created in the working directory under the names the README uses.
FIXTURES = {
    "path/to/seed_code.py": lambda p: p.write_text(seed000_file(ndf=64)),  # seed 000 code as users have it
    "mypkg/__init__.py": lambda p: p.write_text(""),  # `mypkg.models:build_net` (the directory is on sys.path)
    "mypkg/models.py": lambda p: p.write_text(MODELS),
    "ckpt.pt": _write_ckpt,  # a state dict of build_net(classes=10)
    "image.jpg": _write_image,
    "boxes.csv": lambda p: p.write_text("x1,y1,x2,y2\n1,1,128,96\n20,10,70,60\n50,40,58,47\n"),  # detect proposals
}


# -- README parsing -------------------------------------------------------------------------


@dataclass
class Block:
    lang: str
    line: int  # README line of the first code line
    code: str


@dataclass
class Command:
    block: int  # README line of its block: commands depend only on earlier ones of the same block
    line: int
    text: str
    argv: list[str]
    skip: str | None = None


def code_blocks(text: str) -> list[Block]:
    blocks, lang, start, body = [], None, 0, []
    for no, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w+-]*)\s*$", line)
        if lang is None and fence:
            lang, start, body = fence.group(1) or "text", no + 1, []
        elif lang is not None and re.match(r"^\s*```\s*$", line):
            blocks.append(Block(lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md: code block opened at line {start - 1} is never closed"
    return blocks


def _skip_reason(argv: list[str], after_marker: bool) -> str | None:
    for prefix, reason in NOT_RUN.items():
        if tuple(argv[: len(prefix)]) == prefix:
            return reason
    if argv[0] == "spp-deploy":
        for (words, flag), reason in NEEDS_GPU.items():
            if tuple(argv[1 : 1 + len(words)]) == words and (flag is None or flag in argv):
                return reason
    if after_marker:
        return f"after the README's {GPU_MARKER!r} line"
    return None


def shell_commands(block: Block) -> list[Command]:
    out: list[Command] = []
    after_marker = False
    lines = block.code.splitlines()
    i = 0
    while i < len(lines):
        no, text = block.line + i, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if text.strip().startswith(GPU_MARKER):
            after_marker = True
        words = shlex.split(text, comments=True)
        while words:  # `a && b`: two commands
            cut = words.index("&&") if "&&" in words else len(words)
            argv, words = words[:cut], words[cut + 1 :]
            out.append(Command(block.line, no, text.strip(), argv, _skip_reason(argv, after_marker)))
    return out


BLOCKS = code_blocks(README.read_text(encoding="utf-8"))
SH = [c for b in BLOCKS if b.lang in ("sh", "bash", "shell", "console") for c in shell_commands(b)]
RUN = [c for c in SH if c.argv[0] != "pip"]
PIP = [c for c in SH if c.argv[0] == "pip"]
PYTHON = [b for b in BLOCKS if b.lang in ("python", "py")]


def _id(c: Command) -> str:
    return f"L{c.line}-" + "-".join(w for w in c.argv[:3] if not w.startswith("-"))


def test_readme_has_examples_and_only_known_languages():
    """Not vacuous: the README has a Python example and CLI commands, and no block goes unchecked."""
    assert PYTHON and len([c for c in RUN if c.skip is None]) >= 8
    assert {b.lang for b in BLOCKS} <= {"sh", "bash", "shell", "console", "python", "py"}, \
        "a README code block in a language this test does not run"


def test_quick_start_has_exactly_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    assert [b.lang for b in blocks] == ["sh", "sh"]
    assert [len(b.code.strip().splitlines()) for b in blocks] == [1, 1]
    assert "spp-deploy demo" in blocks[0].code and "pytest" in blocks[1].code


# -- running ----------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _inside(path: Path):
    """cwd, sys.path[0] and tempfile's directory set to ``path`` (as a shell there would have them);
    modules imported from ``path`` are forgotten afterwards."""
    old_cwd, old_tmp, before = os.getcwd(), tempfile.tempdir, set(sys.modules)
    os.chdir(path)
    sys.path.insert(0, str(path))
    tempfile.tempdir = str(path / "tmp")
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path.remove(str(path))
        tempfile.tempdir = old_tmp
        for name in set(sys.modules) - before:
            if str(path) in str(getattr(sys.modules[name], "__file__", None) or ""):
                del sys.modules[name]


class Workspace:
    """One directory for the whole README; commands run in README order, each at most once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[int, Result] = {}
        (path / "tmp").mkdir()
        for rel, make in FIXTURES.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                make(target)
            except pytest.skip.Exception:
                pass  # a command that needs it fails with the reason (the hint names the extra)

    def run(self, argv: list[str]) -> Result:
        if argv[0] != "spp-deploy":
            pytest.fail(f"README command with a program this test does not run: {argv[0]!r}")
        from spp_deploy.cli import main

        out, err = io.StringIO(), io.StringIO()
        with _inside(self.path), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv[1:])
            except SystemExit as e:  # argparse: usage errors, --help, --version
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        return Result(code, out.getvalue(), err.getvalue())

    def result(self, cmd: Command) -> Result:
        for c in RUN[: RUN.index(cmd) + 1]:  # earlier commands of the block first: their files are inputs
            if c.block == cmd.block and c.skip is None and id(c) not in self.results:
                self.results[id(c)] = self.run(c.argv)
        return self.results[id(cmd)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("readme"))


# Commands that export a model take 10-30 s each on 2 cores; a command of the same block after one
# runs it first, and a command reading what one wrote needs it run: those are as slow.
EXPORTING = {"demo", "export", "export-detector"}


def _exports(cmd: Command) -> bool:
    return cmd.skip is None and cmd.argv[1:2] != [] and cmd.argv[1] in EXPORTING


def _slow(cmd: Command) -> bool:
    before = RUN[: RUN.index(cmd) + 1]
    written = {c.argv[c.argv.index("-o") + 1] for c in before if _exports(c) and "-o" in c.argv[:-1]}
    return any(c.block == cmd.block and _exports(c) for c in before) or any(
        w == f or w.startswith(f + "/") for w in cmd.argv[1:] for f in written)


@pytest.mark.parametrize(
    "cmd", [pytest.param(c, marks=pytest.mark.skip(reason=c.skip)) if c.skip
            else pytest.param(c, marks=pytest.mark.slow) if _slow(c) else c for c in RUN], ids=_id
)
def test_readme_command(cmd: Command, workspace: Workspace):
    res = workspace.result(cmd)
    assert res.code == 0, (
        f"README.md line {cmd.line}: `{cmd.text}` exited {res.code}\n"
        f"stdout (tail):\n{res.stdout[-2000:]}\nstderr (tail):\n{res.stderr[-2000:]}"
    )


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: f"L{b.line}")
def test_readme_python_block(block: Block, tmp_path: Path):
    script = tmp_path / "readme_example.py"
    script.write_text(textwrap.dedent(block.code))
    (tmp_path / "tmp").mkdir()
    with _inside(tmp_path):
        runpy.run_path(str(script), run_name="__main__")


def _extras_in_pyproject() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*=", section, re.MULTILINE))


@pytest.mark.parametrize("cmd", PIP, ids=_id)
def test_readme_pip_line_names_existing_extras(cmd: Command):
    """Not run (CI installed already): the constraints file exists and every extra is defined."""
    argv = cmd.argv
    assert argv[:2] == ["pip", "install"], cmd.text
    assert "-c" in argv and (ROOT / argv[argv.index("-c") + 1]).is_file(), f"line {cmd.line}: no constraints file"
    assert "-e" in argv, f"line {cmd.line}: not an install of this checkout"
    target = argv[argv.index("-e") + 1]
    m = re.fullmatch(r"\.\[([\w,-]+)\]", target)
    assert m, f"line {cmd.line}: expected -e \".[extra,...]\", got {target!r}"
    extras = m.group(1).split(",")
    unknown = set(extras) - _extras_in_pyproject()
    assert not unknown, f"README.md line {cmd.line} names extras that pyproject.toml lacks: {sorted(unknown)}"
    assert not {"cpu", "gpu"} <= set(extras), f"line {cmd.line}: cpu and gpu extras together"
