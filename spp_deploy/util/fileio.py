"""Writing output files: checked before the work starts, written whole or not at all, and never
at the cost of a file the user did not ask to replace.

Every file the toolkit writes goes through ``check_output`` (so a bad path fails in one line
before an export or a benchmark runs) and ``atomic_write`` (a temporary file beside the target,
renamed into place, removed on any failure, Ctrl-C or SIGTERM included). The file gets the mode
``open()`` would give it (0666 minus the umask), not the 0600 of ``tempfile.mkstemp``; its name
is chosen before it is created, so a signal can never leave it behind unknown.

Targets that are not regular files are treated as every Unix tool treats them: FIFOs, character
devices and ``/dev/fd/N`` (what a shell's ``>(cmd)`` passes) are written straight into (no temp
file beside them, no rename); a symlink is written through (the rename happens beside its
target, the link stays).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import UserError

KERNEL_FILESYSTEMS = ("/proc", "/sys")  # pseudo files: no temp file can be made or renamed there
FD_PATHS = ("/dev/fd/", "/dev/stdout", "/dev/stderr", "/proc/self/fd/", "/proc/thread-self/fd/")
TEMP_SUFFIX = ".tmp"
_RANDOM = 8  # random characters in a temporary name (as tempfile uses)


def is_stream(path: str | os.PathLike) -> bool:
    """A target written straight into: a FIFO, character device or socket (links followed), or an
    open file descriptor's path (``/dev/fd/N``).

    Args:
        path: the output path.

    Returns:
        True for a stream (never renamed onto or replaced).
    """
    text = os.fspath(path)
    if text.startswith(FD_PATHS):
        return True
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def real_target(path: str | os.PathLike) -> Path:
    """Where a write to ``path`` lands: symlinks followed (a dangling link: the file it names).

    Args:
        path: the output path.

    Returns:
        The absolute path of the file a write replaces.
    """
    return Path(os.path.realpath(os.fspath(path)))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """One file under two names (symlinks, ``..``, hard links).

    Args:
        a: a path.
        b: another path.

    Returns:
        True when both name one file (existing or not).
    """
    if real_target(a) == real_target(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def name_max(directory: str | os.PathLike) -> int:
    """The longest file name (in bytes) ``directory``'s file system takes (NAME_MAX).

    Args:
        directory: an existing directory.

    Returns:
        NAME_MAX in bytes (255 where the system does not say).
    """
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _path_max(directory: str | os.PathLike) -> int:
    try:
        return os.pathconf(directory, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


def check_output(path: str | os.PathLike, what: str = "output", force: bool = False,
                 inputs: Iterable[tuple[str, str | os.PathLike | None]] = ()) -> Path:
    """``path`` as a writable file path, or a one-line ``UserError``: empty, a directory (or
    ends with a separator), one of ``inputs`` ((what, path) pairs: the files the work reads), a
    name too long for the file system, in /proc or /sys, a missing or unwritable directory, or
    an existing file (replaced only with ``force``). Streams (FIFOs, devices, ``/dev/fd/N``) are
    written into, never replaced, so they need no ``force``.

    Args:
        path: the output path.
        what: names the output in a message.
        force: an existing file may be replaced.
        inputs: (what, path) of each file the work reads (None entries are ignored).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        UserError: any of the above, before any work is done.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise UserError(f"{what} path is empty")
    p = Path(text)
    _check_name(p, p.parent if str(p.parent) else ".", what)  # before any stat: they fail on such names
    if str(text).endswith(("/", os.sep)) or p.is_dir():
        raise UserError(f"{what} {text} is a directory: give a file path inside it")
    if not is_stream(p) or os.path.isfile(p):  # a terminal may be input and output; /dev/fd/3 a file
        check_not_input(p, inputs, what)
    if is_stream(p):
        if not os.path.exists(p):
            raise UserError(f"cannot write {what} {p}: no such open file descriptor")
        if not os.access(p, os.W_OK):
            raise UserError(f"cannot write {what} {p}: permission denied")
        return p
    real = real_target(p)
    _check_not_kernel(real, p, what)
    parent = real.parent
    if not parent.is_dir():
        raise UserError(f"{what} directory does not exist: {parent if p.is_symlink() else p.parent}")
    _check_name(real, parent, what, shown=p)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what} {p}: directory {parent} is not writable")
    if real.exists() and not force:
        why = "exists and is read-only" if _read_only(real) else "already exists"
        raise UserError(f"{what} {p} {why}: not replaced; to replace it, use", option="force", example="")
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output directory") -> Path:
    """``path`` as a directory to write into (it may not exist yet: it is created with its
    parents), or a one-line ``UserError``: empty, a file, a name too long for the file system, in
    /proc or /sys, or no writable existing ancestor.

    Args:
        path: the directory.
        what: names it in a message.

    Returns:
        ``path`` as a ``Path`` (not created here).

    Raises:
        UserError: any of the above.
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise UserError(f"{what} path is empty")
    p = Path(text)
    for part in p.parts:
        _check_name(Path(part), ".", what, shown=p)
    _check_name(p, ".", what)
    real = real_target(p)
    _check_not_kernel(real, p, what)
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {p} is a file, not a directory")
    base = next(d for d in (real, *real.parents) if d.exists())
    if not base.is_dir():
        raise UserError(f"cannot create {what} {p}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what} {p}: {base} is not writable")
    return p


def _check_not_kernel(real: Path, shown: Path, what: str) -> None:
    for fs in KERNEL_FILESYSTEMS:
        if real == Path(fs) or Path(fs) in real.parents:
            raise UserError(f"cannot write {what} {shown}: {fs} is a kernel file system, not a place for files")


def _check_name(path: Path, directory, what: str, shown: Path | None = None) -> None:
    """A file name within NAME_MAX and a path within PATH_MAX (the directory's limits when it
    exists, else Linux's)."""
    shown = path if shown is None else shown
    size, limit = len(os.fsencode(path.name)), name_max(directory)
    if size > limit:
        raise UserError(f"cannot write {what} {shown}: the file name is {size} bytes long; the file system takes "
                        f"at most {limit}")
    if len(os.fsencode(os.path.abspath(path))) >= _path_max(directory):
        raise UserError(f"cannot write {what} {shown}: the path is longer than the system's limit")


def check_not_input(path: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike | None]],
                    what: str = "output") -> None:
    """Refuse an output that is one of the files the work reads (``force`` does not override it:
    the input would be gone before it was read in full).

    Args:
        path: the output path.
        inputs: (what, path) of each file the work reads (None entries are ignored).
        what: names the output in a message.

    Raises:
        UserError: ``path`` is one of ``inputs``.
    """
    for label, source in inputs:
        if source is not None and str(source).strip() and same_file(path, source):
            raise UserError(f"{what} {os.fspath(path)} is the {label} ({os.fspath(source)}): writing it would "
                            "destroy that input; choose another path")


def _read_only(p: Path) -> bool:
    """Not writable by us, or marked read-only (no write bit: root may write anyway, but the
    owner said not to)."""
    return not os.access(p, os.W_OK) or not p.stat().st_mode & 0o222


def default_mode() -> int:
    """The mode a new file gets from ``open()``: 0666 minus the process umask.

    Returns:
        The permission bits.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_prefix(name: str, directory: str | os.PathLike) -> str:
    """``.NAME.`` for a temporary file beside NAME, NAME cut (in bytes) so that the whole
    temporary name stays within the file system's NAME_MAX.

    Args:
        name: the final file's name.
        directory: where the temporary file goes.

    Returns:
        The prefix for ``tempfile``.
    """
    room = name_max(directory) - 2 - _RANDOM - len(TEMP_SUFFIX)
    return "." + os.fsdecode(os.fsencode(name)[:max(room, 1)]) + "."


def _cannot_write(path, e: OSError) -> UserError:
    return UserError(f"cannot write {os.fspath(path)}: {e.strerror or e}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None],
                 verify: Callable[[Path], None] | None = None) -> Path:
    """``write(tmp)`` a temporary file beside ``path``, ``verify(tmp)``, then rename it to ``path``
    (to a symlink's target: the link stays). On any exception (KeyboardInterrupt and SIGTERM
    included) the temporary file is removed and ``path`` is left as it was; a failed write (disk
    full, file size limit) is one ``UserError``. A stream target is written straight into.

    Args:
        path: the output path.
        write: writes the whole file at the path it is given.
        verify: checks the written file; raising leaves ``path`` untouched.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        UserError: the write failed (disk full, file size limit, ...).
    """
    path = Path(path)
    if is_stream(path):
        _stream_write(path, write, verify)
        return path
    real = real_target(path)
    if not real.parent.is_dir():
        raise UserError(f"output directory does not exist: {path.parent}")
    tmp = None
    try:
        for tmp in _temp_names(real):  # named before it exists: the cleanup below knows it whenever a signal lands
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
                break
            except FileExistsError:
                tmp = None  # someone else's
            except OSError as e:
                raise _cannot_write(path, e) from None
        else:
            raise UserError(f"cannot write {path}: no free temporary name beside it")
        os.close(fd)
        try:
            write(Path(tmp))
        except OSError as e:  # ENOSPC, EFBIG, EIO: the write itself failed
            raise _cannot_write(path, e) from None
        if verify is not None:
            verify(Path(tmp))
        try:
            os.replace(tmp, real)
        except OSError as e:
            raise _cannot_write(path, e) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _temp_names(real: Path, tries: int = 100) -> Iterator[Path]:
    """Candidate temporary names beside ``real``: ``.NAME.XXXXXXXX.tmp``, within NAME_MAX."""
    prefix = temp_prefix(real.name, real.parent)
    for _ in range(tries):
        yield real.parent / f"{prefix}{secrets.token_hex(_RANDOM // 2)}{TEMP_SUFFIX}"


def _stream_write(path: Path, write: Callable[[Path], None], verify: Callable[[Path], None] | None) -> None:
    """Into a FIFO, device or ``/dev/fd/N``: staged in a private temporary file (writers such
    as ``np.save`` need a seekable file; the bytes are verified first) and then copied into the
    stream; nothing is created or renamed where the stream is."""
    try:
        with tempfile.TemporaryDirectory(prefix="spp-deploy-") as d:
            staged = Path(d) / "out"
            write(staged)
            if verify is not None:
                verify(staged)
            with open(staged, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except OSError as e:
        raise _cannot_write(path, e) from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write`` of a text file.

    Args:
        path: the output path.
        text: the whole file (UTF-8).

    Returns:
        ``path`` as a ``Path``.
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text))
