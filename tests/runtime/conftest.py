"""Fixtures of the runtime tests: the exported files they read (once per session: every zoo model
in both modes, and small models made for the TensorRT builder), a fresh engine cache and plugin
registry per test."""

import pytest
import torch

from spp_deploy.ops.pyramid import SpatialPyramidPool
from spp_deploy.runtime.trt import plugin_mode
from trt_cases import NAME
from exports import export_modes, export_zoo


@pytest.fixture(scope="session")
def files(exported):
    """NAME's exported files by mode: the session's zoo exports (the tests only read them)."""
    return {mode: exported[NAME, mode] for mode in ("standard", "plugin")}


class TwoSpp(torch.nn.Module):
    """Two SPP layers on one input (two plugin nodes, two function bodies); ``channels`` puts a 1x1
    conv before them."""

    def __init__(self, a, b, channels=0):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 1) if channels else torch.nn.Identity()
        self.a, self.b = a, b

    def forward(self, x):
        x = self.conv(x)
        return torch.cat([self.a(x), self.b(x)], 1)


@pytest.fixture(scope="session")
def two_spp(tmp_path_factory):
    """Two SPP configurations after a conv (one `rounded`)."""
    model = TwoSpp(SpatialPyramidPool((2, 1), "max", "rounded", "channel_major"),
                   SpatialPyramidPool((3,), "max", "adaptive", "bin_major"), channels=4)
    return export_modes(model, torch.randn(1, 4, 16, 16), tmp_path_factory.mktemp("two"), recognize=False)


@pytest.fixture
def no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fresh_plugins(monkeypatch):
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})


@pytest.fixture(scope="session")
def window_plugin_file(tmp_path_factory):
    """A plugin-mode window-SPP file (one WindowSpatialPyramidPool node, its function body)."""
    from spp_deploy.checked_export import export_window_model
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("wplug") / "window.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=4, stride=16.0, spp_impl="plugin", check_parity=False)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Every zoo model exported in both modes (no parity sweep here: validate is what we test)."""
    return export_zoo(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """Two SPP layers straight on the input (one `rounded`, whose edges are float32 math)."""
    model = TwoSpp(SpatialPyramidPool((2, 1), "max", "rounded", "bin_major"),
                   SpatialPyramidPool((3,), "avg", "ceil_pad", "channel_major"))
    return export_modes(model, torch.randn(1, 3, 12, 12), tmp_path_factory.mktemp("pair"), recognize=False)


@pytest.fixture
def engine_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})
    lib = tmp_path / "libspp_plugin.so"
    lib.write_bytes(b"\x7fELF")
    return lib


@pytest.fixture(scope="session")
def window_file(tmp_path_factory):
    from spp_deploy.checked_export import export_window_model
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    path = tmp_path_factory.mktemp("win") / "head.onnx"
    export_window_model(WindowSpatialPyramidPool(), path, channels=3, stride=16.0, spp_impl="plugin",
                        check_parity=False)
    return path
