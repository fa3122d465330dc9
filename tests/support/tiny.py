"""The smallest model with an SPP layer, shared by the CLI tests (loadable as
``tests/support/tiny.py:tiny_model`` from the command line), and its ONNX exports."""

from pathlib import Path

import torch

from spp_deploy import SpatialPyramidPool

TINY = f"{Path(__file__).resolve()}:tiny_model"


class Tiny(torch.nn.Module):
    """3x3 conv (H, W >= 3) + rounded pyramid [2, 1] (conv map >= 2, so input >= 4) + FC."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.spp = SpatialPyramidPool([2, 1], rule="rounded")
        self.fc = torch.nn.Linear(4 * 5, classes)

    def forward(self, x):
        return self.fc(self.spp(self.conv(x)))


def tiny_model(classes: int = 3):
    torch.manual_seed(0)
    return Tiny(classes).eval()


def export_tiny(directory: Path, variants: dict[str, dict]) -> dict[str, Path]:
    """``tiny_model()`` exported once per variant (``export_onnx`` keywords), not parity-checked
    (the tests check what they need): {variant: directory / "VARIANT.onnx"}."""
    from spp_deploy import export_onnx

    model = tiny_model()
    paths = {}
    for name, kw in variants.items():
        paths[name] = directory / f"{name}.onnx"
        export_onnx(model, torch.randn(1, 3, 16, 16), paths[name], check_parity=False, **kw)
    return paths
