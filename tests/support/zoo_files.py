"""Every zoo model exported in both spp-impl modes, for the tests that read the files only."""

import torch

from spp_deploy import export_onnx, zoo

MODES = ("standard", "plugin")


def export_zoo(d):
    """{(name, mode): path} of every zoo model exported into ``d`` (no parity sweep: the tests check
    what they need)."""
    out = {}
    for name in zoo.zoo_names():
        e = zoo.get_entry(name)
        model = zoo.create(name)
        for mode in MODES:
            p = d / f"{name}-{mode}.onnx"
            export_onnx(model, torch.randn(*e.input_shape), p, spp_impl=mode, check_parity=False)
            out[name, mode] = p
    return out
