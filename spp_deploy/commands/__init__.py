"""One module per ``spp-deploy`` subcommand. Each defines ``register(subparsers)`` which adds
its parser and sets ``func``; ``spp_deploy.cli`` discovers them, so adding a command touches
no shared file. Shared argument helpers live in ``common``."""

from __future__ import annotations

import importlib
import pkgutil


def command_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "common":
            yield importlib.import_module(f"{__name__}.{info.name}")
