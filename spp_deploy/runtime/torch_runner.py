"""PyTorch eager runner (optionally float64, as an accuracy reference).

Ultralytics heads run in their ONNX export mode (one decoded tensor, anchors from the input
shape), as they are traced by ``export_onnx``, so the runner is comparable with the file."""

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
        if float64:
            self.name = "torch-fp64"

    def input_specs(self) -> dict:
        return {self.input_name: (np.dtype(np.float32), ("batch", "channels", "height", "width"))}

    def output_names(self) -> list[str]:
        return [self.output_name]

    def infer_impl(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_name]))
        model = self.model
        if self.float64:
            import copy

            model, x = copy.deepcopy(model).double(), x.double()
        from ..recognize import export_mode  # the mode the exported file was traced in

        with torch.no_grad(), export_mode(model):
            y = model(x)
        return {self.output_name: y.detach().cpu().numpy()}
