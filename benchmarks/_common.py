"""What the ONNX Runtime CPU benchmark scripts share: their common options, in-memory export, a
session per thread count, and the table of rows that do or do not meet the script's target.

Imported as ``_common`` (the scripts run as ``python benchmarks/NAME.py``, which puts this folder
first on ``sys.path``)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import onnx
import onnxruntime as ort
import torch

from spp_deploy.export import trace_to_onnx


def parser(doc: str, iterations: int, warmup: int) -> argparse.ArgumentParser:
    """The options every script takes (--iterations, --warmup, --threads); ``doc``'s first line
    is the description."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=iterations)
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    return ap


def parse(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line's options; torch set to ``--threads``, rows printed as they are measured."""
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.stdout.reconfigure(line_buffering=True)
    return args


def export(model: torch.nn.Module, example: torch.Tensor, spp_impl: str = "standard") -> onnx.ModelProto:
    """In-memory ONNX, with seed SPP layers made canonical first (as ``export_onnx`` does)."""
    return trace_to_onnx(model, example, spp_impl=spp_impl)[0]


def session(proto: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime CPU session of ``proto`` on ``threads`` intra-op threads, warnings off."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


class Table:
    """Rows printed as they are measured, each ending in its verdict; counts the rows that meet the
    script's target."""

    def __init__(self, header: str) -> None:
        print(header)
        self.met = self.rows = 0

    def row(self, text: str, ok: bool, met: str = "ok", missed: str = "MISSED") -> None:
        """``text`` then the verdict: ``met`` where ``ok``, else ``missed``."""
        print(text + (met if ok else missed))
        self.met += ok
        self.rows += 1

    @property
    def missed(self) -> int:
        return self.rows - self.met

    def finish(self, summary: str) -> int:
        """Print ``summary``; the script's exit status: 0, a missed target is a finding, not an error."""
        print(summary)
        return 0
