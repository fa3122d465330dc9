"""Fixtures of the runtime tests: the exported files they read (once per session: every zoo model
in both modes, and small models made for the TensorRT builder), a fresh engine cache and plugin
registry per test."""

import pytest
import torch

from spp_deploy import export_onnx
from spp_deploy.op import SpatialPyramidPool
from spp_deploy.runtime.trt import plugin_mode
from trt_cases import NAME
from zoo_files import export_zoo


@pytest.fixture(scope="session")
def files(exported):
    """NAME's exported files by mode: the session's zoo exports (the tests only read them)."""
    return {mode: exported[NAME, mode] for mode in ("standard", "plugin")}


class TwoSpp(torch.nn.Module):
    """Two SPP configurations in one model (one `rounded`): two plugin nodes, two function bodies."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 1)
        self.a = SpatialPyramidPool((2, 1), "max", "rounded", "channel_major")
        self.b = SpatialPyramidPool((3,), "max", "adaptive", "bin_major")

    def forward(self, x):
        x = self.conv(x)
        return torch.cat([self.a(x), self.b(x)], 1)


@pytest.fixture(scope="session")
def two_spp(tmp_path_factory):
    d = tmp_path_factory.mktemp("two")
    out = {}
    for mode in ("standard", "plugin"):
        out[mode] = d / f"{mode}.onnx"
        export_onnx(TwoSpp(), torch.randn(1, 4, 16, 16), out[mode], spp_impl=mode, check_parity=False, recognize=False)
    return out


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fresh_plugins(monkeypatch):
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})


@pytest.fixture(scope="session")
def window_plugin_file(tmp_path_factory):
    """A plugin-mode window-SPP file (one WindowSpatialPyramidPool node, its function body)."""
    from spp_deploy.deploy import export_window_model
    from spp_deploy.window import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("wplug") / "window.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=4, stride=16.0, spp_impl="plugin", check_parity=False)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Every zoo model exported in both modes (no parity sweep here: validate is what we test)."""
    return export_zoo(tmp_path_factory.mktemp("onnx"))


class Pair(torch.nn.Module):
    """Two SPP layers on one input (one `rounded`, whose edges are float32 math)."""

    def __init__(self):
        super().__init__()
        self.a = SpatialPyramidPool((2, 1), "max", "rounded", "bin_major")
        self.b = SpatialPyramidPool((3,), "avg", "ceil_pad", "channel_major")

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    paths = {m: d / f"{m}.onnx" for m in ("standard", "plugin")}
    for mode, path in paths.items():
        export_onnx(Pair(), torch.randn(1, 3, 12, 12), path, spp_impl=mode, check_parity=False, recognize=False)
    return paths


@pytest.fixture
def engine_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"\x7fELF")
    return lib


@pytest.fixture(scope="session")
def window_file(tmp_path_factory):
    from spp_deploy.deploy import export_window_model
    from spp_deploy.window import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("win") / "head.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=3, stride=16.0, spp_impl="plugin",
                        check_parity=False)
    return path
