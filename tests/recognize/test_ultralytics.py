"""Ultralytics models: the SPP -> SPPF rewrite keeps the layer attributes ultralytics' forward
loop reads, and Detect heads are traced and compared in their dynamic ONNX export mode.

ultralytics itself cannot be installed here (it needs torchvision and opencv), so the model is
``ultralytics_standin.DetectionModel``: a YAML-built layer list run by the same loop."""

import pytest
import torch
from torch import nn

from spp_deploy.sources import seeds
from spp_deploy import export_onnx
from spp_deploy.recognize import SppConfig, canonicalize, export_mode, scan
from spp_deploy.runtime.torch_runner import TorchRunner
from ultralytics_standin import SPP, Detect, DetectionModel, legal_side

LAYER_ATTRS = ("i", "f", "type", "np")


def _tags(m):
    return {k: getattr(m, k) for k in LAYER_ATTRS}


def _head_state(head):
    return {k: v for k, v in vars(head).items() if not k.startswith("_")}


def _same_state(after, before):
    """Same attributes; tensors (the anchor cache) the very same objects. (torch.export puts
    back equal copies of list attributes such as ``f``.)"""
    return after.keys() == before.keys() and all(
        after[k] is before[k] if isinstance(before[k], torch.Tensor) else after[k] == before[k] for k in after)


def test_sppf_rewrite_keeps_ultralytics_layer_attributes():
    model = DetectionModel()
    spp = model.model[5]
    assert isinstance(spp, SPP)
    x = torch.randn(2, 3, 64, 48)
    (r,) = [r for r in scan(model, x) if r.how == "yolo"]
    assert (r.path, r.kind) == ("model.5", "ultralytics SPP") and r.action.startswith("rewrite to SPPF")
    with torch.no_grad(), export_mode(model):
        want = model(x)
        with canonicalize(model, x) as (traced, _):
            new = traced.model[5]
            assert type(new).__name__ == "SPPFRewrite" and new.n == 3
            assert _tags(new) == _tags(spp) and new.training == spp.training
            assert torch.equal(traced(x), want)  # the forward loop runs; cascaded pools are exact
    assert model.model[5] is spp and not hasattr(type(spp), "f")


class LoopModel(nn.Module):
    """An ultralytics-style loop around a binned SPP layer (replaced by the canonical op)."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, 4, 3), seeds.SPPLayer(3), nn.Linear(4 * 21, 5))
        for i, m in enumerate(self.model):
            m.i, m.f, m.type = i, -1, type(m).__name__
        self.save = []

    def forward(self, x):
        for m in self.model:
            x = m(x)
            assert m.f == -1 and isinstance(m.i, int)
        return x


def test_canonical_replacement_keeps_layer_attributes():
    model = LoopModel().eval()
    x = torch.randn(1, 3, 20, 20)
    with canonicalize(model, x) as (traced, (r,)):
        assert r.config == SppConfig((1, 2, 4), "max", "floor_kernel")
        new = traced.model[1]
        assert type(new).__name__ == "SpatialPyramidPool" and (new.i, new.f, new.type) == (1, -1, "SPPLayer")
        assert new.levels == (1, 2, 4)  # the replacement's own attributes are not overwritten
        traced(x)
    assert type(model.model[1]).__name__ == "SPPLayer"


def test_export_mode_sets_detect_like_yolo_export_and_restores():
    model = DetectionModel()
    head = model.model[-1]
    assert isinstance(head, Detect)
    fresh = _head_state(head)
    assert "shape" not in fresh  # never run in eval: the class defaults
    with export_mode(model) as paths:
        assert paths == ["model.10"]
        assert (head.export, head.dynamic, head.format, head.shape) == (True, True, "onnx", None)
        for hw in ((64, 64), (32, 48)):
            y = model(torch.randn(1, 3, *hw))
            assert isinstance(y, torch.Tensor) and y.shape == (1, 4 + 3, hw[0] * hw[1] // 64 + hw[0] * hw[1] // 256)
    assert _head_state(head) == fresh and head.shape is None and head.export is False
    out = model(torch.randn(1, 3, 64, 64))  # out of export mode: (decoded, raw maps), anchors cached
    cached = _head_state(head)
    assert isinstance(out, tuple) and cached["shape"] == (1, 19, 8, 8)
    with export_mode(model):
        model(torch.randn(1, 3, 32, 32))
    assert _same_state(_head_state(head), cached)
    # the torch reference of every comparison runs in the mode the file is traced in
    y = TorchRunner(model).infer({"input": torch.randn(2, 3, 32, 32).numpy()})["output"]
    assert y.shape == (2, 7, 16 + 4)


@pytest.mark.slow
def test_export_ultralytics_detector_with_spp(tmp_path):
    model = DetectionModel()
    spp, head = model.model[5], model.model[-1]
    x = torch.randn(1, 3, 64, 64)
    model(x)  # a prediction before export: the head caches anchors for 64 x 64
    before, modules = _head_state(head), dict(model.named_modules())
    sizes = [(1, 64, 64), (2, 48, 80), (1, 57, 105), (3, 32, 32), (1, 9, 9), (1, 128, 96)]
    assert all(legal_side(h) and legal_side(w) for _, h, w in sizes)
    res = export_onnx(model, x, tmp_path / "yolo.onnx", sizes=sizes)
    assert [r.shape for r in res.parity] == [(b, 3, h, w) for b, h, w in sizes]
    assert all(r.comparison is not None and r.comparison.passed for r in res.parity)
    (layer,) = [r for r in res.layers if r.how == "yolo"]
    assert layer.path == "model.5" and layer.action == "rewrite to SPPF (cascaded 5x5 max pools)"
    assert dict(model.named_modules()) == modules and model.model[5] is spp
    assert _same_state(_head_state(head), before)
    assert isinstance(model(x), tuple)
