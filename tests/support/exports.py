"""Files exported once and read by many tests: a model in both spp-impl modes, and every zoo model
in both modes."""

import torch

from spp_deploy import export_onnx
from spp_deploy.sources import zoo

MODES = ("standard", "plugin")


def export_modes(model, example, directory, prefix="", **kw):
    """{mode: path} of ``model`` exported in each of MODES into ``directory`` (no parity sweep: the
    tests check what they need); ``kw`` goes to ``export_onnx``."""
    out = {}
    for mode in MODES:
        out[mode] = directory / f"{prefix}{mode}.onnx"
        export_onnx(model, example, out[mode], spp_impl=mode, check_parity=False, **kw)
    return out


def export_zoo(d):
    """{(name, mode): path} of every zoo model exported into ``d``."""
    out = {}
    for name in zoo.zoo_names():
        model = zoo.create(name)
        for mode, path in export_modes(model, torch.randn(*zoo.get_entry(name).input_shape), d, f"{name}-").items():
            out[name, mode] = path
    return out
