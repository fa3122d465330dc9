"""Ultralytics output heads in the mode ``yolo export format=onnx dynamic=True`` puts them in.

Out of export mode, ultralytics' ``Detect`` (and its Segment/Pose/OBB subclasses) returns
``(decoded, raw feature maps)`` and caches its anchor grid for the last input shape: traced at
the example size, that cache is baked into the graph as constants, so the file is wrong (or
fails) at every other size. ``yolo export`` sets ``export = True`` (one decoded tensor),
``dynamic = True`` (anchors rebuilt from the runtime shape), ``format = "onnx"`` and clears
the cached ``shape``; ``Classify`` only gets ``export = True``. ``export_mode`` does the same
for the length of a block and restores every attribute afterwards. The heads are found by
their attributes; ultralytics is never imported.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

_DETECT_ATTRS = ("dynamic", "format", "stride")
# What export mode sets, and the caches the head's forward refills while in it.
_STATE = ("export", "dynamic", "format", "shape", "anchors", "strides")


def _is_detect(m: nn.Module) -> bool:
    return isinstance(getattr(m, "export", None), bool) and all(hasattr(m, a) for a in _DETECT_ATTRS)


def _is_head(m: nn.Module) -> bool:
    if _is_detect(m):
        return True
    return isinstance(getattr(m, "export", None), bool) and type(m).__module__.split(".")[0] == "ultralytics"


def export_heads(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of every ultralytics-style head that has an export mode."""
    return [(path, m) for path, m in model.named_modules() if _is_head(m)]


@contextlib.contextmanager
def export_mode(model: nn.Module) -> Iterator[list[str]]:
    """Within the block, the model's ultralytics heads are in dynamic ONNX export mode; yields
    their paths. Afterwards each head's attributes (and anchor cache) are what they were.

    Args:
        model: any model (one without ultralytics heads yields an empty list).

    Yields:
        The module paths of the heads set to export mode.
    """
    heads = export_heads(model)
    saved = []
    for _, m in heads:
        inst = {k: vars(m)[k] for k in _STATE if k in vars(m)}
        bufs = {k: m._buffers[k] for k in _STATE if k in m._buffers}
        saved.append((m, inst, bufs))
    try:
        for _, m in heads:
            m.export = True
            if _is_detect(m) or hasattr(m, "dynamic"):
                m.dynamic, m.format = True, "onnx"
                if hasattr(m, "shape") and "shape" not in m._buffers:
                    m.shape = None
        yield [path for path, _ in heads]
    finally:
        for m, inst, bufs in saved:
            for k in _STATE:
                if k in bufs:
                    m._buffers[k] = bufs[k]
                elif k in inst:
                    m.__dict__[k] = inst[k]
                else:
                    m.__dict__.pop(k, None)  # back to the class default
