"""Why an exporter failed, in one line: the reason class, where in the user's code, and torch's
own words for it.

torch wraps the real error in several layers ("Failed to export the model with torch.export.
This is step 1/3 ...", in terminal colours); the cause (a data-dependent ``.item()``, a size
specialised by Python arithmetic, the shape solver, an op without a dynamic-shape export) and
the user's line are inside the chain, and this module digs them out.
"""

from __future__ import annotations

import inspect
import linecache
import os
import re
import traceback
from typing import Iterator

import torch

from ..util.errors import first_line, strip_ansi

DATA_DEPENDENT = "a data-dependent value (.item()/.tolist() of a tensor) sets a size or a branch"
SPECIALISED = "a size is specialised by Python int/float arithmetic (the trace keeps the example's value)"
SOLVER = "torch's shape solver failed on the size expressions"
NO_DYNAMIC_OP = "an op has no dynamic-shape export"

# (reason, exception type names, message fragments): the first class that matches wins
_CLASSES = (
    (DATA_DEPENDENT, ("GuardOnDataDependentSymNode", "DataDependentOutputException", "PendingUnbackedSymbolNotFound"),
     ("data-dependent", "data dependent", "unbacked")),
    (SPECIALISED, ("ConstraintViolationError",), ("constraints violated", "specialized", "specialised",
                                                  "traced it as a constant", "converting a tensor to a python",
                                                  "inferred a static shape")),
    (SOLVER, ("SympifyError", "PolynomialError", "RecursionError"), ("cannot be solved", "could not be solved",
                                                                     "inequality", "sympy")),
    (NO_DYNAMIC_OP, ("DispatchError", "UnsupportedOperatorError", "SymbolicValueError"),
     ("no onnx function found", "unsupported: onnx export of operator", "no decompositions registered",
      "is not supported", "not implemented", "input size not accessible")),
)
_INTERNAL = (AttributeError, TypeError, KeyError, IndexError, AssertionError)
_SKIP_PKGS = ("torch", "onnx", "onnxscript", "onnx_ir", "sympy", "spp_deploy")
_TS_NODE = re.compile(r"node defined in (.+?)\((\d+)\)")
_CAUSED_BY = re.compile(r'File "(.+?)", line (\d+)')


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, outermost first (each once)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException) -> str | None:
    """The reason class of an exporter failure, or None when it is none of the known ones."""
    excs = list(chain(exc))
    names = {type(e).__name__ for e in excs}
    text = " ".join(strip_ansi(_text(e)).lower() for e in excs)
    for reason, types, fragments in _CLASSES:
        if names.intersection(types) or any(f in text for f in fragments):
            return reason
    return None


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not hide the error being reported
        return ""


def detail(exc: BaseException) -> str:
    """torch's own first line for the innermost error that says something (not a wrapper's
    "Failed to export ... step 1/3", not an internal AttributeError of the exporter)."""
    excs = list(chain(exc))
    e = next((e for e in reversed(excs) if not isinstance(e, _INTERNAL) and _text(e).strip()), excs[-1])
    return _trim(first_line(e))


def _trim(line: str, limit: int = 240) -> str:
    """torch's line without its boilerplate tail (the graph dump, the request for a pull request)."""
    for tail in (" [Caused by", ". Please feel free", " Please feel free", "  (Size-like symbols"):
        line = line.split(tail)[0]
    line = line.rstrip(" .;")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _user_file(path: str) -> bool:
    norm = os.path.normpath(path)
    if not norm.endswith(".py") or norm.startswith("<"):
        return False
    parts = norm.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        i = max(i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages"))
        return i + 1 < len(parts) and parts[i + 1] not in _SKIP_PKGS
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stdlib = os.path.dirname(os.__file__)
    return not norm.startswith(here + os.sep) and not norm.startswith(stdlib + os.sep)


def _locations(exc: BaseException) -> Iterator[tuple[str, int]]:
    """(file, line) candidates in the user's code, the most precise first."""
    for e in reversed(list(chain(exc))):
        stack = getattr(e, "real_stack", None)  # dynamo's user stack
        for fs in reversed(list(stack or [])):
            yield fs.filename, fs.lineno
        for fs in reversed(traceback.extract_tb(e.__traceback__)):
            yield fs.filename, fs.lineno
        text = strip_ansi(_text(e))
        for m in list(_TS_NODE.finditer(text)) + list(_CAUSED_BY.finditer(text)):
            yield m.group(1), int(m.group(2))


def location(exc: BaseException, model: torch.nn.Module | None = None) -> tuple[str, int, str | None] | None:
    """(file, line, module path or None) in the user's code where the export broke, when
    torch's chain says: a line inside one of ``model``'s ``forward`` methods first."""
    found = [(f, n) for f, n in _locations(exc) if _user_file(f)]
    for f, n in found:
        mod = module_at(model, f, n)
        if mod is not None:
            return f, n, mod
    return (*found[0], None) if found else None


def module_at(model: torch.nn.Module | None, path: str, line: int) -> str | None:
    """The module path (``features.3``; ``""`` for the model itself) whose ``forward`` holds
    ``path:line``."""
    if model is None:
        return None
    norm = os.path.realpath(path)
    for name, m in model.named_modules():
        fwd = type(m).forward
        try:
            src = inspect.getsourcefile(fwd)
            lines, start = inspect.getsourcelines(fwd)
        except (OSError, TypeError):
            continue
        if src and os.path.realpath(src) == norm and start <= line < start + len(lines):
            return name
    return None


def _short(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def describe(exc: BaseException, model: torch.nn.Module | None = None) -> str:
    """One line: reason class, where (module path, file:line and the line itself), torch's words."""
    where = location(exc, model)
    at = ""
    if where:
        path, line, mod = where
        code = linecache.getline(path, line).split("  #")[0].strip()
        code = f": {code if len(code) <= 80 else code[:77] + '...'}" if code else ""
        place = f"{_short(path)}:{line}{code}"
        at = f" at {place}" if mod is None else f" in {'the model' if mod == '' else f'module {mod!r}'} ({place})"
    reason = classify(exc)
    return f"{reason}{at}: {detail(exc)}" if reason else f"{detail(exc)}{at}"
