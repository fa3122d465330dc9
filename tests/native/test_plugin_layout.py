"""The C++ tree's layering: ``plugins/common/`` is what both plugins share and includes no plugin
folder (nor the library entry point in ``plugins/api/``); the bin formulas have one C++ copy,
``common/sppBins.h``, that every other source reaches by including it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
PLUGIN_FOLDERS = ("spatialPyramidPoolPlugin", "windowSpatialPyramidPoolPlugin")
SOURCES = ("*.h", "*.cpp", "*.cu", "*.cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def _sources(folder: Path) -> list[Path]:
    return sorted(p for pattern in SOURCES for p in folder.glob(pattern))


def _local_includes(path: Path) -> list[Path]:
    """The quoted includes of ``path`` that resolve inside plugins/ (TensorRT/CUDA headers do not)."""
    out = []
    for name in INCLUDE.findall(path.read_text()):
        target = (path.parent / name).resolve()
        if target.is_file() and PLUGINS in target.parents:
            out.append(target)
    return out


@pytest.mark.parametrize("source", _sources(PLUGINS / "common"), ids=lambda p: p.name)
def test_common_includes_no_plugin_folder(source):
    for target in _local_includes(source):
        assert target.parent == PLUGINS / "common", f"{source.name} includes {target.relative_to(PLUGINS)}"


def test_every_local_include_resolves():
    """A header moved without its includers updated would leave a quoted include naming nothing
    (TensorRT's Nv*.h come from its include directory)."""
    missing = [f"{source.relative_to(PLUGINS)}: {name}"
               for folder in [PLUGINS / "common", PLUGINS / "api", *(PLUGINS / f for f in PLUGIN_FOLDERS)]
               for source in _sources(folder) for name in INCLUDE.findall(source.read_text())
               if not name.startswith("Nv") and not (source.parent / name).is_file()]
    assert not missing


def test_one_cpp_copy_of_the_bin_math():
    """Only common/sppBins.h defines the rules' functions; both plugins include that file."""
    defining = [p.relative_to(PLUGINS) for folder in PLUGINS.iterdir() if folder.is_dir() for p in _sources(folder)
                if re.search(r"\bAxisBin\s+(adaptive|ceilPad|floorKernel|rounded)\s*\(", p.read_text())]
    assert defining == [Path("common/sppBins.h")]
    users = {p.parent.name for folder in PLUGIN_FOLDERS for p in _sources(PLUGINS / folder)
             if PLUGINS / "common" / "sppBins.h" in _local_includes(p)}
    assert users == set(PLUGIN_FOLDERS)


def test_library_entry_point_is_in_api():
    entry = [p.relative_to(PLUGINS) for folder in PLUGINS.iterdir() if folder.is_dir() for p in _sources(folder)
             if re.search(r"\bgetCreators\s*\(", p.read_text()) and p.suffix == ".cpp"]
    assert Path("api/pluginLibrary.cpp") in entry
    assert all(p.parts[0] in ("api", "tools") for p in entry), entry
