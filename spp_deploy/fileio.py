"""Writing output files: checked before the work starts, written whole or not at all.

Every file the toolkit writes goes through ``check_output`` (so a bad path fails in one line
before an export or a benchmark runs) and ``atomic_write`` (a temporary file beside the target,
renamed into place, removed on any failure, Ctrl-C or SIGTERM included). The file gets the mode
``open()`` would give it (0666 minus the umask), not the 0600 of ``tempfile.mkstemp``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import UserError


def check_output(path: str | os.PathLike, what: str = "output", force: bool = False) -> Path:
    """``path`` as a writable file path, or a one-line ``UserError``: empty, a directory (or
    ends with a separator), a missing or unwritable directory, or an existing read-only file
    (replaced only with ``force``)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise UserError(f"{what} path is empty")
    p = Path(text)
    if str(text).endswith(("/", os.sep)) or p.is_dir():
        raise UserError(f"{what} {text} is a directory: give a file path inside it")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"{what} directory does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what} {p}: directory {parent} is not writable")
    if p.exists() and _read_only(p) and not force:
        raise UserError(f"{what} {p} exists and is read-only: not replaced; to replace it, use", option="force",
                        example="")
    return p


def _read_only(p: Path) -> bool:
    """Not writable by us, or marked read-only (no write bit: root may write anyway, but the
    owner said not to)."""
    return not os.access(p, os.W_OK) or not p.stat().st_mode & 0o222


def default_mode() -> int:
    """The mode a new file gets from ``open()``: 0666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None],
                 verify: Callable[[Path], None] | None = None) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, ``verify(tmp)``, then rename it to ``path``.
    On any exception (KeyboardInterrupt and SIGTERM included) the temporary file is removed and
    ``path`` is left as it was."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        os.chmod(tmp, default_mode())
        write(Path(tmp))
        if verify is not None:
            verify(Path(tmp))
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write`` of a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))
