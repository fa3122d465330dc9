"""Every zoo model exports and matches its own (unmodified seed) forward wherever that is defined."""

import textwrap

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pasted_seed import seed000_file
from spp_deploy.sources import zoo
from spp_deploy import export_onnx
from spp_deploy.runtime.compare import source_error

SMALL = {"sppnet-zf5": {"hidden": 8}, "sppnet-pytorch": {"hidden": 8, "ndf": 4},
         "detection-net-spp": {"hidden": 8}, "keras-spp": {}, "yolo-spp": {}}
# Legal and illegal sizes for each: the source raises or changes length at some of them.
SWEEP = {
    "sppnet-zf5": [(5, 5), (9, 9), (37, 61), (100, 163)],
    "sppnet-pytorch": [(7, 7), (8, 8), (12, 30), (16, 17), (22, 41), (2, 20, 13)],
    "detection-net-spp": [(64, 64), (64, 70), (70, 64), (66, 67), (90, 90), (60, 60)],
    "keras-spp": [(13, 13), (14, 14), (33, 47), (58, 21), (65, 65)],
    "yolo-spp": [(32, 32), (40, 72), (17, 9), (3, 2)],
}


def test_zoo_lists_every_seed_with_rules(cli):
    assert set(zoo.zoo_names()) == {"sppnet-zf5", "sppnet-pytorch", "detection-net-spp", "keras-spp", "yolo-spp"}
    code, out, err = cli("zoo")
    assert code == 0, err
    assert all(f"zoo:{n}" in out for n in zoo.zoo_names()) and out.count("sizes:") == 5


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SWEEP))
def test_export_matches_seed_forward_where_defined(tmp_path, name):
    model = zoo.create(name, **SMALL[name])
    entry = zoo.get_entry(name)
    B, C, H, W = entry.input_shape
    if name == "sppnet-pytorch":
        C = 32
    path = tmp_path / "m.onnx"
    res = export_onnx(model, torch.randn(1, C, H, W), path, sizes=[(1, H, W)])
    assert res.layers and all(r.status in ("match", "yolo") for r in res.layers)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compared = skipped = 0
    for size in SWEEP[name]:
        b, h, w = size if len(size) == 3 else (1, *size)
        shape = (b, C, h, w)
        if source_error(model, shape):
            skipped += 1
            continue
        x = torch.randn(*shape)
        with torch.no_grad():
            want = model(x).numpy()
        got = sess.run(None, {"input": x.numpy()})[0]
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), (name, shape)
        compared += 1
    assert compared >= 2
    if name == "yolo-spp":  # SPPF keeps H, W: every size runs
        assert skipped == 0
    else:  # the sweep includes sizes the source cannot run
        assert skipped >= 1


def test_export_pasted_seed_file(tmp_path, cli):
    src = tmp_path / "spp_user.py"
    src.write_text(seed000_file(ndf=4))
    out = tmp_path / "spp.onnx"
    code, text, err = cli("export", "--model", f"{src}:SPP_NET", "--input-shape", "1x32x20x20", "-o", out)
    assert code == 0, err
    assert "spatial_pyramid_pool" in text and "ceil_pad" in text and out.is_file()
    assert "PASSED" in text and "skipped" in text  # batch > 1 and illegal sizes are skipped, with reasons
    code, _, err = cli("export", "--model", f"{src}:SPP_NET", "--input-shape", "1x32x12x12", "-o", out.with_suffix(".x"))
    assert code == 2 and "bin rule 'ceil_pad' is not defined" in err and "H=9" in err and err.count("\n") == 1


def test_declared_layer_via_cli(tmp_path, cli):
    src = tmp_path / "decl.py"
    src.write_text(textwrap.dedent('''
        import torch
        import torch.nn.functional as F

        class Pyr(torch.nn.Module):
            def forward(self, x):
                return torch.cat([F.adaptive_avg_pool2d(x, n).flatten(1) for n in (2, 1)], 1)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 3)
                self.pyr = Pyr()
                self.fc = torch.nn.Linear(20, 3)

            def forward(self, x):
                return self.fc(self.pyr(self.conv(x)))
    '''))
    out = tmp_path / "d.onnx"
    code, text, err = cli("export", "--model", f"{src}:Net", "--input-shape", "1x3x17x23", "--spp-layer",
                          "pyr=levels:2,1;rule=adaptive;mode=avg;order=channel_major", "-o", out)
    assert code == 0, err
    assert "pyr: Pyr adaptive avg levels [2, 1]: replace with canonical op (declared)" in text
