"""PyTorch eager runner (optionally float64, as an accuracy reference).

Ultralytics heads run in their ONNX export mode (one decoded tensor, anchors from the input
shape), as they are traced by ``export_onnx``, so the runner is comparable with the file. A
model returning a tuple, list or dict gives one array per tensor, named and ordered as the
exported file's outputs (``spp_deploy.sources.outputs``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .base import Runner


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model: torch.nn.Module, input_name: str = "input", output_name: str = "output",
                 float64: bool = False) -> None:
        self.model, self.input_name, self.output_name, self.float64 = model.eval(), input_name, output_name, float64
        self._names: list[str] | None = None  # known after the first inference
        if float64:
            self.name = "torch-fp64"

    def input_specs(self) -> dict:
        return {self.input_name: (np.dtype(np.float32), ("batch", "channels", "height", "width"))}

    def output_names(self) -> list[str]:
        """``output_name`` for one tensor; a tuple/list/dict output's names once it has run."""
        return list(self._names) if self._names is not None else [self.output_name]

    def infer_impl(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_name]))
        model = self.model
        if self.float64:
            import copy

            model, x = copy.deepcopy(model).double(), x.double()
        from ..sources.heads import export_mode  # the mode the exported file was traced in

        with torch.no_grad(), export_mode(model):
            y = model(x)
        if isinstance(y, torch.Tensor):
            outs = {self.output_name: y.detach().cpu().numpy()}
        else:
            from ..sources.outputs import to_numpy

            outs = to_numpy(y)
        self._names = list(outs)
        return outs
