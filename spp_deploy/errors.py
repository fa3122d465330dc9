"""User-facing errors: the CLI prints these as one line and exits non-zero, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input (model spec, shape, path, rule): reported in one line."""

    exit_code = 2


class ParityError(UserError):
    """The exported model disagrees with PyTorch: nothing is written."""

    exit_code = 1


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``str(exc)`` (stripped), or the exception's type name when the
    message is empty: the one-line form of a third-party exception inside a ``UserError``."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error being reported
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
