"""The import graph has the one-way shape docs/architecture.md draws: export/ and runtime/ do not
import each other, no library module imports the command line, ops/ and util/ sit at the bottom,
and the top level stays a handful of entry points."""

import ast
import re
from pathlib import Path

import spp_deploy

ROOT = Path(spp_deploy.__file__).parent


def _imports(f: Path) -> set[str]:
    """Absolute module names ``f`` imports (relative imports resolved), lazy imports included."""
    pkg = ".".join(("spp_deploy", *f.relative_to(ROOT).with_suffix("").parts))
    if f.name != "__init__.py":
        pkg = pkg.rpartition(".")[0]
    out = set()
    for n in ast.walk(ast.parse(f.read_text())):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = pkg.split(".")[: len(pkg.split(".")) - (n.level - 1)] if n.level else []
            mod = ".".join([*base, n.module] if n.module else base)
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in n.names}  # `from . import runtime`
    return out


def _arrows(src: str, dst: str) -> list[str]:
    bad = []
    for f in (ROOT / src).rglob("*.py") if (ROOT / src).is_dir() else [ROOT / src]:
        hits = sorted(m for m in _imports(f) if m == f"spp_deploy.{dst}" or m.startswith(f"spp_deploy.{dst}."))
        bad += [f"{f.relative_to(ROOT)} -> {m}" for m in hits]
    return bad


def test_export_and_runtime_do_not_import_each_other():
    assert _arrows("export", "runtime") == [] and _arrows("export", "deploy") == []
    assert _arrows("runtime", "export") == [] and _arrows("runtime", "deploy") == []


def test_no_library_module_imports_the_command_line():
    bad = []
    for f in ROOT.rglob("*.py"):
        if "commands" in f.relative_to(ROOT).parts or f.name in ("cli.py", "__main__.py"):
            continue
        bad += [f"{f.relative_to(ROOT)} -> {m}" for m in _imports(f)
                if m.startswith(("spp_deploy.commands", "spp_deploy.cli"))]
    assert bad == []


def test_the_contract_is_a_leaf():
    deps = {m.split(".")[1] for m in _imports(ROOT / "contract.py") if m.startswith("spp_deploy.")}
    assert deps <= {"ops"}  # ops.pyramid only lazily, for SppConfig.module()


def _module_level_imports(f: Path) -> set[str]:
    """Top-level module names ``f`` imports when it is imported (function and class bodies skipped)."""
    out, todo = set(), list(ast.parse(f.read_text()).body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and not n.level and n.module:
            out.add(n.module.split(".")[0])
        todo += list(ast.iter_child_nodes(n))
    return out


def test_tensorrt_is_imported_lazily():
    """Every module (runtime/trt/ included) imports without TensorRT: it is imported where used."""
    assert [str(f.relative_to(ROOT)) for f in ROOT.rglob("*.py") if "tensorrt" in _module_level_imports(f)] == []


def test_native_is_below_export_runtime_and_the_command_line():
    """native/ (our C++ from Python) is a leaf the layers above use: runtime finds the plugin
    through it, the CLI builds through it; it imports none of them."""
    assert [a for dst in ("export", "runtime", "deploy", "commands", "cli") for a in _arrows("native", dst)] == []


# The one upward import allowed below: util/constants.py's deprecated backend-name attributes
# (constants.BACKENDS, ...) read the backend registry lazily, inside a module __getattr__.
_DEPRECATED_FORWARDS = {("util/constants.py", "spp_deploy.runtime.backends")}


def _package_deps(src: str) -> set[str]:
    """The spp_deploy packages/modules one level below the root that ``src`` imports."""
    out = set()
    for f in (ROOT / src).rglob("*.py"):
        rel = str(f.relative_to(ROOT))
        out |= {m.split(".")[1] for m in _imports(f) if m.startswith("spp_deploy.") and m.count(".") >= 1
                and not any(rel == r and (a == m or a.startswith(m + ".")) for r, a in _DEPRECATED_FORWARDS)}
    return out - {src}


def test_the_top_level_is_a_few_entry_points():
    """Modules are grouped by stage (ops/, sources/, util/, export/, runtime/, ...): the top level
    holds only the package's entry points."""
    top = sorted(f.name for f in ROOT.glob("*.py"))
    assert len(top) <= 9, top


def test_ops_and_util_are_at_the_bottom():
    """The ops import only util/ (and each other); util/ imports nothing else of the package."""
    assert _package_deps("util") == set()
    assert _package_deps("ops") <= {"util"}


def test_sources_and_runtime_do_not_import_the_recognizer():
    """Running a model (runtime/) and making one (sources/) need no layer recognition."""
    assert _arrows("runtime", "recognize") == [] and _arrows("sources", "recognize") == []
    assert _package_deps("sources") <= {"ops", "util", "detection"}


def test_package_docstrings_name_modules_that_exist():
    """A package's docstring lists its modules as ``name``: ...; each one is there."""
    missing = []
    for init in ROOT.rglob("__init__.py"):
        for name in re.findall(r"``(\w+)``:", ast.get_docstring(ast.parse(init.read_text())) or ""):
            if not (init.parent / f"{name}.py").exists() and not (init.parent / name / "__init__.py").exists():
                missing.append(f"{init.relative_to(ROOT)}: {name}")
    assert missing == []


def _deprecated_alias_modules() -> set[str]:
    """Modules kept only as deprecated aliases: they warn with a DeprecationWarning when imported."""
    out = set()
    for f in ROOT.rglob("*.py"):
        for n in ast.parse(f.read_text()).body:
            call = n.value if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) else None
            if call is not None and ast.unparse(call.func) == "warnings.warn" and "DeprecationWarning" in ast.unparse(call):
                out.add(".".join(("spp_deploy", *f.relative_to(ROOT).with_suffix("").parts)))
    return out


def test_nothing_imports_an_old_module_path():
    """The old paths (util/moved.py) are for users' code: the package, its tests (but the one that
    tests the old paths) and the benchmarks import the new ones."""
    from spp_deploy.util.moved import MOVED

    old = set(MOVED) | _deprecated_alias_modules()
    bad = [f"{f.relative_to(ROOT)} -> {m}" for f in ROOT.rglob("*.py") for m in _imports(f) if m in old]
    for folder in (ROOT.parent / "tests", ROOT.parent / "benchmarks"):
        for f in (f for f in folder.rglob("*.py") if f.name not in ("test_module_aliases.py", "test_registry.py")):
            for n in ast.walk(ast.parse(f.read_text())):
                names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                         [n.module, *(f"{n.module}.{a.name}" for a in n.names)]
                         if isinstance(n, ast.ImportFrom) and not n.level else [])
                bad += [f"{f.relative_to(ROOT.parent)}:{n.lineno} -> {m}" for m in names if m in old]
    assert bad == []


def test_nothing_below_imports_the_checked_export():
    """checked_export.py (deploy.py's new name) joins export/ and runtime/: neither, nor native/, imports it."""
    assert [a for src in ("export", "runtime", "native") for a in _arrows(src, "checked_export")] == []


def test_the_export_pass_reaches_lowerings_only_through_the_registry():
    """One trace function and one graph pass for every op: neither names a lowering module."""
    names = _imports(ROOT / "export" / "passes.py") | _imports(ROOT / "export" / "trace.py")
    assert sorted(m for m in names if m.startswith("spp_deploy.export.lowering")) == []
