"""``spp-deploy`` command line. User mistakes become one line on stderr and a non-zero exit.

Subcommands live in ``spp_deploy.commands`` (one module each). This module imports nothing heavy
at import time: the console script imports it before calling ``main``, and everything slow
(torch, onnx) must load inside ``main`` so that Ctrl-C there is still one line, not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Sequence

from .util.errors import UserError

PROG = "spp-deploy"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C so that ``finally`` blocks (temporary files)
    run. A BaseException: library code catching ``Exception`` must not swallow it."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line (a ``UserError``), like every other
    mistake, instead of printing the usage block and calling ``sys.exit``."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):
        """argparse's, except that arguments the command does not know are reported against that
        command (its ``--help``, and the flags they may have meant)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(getattr(parsed, "command", None))
            target = command or self
            raise UserError(f"unrecognized arguments: {' '.join(extras)}{_did_you_mean(extras, target)} "
                            f"(see `{target.prog} --help`)")
        return parsed

    def _command_parser(self, name: str | None):
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]
        return None


def _did_you_mean(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """'; did you mean --min-shape?' for a flag close to one the command has (case ignored)."""
    import difflib

    flags = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    lowered = {f[2:].lower(): f for f in flags}
    hints = []
    for word in extras:
        if not word.startswith("--"):
            continue
        flag = word.split("=", 1)[0][2:].lower()
        match = difflib.get_close_matches(flag, list(lowered), n=1, cutoff=0.8)
        if match and lowered[match[0]] not in hints:
            hints.append(lowered[match[0]])
    return f"; did you mean {', '.join(hints)}?" if hints else ""


def package_version() -> str:
    """The installed distribution's version; the package's own when it is not installed."""
    try:
        from importlib.metadata import version

        return version("spp-deploy")
    except Exception:
        from . import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    from .commands import command_modules
    from .commands.console import add_global_args

    ap = ArgumentParser(prog=PROG, description="Deploy Spatial Pyramid Pooling models to ONNX and TensorRT.")
    ap.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    add_global_args(ap)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    for parser in sub.choices.values():  # -q/-v/--log-file after the command name too
        add_global_args(parser, suppress=True)
    return ap


def _on_sigterm(signum, frame):
    raise Terminated()


def _install_sigterm():
    """SIGTERM -> ``Terminated`` (only possible from the main thread; elsewhere leave it alone)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return None


def _one_line(text: str) -> str:
    return "; ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null, so that the interpreter's last flush of
    what is still buffered cannot fail again (and print 'Exception ignored')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's capture): nothing to flush
        pass


@contextlib.contextmanager
def _renames_as_warnings():
    """An old name the user typed (``Renamed``): one ``spp-deploy: warning:`` line per command, not
    Python's two-line warning format; other warnings are shown as before."""
    import warnings

    from .commands.console import warn
    from .util.errors import Renamed

    with warnings.catch_warnings():
        shown, said = warnings.showwarning, set()

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, Renamed):
                if str(message) not in said:
                    said.add(str(message))
                    warn(_one_line(message))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", Renamed)
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: its exit code; every failure is one line on stderr."""
    state: dict = {"code": None, "session": None, "error": None}
    try:
        state["code"] = _main(argv, state)
        return state["code"]
    except BaseException as e:  # an unexpected error: its traceback goes to the log file too
        state["error"] = e
        raise
    finally:
        if state["session"] is not None:
            state["session"].close(state["code"], state["error"])


def _main(argv: Sequence[str] | None, state: dict) -> int:
    previous = _install_sigterm()
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version: argparse printed them
            sys.stdout.flush()
            return e.code if isinstance(e.code, int) else 0
        from .commands.console import Session

        state["session"] = Session(args, list(sys.argv[1:] if argv is None else argv))
        import logging
        import time

        t0 = time.perf_counter()
        with _renames_as_warnings():
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
        logging.getLogger("spp_deploy").info("%s finished in %.1fs", args.command, time.perf_counter() - t0)
        return code
    except BrokenPipeError:  # `spp-deploy inspect --json | head -c 10`: the reader has all it wanted
        _quiet_stdout()
        return EXIT_PIPE
    except UserError as e:
        from .commands.args import flag_for

        print(f"{PROG}: error: {_one_line(e.render(flag_for))}", file=sys.stderr)
        return e.exit_code
    except MemoryError:
        print(f"{PROG}: error: out of memory (try a smaller input shape or batch)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
