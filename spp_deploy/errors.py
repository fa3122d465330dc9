"""User-facing errors: the CLI prints these as one line and exits non-zero, without a traceback."""


class UserError(Exception):
    """A mistake in the user's input (model spec, shape, path, rule): reported in one line."""

    exit_code = 2


class ParityError(UserError):
    """The exported model disagrees with PyTorch: nothing is written."""

    exit_code = 1
