"""User-facing errors: the CLI prints these as one line and exits non-zero, without a traceback."""

from __future__ import annotations

import re
from typing import Callable

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class UserError(Exception):
    """A mistake in the user's input (model spec, shape, path, rule): reported in one line.

    ``option`` names the library argument the mistake is about and ``example`` a value for it
    that would fix it ("" for a switch). The library never names command-line flags: ``render`` writes the message
    with the argument's name, and the CLI passes ``flag`` to name its own flag instead.
    """

    exit_code = 2

    def __init__(self, message: str = "", *, option: str | None = None, example: str | None = None):
        super().__init__(message)
        self.option = option
        self.example = example

    def __str__(self) -> str:
        return self.render()

    def render(self, flag: Callable[[str], str] | None = None) -> str:
        """The message, naming ``option`` as the Python argument, or as ``flag(option)`` (a CLI flag)."""
        text = strip_ansi(str(self.args[0])) if self.args else ""
        if self.option is None:
            return text
        if self.example is None:
            return f"{flag(self.option) if flag else self.option}: {text}"
        if self.example == "":  # a switch
            return f"{text}: {flag(self.option) if flag else self.option + '=True'}"
        if flag:
            return f"{text}: {flag(self.option)} '{self.example}'"
        return f"{text}: {self.option}=[{self.example!r}]"


class ParityError(UserError):
    """The exported model disagrees with PyTorch: nothing is written."""

    exit_code = 1


class Renamed(FutureWarning):
    """A name the user typed (a zoo model, ...) still works under its old spelling; the CLI says
    so in one ``spp-deploy: warning:`` line, Python callers get a FutureWarning."""


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape codes (torch colours its messages even into a pipe)."""
    return _ANSI.sub("", text)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)`` (stripped, no terminal colour codes), or the
    exception's type name when the message is empty: the one-line form of a third-party
    exception inside a ``UserError``."""
    try:
        text = strip_ansi(str(exc))
    except Exception:  # a broken __str__ must not hide the error being reported
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def raise_if_interrupted(exc: BaseException) -> None:
    """Re-raise the Ctrl-C (or SIGTERM) that a library wrapped into an ordinary exception (torch's
    exporter turns whatever stops it into its own error): an interruption is never reported as
    the library's failure."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if not isinstance(e, Exception):
            raise e
        e = e.__cause__ or e.__context__
    if first_line(exc).startswith("KeyboardInterrupt") or "\nKeyboardInterrupt" in str(exc):
        raise KeyboardInterrupt
