"""Whether the user's PyTorch model runs at a shape: the sizes a file is checked, validated and
timed at are only those the source model itself accepts, and its own error says why not."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..util.errors import first_line
from .heads import export_mode


def source_error(model: torch.nn.Module, shape: Sequence[int]) -> str | None:
    """Why the PyTorch model cannot run at ``shape`` (None if it can), with ultralytics heads in
    the export mode the file is traced and compared in.

    Args:
        model: the source model (run under ``torch.no_grad``).
        shape: the input shape tried, with zeros.

    Returns:
        The first line of the model's exception, or None when it runs.
    """
    try:
        with torch.no_grad(), export_mode(model):
            model(torch.zeros(*shape))
    except Exception as e:  # the source layer's own failure is the information we report
        return first_line(e)
    return None
