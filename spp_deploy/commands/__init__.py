"""One module per ``spp-deploy`` subcommand. Each defines ``register(subparsers)`` which adds
its parser and sets ``func``; ``spp_deploy.cli`` discovers them, so adding a command touches
no shared file. Shared argument definitions live in ``args``, helpers
for parsed arguments in ``common``."""

from __future__ import annotations

import importlib
import pkgutil


def command_modules():
    """The modules that define a command (``register``); helpers like ``args`` and ``common`` do not."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            yield module
