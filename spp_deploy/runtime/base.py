"""The runner interface every backend implements."""

from __future__ import annotations

import abc
from typing import Mapping

import numpy as np


class Runner(abc.ABC):
    """Runs one model on one backend. Use as a context manager: resources live in between.

    ``infer`` is a template (as Polygraphy's runners): it checks the runner is active and the feed
    matches ``input_specs`` (one-line ``UserError`` otherwise), then calls ``infer_impl``.
    """

    name: str = "runner"

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def activate(self) -> None:
        """Load the model / create the session."""

    def deactivate(self) -> None:
        """Free what ``activate`` took."""

    @property
    def is_active(self) -> bool:
        """Between ``activate`` and ``deactivate`` (runners without resources: always)."""
        return True

    @abc.abstractmethod
    def input_specs(self) -> dict[str, tuple[np.dtype, tuple]]:
        """Input name -> (dtype, shape), symbolic dims as strings."""

    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """Output names, in the model's order."""

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; returns output name -> array."""
        from ..util.errors import UserError

        if not self.is_active:
            raise UserError(f"{self.name}: infer() called outside `with runner:`")
        validate_feed(self.name, self.input_specs(), feed)
        return self.infer_impl(feed)

    @abc.abstractmethod
    def infer_impl(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``infer`` after the checks."""


def _dtype_name(t) -> str:
    """'float32' for a numpy dtype or an ONNX Runtime type string like 'tensor(float)'."""
    if isinstance(t, str) and t.startswith("tensor("):
        inner = t[len("tensor("):-1]
        return {"float": "float32", "double": "float64", "float16": "float16"}.get(inner, inner)
    try:
        return np.dtype(t).name
    except TypeError:
        return str(t)


def validate_feed(runner: str, specs: Mapping[str, tuple], feed: Mapping[str, np.ndarray]) -> None:
    """One-line ``UserError`` for a wrong input name, count, rank, static dim or dtype."""
    from ..util.errors import UserError

    unknown = [n for n in feed if n not in specs]
    if unknown:
        raise UserError(f"{runner}: unknown input {unknown[0]!r} (the model's inputs: {', '.join(specs)})")
    missing = [n for n in specs if n not in feed]
    if missing:
        raise UserError(f"{runner}: input {missing[0]!r} not given")
    for name, (dtype, dims) in specs.items():
        arr = np.asarray(feed[name])
        if arr.ndim != len(dims):
            raise UserError(f"{runner}: input {name!r} has rank {arr.ndim} (shape {'x'.join(map(str, arr.shape)) or 'scalar'}), "
                            f"the model expects rank {len(dims)} ({'x'.join(str(d) for d in dims)})")
        for i, (v, d) in enumerate(zip(arr.shape, dims)):
            if isinstance(d, int) and d > 0 and v != d:
                raise UserError(f"{runner}: input {name!r} dim {i} is {v}, the model fixes it to {d}")
        want = _dtype_name(dtype)
        if arr.dtype.name != want:
            raise UserError(f"{runner}: input {name!r} has dtype {arr.dtype.name}, the model expects {want}")
