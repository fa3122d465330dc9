"""Package attributes that import their module on first use (PEP 562), so that importing a
package stays cheap: the CLI starts, and answers Ctrl-C, before torch loads."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_attributes(package: str, table: dict[str, str], namespace: dict) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: name -> its value from ``.table[name]`` (a
    submodule path relative to the package), cached in ``namespace`` after the first use."""

    def __getattr__(name: str):
        if name in table:
            value = getattr(importlib.import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
