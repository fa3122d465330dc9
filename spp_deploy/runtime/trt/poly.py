"""Polygraphy (NVIDIA's TensorRT tooling) as the generic build/run layer, imported only when asked.

Polygraphy imports ``tensorrt`` lazily through module-level proxies; ``using`` points them (and
``sys.modules``) at the ``tensorrt`` module spp-deploy was given (the real one, or a stand-in in
tests) for one call, and
turns Polygraphy's log and its exceptions into one-line ``UserError``s naming TensorRT's reason.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from typing import Any, Iterator

from ...util.errors import UserError, first_line
from ...util.extras import pip_install_hint

_MODULES = ("polygraphy.backend.trt", "polygraphy.backend.trt.util", "polygraphy.datatype.tensorrt",
            "polygraphy.util.util")


_LAZY: list = []  # Polygraphy's lazy ``tensorrt`` proxies, found once after the import


def import_polygraphy(what: str = "this command") -> Any:
    """``polygraphy.backend.trt``, or a one-line ``UserError`` saying how to install it."""
    if not _LAZY:
        try:
            for name in _MODULES:
                importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"Polygraphy cannot be imported ({first_line(e)}); {what} needs it: "
                            f"{pip_install_hint('tensorrt')}") from None
        _LAZY[:] = [m.trt for name, m in list(sys.modules.items())
                    if name.startswith("polygraphy.") and type(getattr(m, "trt", None)).__name__ == "LazyModule"]
    return sys.modules["polygraphy.backend.trt"]


class _Collect(logging.Handler):
    """Keeps Polygraphy's error lines (TensorRT's own errors reach it through Polygraphy's logger)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            text = record.getMessage().strip()
            if text:
                self.errors.append(text)
        elif os.environ.get("SPP_DEPLOY_TRT_VERBOSE"):
            print(f"[Polygraphy] {record.getMessage()}")


@contextlib.contextmanager
def using(trt: Any, what: str, hint: str = "") -> Iterator[_Collect]:
    """Polygraphy bound to ``trt`` and quiet (its log kept, not printed) for one call; a
    ``PolygraphyException`` becomes ``UserError('<what>: <TensorRT's first errors> (<hint>)')``."""
    import_polygraphy(what)
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    bound = [(lazy, vars(lazy).get("module")) for lazy in _LAZY]
    for lazy in _LAZY:  # the proxy keeps its API (is_installed, ...) and forwards to ``trt``
        object.__setattr__(lazy, "module", trt)
    before = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = trt  # the module itself already, unless a stand-in was given
    py_logger = logging.getLogger("Polygraphy")
    handler = _Collect()
    old = (G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors, G_LOGGER.letter,
           py_logger.propagate)
    G_LOGGER.module_severity = G_LOGGER.VERBOSE if os.environ.get("SPP_DEPLOY_TRT_VERBOSE") else G_LOGGER.WARNING
    G_LOGGER.use_python_logging_system, G_LOGGER.colors, G_LOGGER.letter = True, False, False
    py_logger.addHandler(handler)
    py_logger.propagate = False
    try:
        yield handler
    except PolygraphyException as e:
        reasons = [r for r in handler.errors if r != str(e)] or [str(e)]  # TensorRT's words first
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        raise UserError(f"{what}: " + "; ".join(r.splitlines()[0] for r in reasons[:3]) + more
                        + (f" ({hint})" if hint else "")) from None
    finally:
        py_logger.removeHandler(handler)
        (G_LOGGER.module_severity, G_LOGGER.use_python_logging_system, G_LOGGER.colors, G_LOGGER.letter,
         py_logger.propagate) = old
        for lazy, module in bound:
            object.__setattr__(lazy, "module", module)
        if before is None:
            sys.modules.pop("tensorrt", None)
        else:
            sys.modules["tensorrt"] = before
