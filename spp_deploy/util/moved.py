"""The module paths from before the package was grouped by stage, still importable.

A meta-path finder answers each old name with the module now at the new path: the very same
object (so classes, ``isinstance`` and the ``torch.library`` registrations exist once), with a
DeprecationWarning that names the new path. Nothing is copied, so pickles and code written
against the old paths keep working while they move.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "spp_deploy.bins": "spp_deploy.ops.bins",
    "spp_deploy.op": "spp_deploy.ops.pyramid",
    "spp_deploy.window": "spp_deploy.ops.window_pyramid",
    "spp_deploy.tabulated": "spp_deploy.ops.table_pyramid",
    "spp_deploy.projection": "spp_deploy.ops.projection",
    "spp_deploy.sizepool": "spp_deploy.ops.size_dependent_pool",
    "spp_deploy.seeds": "spp_deploy.sources.seeds",
    "spp_deploy.zoo": "spp_deploy.sources.zoo",
    "spp_deploy.loading": "spp_deploy.sources.loading",
    "spp_deploy.modelstate": "spp_deploy.sources.modelstate",
    "spp_deploy.outputs": "spp_deploy.sources.outputs",
    "spp_deploy.recognize.heads": "spp_deploy.sources.heads",
    "spp_deploy.recognize.tabulate": "spp_deploy.recognize.table_probe",
    "spp_deploy.lint": "spp_deploy.runtime.trt.lint",
    "spp_deploy.doctor": "spp_deploy.commands.doctor_checks",
    "spp_deploy.deploy": "spp_deploy.checked_export",
    **{f"spp_deploy.{m}": f"spp_deploy.util.{m}" for m in
       ("errors", "extras", "lazy", "constants", "fileio", "shapes", "inputs", "limits", "arguments")},
}
"""Old module name -> the module that replaced it."""


def _caller_level() -> int:
    """``warnings.warn``'s stacklevel for the first frame outside the import machinery and this file."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or frame.f_code.co_filename == __file__):
        frame, level = frame.f_back, level + 1
    return level


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finder and loader for the names in ``MOVED``."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__ next: put back below
        return module

    def exec_module(self, module: ModuleType) -> None:
        old = module.__spec__.name
        module.__spec__ = module.__spec__.loader_state
        warnings.warn(f"{old} moved to {module.__name__}; import it from there", DeprecationWarning,
                      stacklevel=_caller_level())


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
