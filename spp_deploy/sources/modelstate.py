"""Exporting, probing and checking run the caller's model: it must come back as it was given.

``unchanged(model)`` runs a block with the model in eval mode (what an exported file computes:
BatchNorm with its running statistics, no Dropout) and afterwards restores every module's mode,
the buffers (BatchNorm's running statistics and ``num_batches_tracked``, a user's counters), the
parameter and buffer objects themselves, and the global random number generators (torch, numpy,
``random``): a forward pass in train mode would otherwise change them.
"""

from __future__ import annotations

import contextlib
import functools
import random
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def unchanged(model) -> Iterator[object]:
    """The block sees ``model`` in eval mode; on exit (exceptions included) its modes, buffers,
    parameter/buffer objects and the global RNG states are what they were. Anything that is not
    an ``nn.Module`` is passed through."""
    if not isinstance(model, torch.nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    slots = [(m._parameters, dict(m._parameters)) for m in model.modules()]
    slots += [(m._buffers, dict(m._buffers)) for m in model.modules()]
    values = [(b, b._version, b.detach().clone()) for m in model.modules() for b in m._buffers.values()
              if b is not None]
    rng = _rng_state()
    model.eval()
    try:
        yield model
    finally:
        for table, saved in slots:  # the objects: a forward that rebinds a buffer rebinds it back
            table.clear()
            table.update(saved)
        with torch.no_grad():
            for b, version, value in values:
                if b._version != version:
                    b.copy_(value)
        for m, training in modes:
            m.training = training
        _set_rng_state(rng)


def keeps_model(fn: F) -> F:
    """Decorate a function whose first argument is a model with ``unchanged``."""

    @functools.wraps(fn)
    def wrapper(model, *args, **kwargs):
        with unchanged(model):
            return fn(model, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _rng_state() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()


def _set_rng_state(state: tuple) -> None:
    cpu, cuda, np_state, py_state = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
    np.random.set_state(np_state)
    random.setstate(py_state)
