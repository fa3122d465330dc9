"""``spp-deploy`` command line. User mistakes become one line on stderr and a non-zero exit.

Subcommands live in ``spp_deploy.commands`` (one module each). This module imports nothing heavy
at import time: the console script imports it before calling ``main``, and everything slow
(torch, onnx) must load inside ``main`` so that Ctrl-C there is still one line, not a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from .errors import UserError

PROG = "spp-deploy"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C so that ``finally`` blocks (temporary files)
    run. A BaseException: library code catching ``Exception`` must not swallow it."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line (a ``UserError``), like every other
    mistake, instead of printing the usage block and calling ``sys.exit``."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


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

    ap = ArgumentParser(prog=PROG, description="Deploy Spatial Pyramid Pooling models to ONNX and TensorRT.")
    ap.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
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


def main(argv: Sequence[str] | None = None) -> int:
    previous = _install_sigterm()
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version: argparse printed them
            return e.code if isinstance(e.code, int) else 0
        return args.func(args)
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
