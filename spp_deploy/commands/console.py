"""The global ``-q/--quiet``, ``-v/--verbose`` and ``--log-file``: how much a command tells the
terminal, and what it keeps in a log file.

Results go to stdout whatever the level. ``-q`` drops progress bars and warnings (errors stay);
``-v`` adds the ``spp_deploy`` logger's step messages on stderr (``-vv``: debug); on a
terminal, ``status`` shows the same steps as its spinner's text. ``--log-file``
appends a timestamped record of the run: the command line, everything it printed on stdout and
stderr, its steps at debug level, the error or the traceback, and the exit code, so a failed
run can be sent as it happened. The file is checked like every output (not one of the inputs,
a writable place) and appended to, never replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

LOGGER = logging.getLogger("spp_deploy")
QUIET, NORMAL = -1, 0
_state = {"verbosity": NORMAL}


def add_global_args(p: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The flags on the top-level parser and (``suppress``: without defaults, so the top-level
    value stands unless given again) after every subcommand."""
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    g = p.add_argument_group("output")
    g.add_argument("-q", "--quiet", action="store_true", help="results and errors only: no progress, no warnings",
                   **({"default": False} | kw))
    g.add_argument("-v", "--verbose", action="count", help="say more: each step on stderr (-vv: debug detail); check: informational findings too",
                   **({"default": 0} | kw))
    g.add_argument("--log-file", metavar="PATH", help="append a timestamped record of the run (command line, "
                   "all output, error, exit code) to PATH", **({"default": None} | kw))


def verbosity() -> int:
    return _state["verbosity"]


def progress_enabled() -> bool:
    """Progress bars: on a terminal, unless ``-q``."""
    return verbosity() > QUIET and sys.stderr.isatty()


def warn(message: str) -> None:
    """``spp-deploy: warning: ...`` on stderr (not with ``-q``), and in the log file."""
    if verbosity() > QUIET:
        print(f"spp-deploy: warning: {message}", file=sys.stderr)
    else:
        LOGGER.warning(message)


@contextlib.contextmanager
def status(text: str):
    """A spinner with ``text`` on a terminal (not with ``-q``, not when piped) showing each step
    the library logs (``spp_deploy.*`` loggers, INFO) while it runs; yields ``update(step)``,
    which logs a step of the command's own. ``-v`` shows the steps, ``--log-file`` keeps them."""
    LOGGER.info(text)

    def update(step: str) -> None:
        LOGGER.info("%s", step)

    if not progress_enabled():
        yield update
        return
    from rich.console import Console

    with Console(stderr=True).status(text) as spinner:
        steps = _SpinnerSteps(text, spinner)
        LOGGER.addHandler(steps)
        try:
            yield update
        finally:
            LOGGER.removeHandler(steps)


class _SpinnerSteps(logging.Handler):
    """Each INFO record becomes the spinner's text: the step the command is at."""

    def __init__(self, text: str, spinner) -> None:
        super().__init__(logging.INFO)
        self.text, self.spinner = text, spinner

    def emit(self, record: logging.LogRecord) -> None:
        self.spinner.update(f"{self.text}: {record.getMessage()}")


class _Tee:
    """A text stream that also sends each complete line to the log file."""

    def __init__(self, stream, logger: logging.Logger, name: str) -> None:
        self.stream, self.logger, self.name, self.pending = stream, logger, name, ""

    def write(self, text: str) -> int:
        n = self.stream.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip() and "\x1b" not in line:  # progress bar redraws are not records
                self.logger.info("%s: %s", self.name, line.rstrip("\r"))
        return n

    def __getattr__(self, name):  # flush, isatty, fileno, encoding, ... of the real stream
        return getattr(self.stream, name)


class Session:
    """Logging for one command: stderr level from -q/-v, the log file and its stdout/stderr tee."""

    def __init__(self, args, argv: Sequence[str]) -> None:
        quiet, verbose = getattr(args, "quiet", False), getattr(args, "verbose", 0) or 0
        _state["verbosity"] = QUIET if quiet else verbose
        self.handlers: list[logging.Handler] = []
        self.streams = (sys.stdout, sys.stderr)
        self.level = LOGGER.level
        path = getattr(args, "log_file", None)
        if path is not None:  # checked before anything is set up: a bad path leaves nothing to undo
            from ..util.fileio import check_output
            from .common import command_inputs

            claimed = args.__dict__.setdefault("_outputs", [])
            path = check_output(path, "--log-file", force=True, inputs=command_inputs(args) + claimed)
            claimed.append(("--log-file", str(path)))
        LOGGER.setLevel(logging.DEBUG)
        self._add(logging.NullHandler())  # records nobody asked to see are dropped, not printed by logging's last resort
        if verbose and not quiet:
            h = logging.StreamHandler(sys.stderr)
            h.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
            h.setFormatter(logging.Formatter("spp-deploy: %(message)s"))
            self._add(h)
        if path is not None:
            out = path
            h = logging.FileHandler(out, mode="a", encoding="utf-8")
            h.setLevel(logging.DEBUG)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self._add(h)
            output = logging.getLogger("spp_deploy.output")  # printed lines: to the file only
            output.propagate, output.handlers = False, [h]
            output.setLevel(logging.INFO)
            sys.stdout, sys.stderr = _Tee(sys.stdout, output, "stdout"), _Tee(sys.stderr, output, "stderr")
            LOGGER.debug("spp-deploy %s", " ".join(argv))

    def _add(self, h: logging.Handler) -> None:
        LOGGER.addHandler(h)
        self.handlers.append(h)

    def close(self, code: int | None, error: BaseException | None = None) -> None:
        if error is not None and self.handlers:
            LOGGER.debug("unexpected error", exc_info=error)
        if code is not None:
            LOGGER.debug("exit code %s", code)
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _Tee) and stream.pending.strip():  # a last line without its newline
                stream.logger.info("%s: %s", stream.name, stream.pending)
        sys.stdout, sys.stderr = self.streams
        for h in self.handlers:
            LOGGER.removeHandler(h)
            h.close()
        logging.getLogger("spp_deploy.output").handlers = []
        LOGGER.setLevel(self.level)
        _state["verbosity"] = NORMAL
