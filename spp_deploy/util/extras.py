"""How to install an optional extra (``[project.optional-dependencies]`` in pyproject.toml), worded
for the way spp-deploy is installed: from a source checkout (editable install, or the checkout on
``PYTHONPATH``) the hint names the local extra; otherwise the published package's extra."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

EXTRAS = ("cpu", "gpu", "tensorrt", "plot", "image", "triton", "dev")


def source_checkout() -> Path | None:
    """The checkout's root when this package is imported from a source tree (a pyproject.toml of
    spp-deploy beside the package directory), else None (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]  # CHECKOUT/spp_deploy/util/extras.py
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return root if re.search(r'^name\s*=\s*"spp-deploy"\s*$', text, re.MULTILINE) else None


def pip_install_hint(extra: str) -> str:
    """``pip install -c constraints.txt -e ".[extra]"`` in a checkout (prefixed with ``cd CHECKOUT &&``
    when the working directory is elsewhere), ``pip install "spp-deploy[extra]"`` otherwise."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r} (known: {', '.join(EXTRAS)})")
    root = source_checkout()
    if root is None:
        return f'pip install "spp-deploy[{extra}]"'
    pin = "-c constraints.txt " if (root / "constraints.txt").is_file() else ""
    cmd = f'pip install {pin}-e ".[{extra}]"'
    try:
        here = Path.cwd().resolve() == root
    except OSError:  # the working directory was removed
        here = False
    return cmd if here else f"cd {shlex.quote(str(root))} && {cmd}"
