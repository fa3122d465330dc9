"""The runner interface every backend implements."""

from __future__ import annotations

import abc
from typing import Mapping

import numpy as np


class Runner(abc.ABC):
    """Runs one model on one backend. Use as a context manager: resources live in between."""

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

    @abc.abstractmethod
    def input_specs(self) -> dict[str, tuple[np.dtype, tuple]]:
        """Input name -> (dtype, shape), symbolic dims as strings."""

    @abc.abstractmethod
    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; returns output name -> array."""
