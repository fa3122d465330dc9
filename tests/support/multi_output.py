"""tests/support/tiny.py's model returning its logits and SPP features in several structures
(loadable as ``tests/support/multi_output.py:multi_output_model`` with ``{"kind": KIND}``)."""

from collections import namedtuple
from pathlib import Path

import torch

from tiny import Tiny

MULTI = f"{Path(__file__).resolve()}:multi_output_model"
Pair = namedtuple("Pair", "logits feat")

# kind -> (logits, features) -> the model's output
STRUCTURES = {
    "tuple": lambda y, f: (y, f),
    "list": lambda y, f: [y, f],
    "dict": lambda y, f: {"logits": y, "feat": f},
    "nested": lambda y, f: {"a": (y, f), "b": f * 2},
    "namedtuple": lambda y, f: Pair(y, f),
    # keys that are also names inside the graph torch.onnx makes (a weight, node outputs)
    "clash": lambda y, f: {"fc.weight": y, "conv2d": f, "linear": f * 2},
    # not exportable: a leaf that is no tensor
    "int": lambda y, f: {"logits": y, "meta": 3},
    "str": lambda y, f: (y, {"tag": "spp"}),
    "none": lambda y, f: [y, None],
}


class MultiOutput(Tiny):
    """Conv + SPP + FC, returning ``STRUCTURES[kind](logits, features)``."""

    def __init__(self, kind: str = "tuple", classes: int = 3):
        super().__init__(classes)
        self.kind = kind

    def forward(self, x):
        f = self.spp(self.conv(x))
        return STRUCTURES[self.kind](self.fc(f), f)


def multi_output_model(kind: str = "tuple", classes: int = 3):
    torch.manual_seed(0)
    return MultiOutput(kind, classes).eval()
