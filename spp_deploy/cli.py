"""``spp-deploy`` command line. User mistakes become one line on stderr and a non-zero exit.

Subcommands live in ``spp_deploy.commands`` (one module each)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from .commands import command_modules

    ap = argparse.ArgumentParser(prog="spp-deploy", description="Deploy Spatial Pyramid Pooling models to ONNX and TensorRT.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"spp-deploy: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("spp-deploy: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
