"""The parity sweep checks sizes the model takes, so a model with a stride is checked at all. The
model's input grid (smallest legal size, stride) is found by probing, and the sweep compares at
least 8 legal sizes: odd multiples of the stride, non-square, batch > 1."""

import pytest
import torch
from route_models import Stride32SPP
from tiny import tiny_model

from spp_deploy import export_onnx
from spp_deploy.runtime.compare import input_grid, parity_sizes, source_error


class Counted(torch.nn.Module):
    """Counts forward calls (the probes ``parity_sizes`` pays for)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


class RaggedStart(torch.nn.Module):
    """Legal from ``first`` on except at ``holes`` (like sppnet-pytorch's seed layer at small maps)."""

    def __init__(self, first: int = 5, holes=(6, 8)):
        super().__init__()
        self.first, self.holes = first, set(holes)
        self.spp = tiny_model()

    def forward(self, x):
        if x.shape[2] < self.first or x.shape[2] in self.holes or x.shape[3] in self.holes:
            raise ValueError(f"no pyramid at {x.shape[2]}x{x.shape[3]}")
        return self.spp(x)


def _check_sweep(model, shapes, count=8):
    assert len(shapes) >= count and len(set(shapes)) == len(shapes)
    assert all(source_error(model, s) is None for s in shapes)
    assert any(h != w for _, _, h, w in shapes)
    assert any(b > 1 for b, _, _, _ in shapes)


@pytest.mark.slow
def test_stride32_model_is_swept_at_eight_legal_sizes(tmp_path):
    torch.manual_seed(0)
    model = Stride32SPP().eval()
    s = model.stride
    example = torch.randn(1, 3, 2 * s, 2 * s)
    # the model really takes only multiples of its stride
    assert source_error(model, (1, 3, 2 * s + 1, 2 * s)) and source_error(model, (1, 3, 2 * s, 3 * s - 2))
    grid = input_grid(model, 3, 2 * s)
    assert (grid.smallest, grid.stride) == (s, s)
    shapes, _ = parity_sizes(model, example)
    _check_sweep(model, shapes)
    assert all(h % s == 0 and w % s == 0 for _, _, h, w in shapes)
    assert any((h // s) % 2 == 1 and h > s for _, _, h, _ in shapes)  # odd multiples of the stride
    assert any((w // s) % 2 == 1 and w > s for _, _, _, w in shapes)
    res = export_onnx(model, example, tmp_path / "m.onnx")
    compared = [r for r in res.parity if r.comparison is not None]
    assert len(compared) >= 8 and all(r.comparison.passed for r in compared)
    assert len(compared) > len([r for r in res.parity if r.skipped])


def test_stride_one_model_costs_one_extra_probe():
    model = Counted(tiny_model())
    grid = input_grid(model, 3, 16)
    assert grid.stride == 1
    # probes: every size below the smallest legal one, the smallest, and one more
    assert model.calls == grid.smallest + 1
    assert source_error(model.inner, (1, 3, grid.smallest - 1, grid.smallest - 1)) is not None


def test_ragged_small_sizes_do_not_fake_a_stride():
    model = RaggedStart()
    grid = input_grid(model, 3, 16)
    assert grid.smallest == model.first and grid.stride == 1
    shapes, _ = parity_sizes(model, torch.randn(1, 3, 16, 16))
    _check_sweep(model, shapes)
    assert any(h % 2 == 1 for _, _, h, _ in shapes) and any(w % 2 == 1 for _, _, _, w in shapes)


@pytest.mark.parametrize("stride", [2, 3])
def test_grid_snaps_to_the_models_own_stride(stride):
    """A model that takes H, W = 1 mod ``stride`` only."""

    class OneMod(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tiny_model()

        def forward(self, x):
            if x.shape[2] % stride != 1 or x.shape[3] % stride != 1:
                raise ValueError("H, W must be 1 mod the stride")
            return self.inner(x)

    model = OneMod().eval()
    grid = input_grid(model, 3, 32)
    assert grid.stride == stride and grid.smallest % stride == 1
    assert all(grid.snap(v) % stride == 1 and 0 <= grid.snap(v) - max(v, grid.smallest) < stride
               for v in range(1, 40))
    shapes, skipped = parity_sizes(model, torch.randn(1, 3, 4 * stride + 1, 4 * stride + 1))
    _check_sweep(model, shapes)
    assert not skipped
