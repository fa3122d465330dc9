"""Plugin-mode files for TensorRT: which library they need, what the ONNX parser is given, and
registering the library with TensorRT once per process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Collection

import onnx

from ...contract import PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION, plugin_nodes, strip_functions
from ...util.errors import UserError, first_line
from .common import shared_logger


def is_plugin_mode(model: onnx.ModelProto) -> bool:
    """Whether the file holds SPP nodes that TensorRT must build as plugin layers."""
    return bool(plugin_nodes(model))


def resolve_plugin(model: onnx.ModelProto, plugin: str | os.PathLike | None) -> Path | None:
    """The plugin library a plugin-mode file needs (``--plugin``, then spp_deploy.native.library's search);
    ``UserError`` if the file needs one and none is found; None for standard files without --plugin."""
    if plugin is not None:
        p = Path(plugin)
        if not p.is_file():
            raise UserError(f"plugin library not found: {p}")
        return p
    if not is_plugin_mode(model):
        return None
    from ...native.library import find_plugin_library

    found = find_plugin_library()
    if found is None:
        n = len(plugin_nodes(model))
        raise UserError(
            f"this is a plugin-mode file ({n} SPP plugin node(s)) and no plugin library was found: "
            "give the library's path or set SPP_DEPLOY_PLUGIN_LIB (build it with `spp-deploy plugin build`)"
        )
    return Path(found)


def prepare_for_parser(model: onnx.ModelProto) -> onnx.ModelProto:
    """What the TensorRT parser gets: a plugin-mode file without its SPP function bodies.

    The parser keys model-local functions by name only (every configuration would get the first
    body) and, finding one, inlines it instead of using the plugin. Without the bodies its fallback
    plugin importer (every 10.x and 11.x) builds each node from its own attributes, and fails with
    "Plugin not found" when the plugin is not registered: never a silent standard-op graph. The
    parser's global plugin-override flag is not used (it would also re-route any node whose op type
    matches some registered creator)."""
    if not is_plugin_mode(model):
        return model

    return strip_functions(model)


_LOADED_PLUGINS: dict[tuple[int, str], object] = {}  # (id of the tensorrt module, resolved path) -> handle


def load_plugin(path: Path, trt: Any = None) -> None:
    """Register the plugin library with TensorRT once per process: ``IPluginRegistry.load_library``
    (which calls the library's ``getCreators``). The library is not dlopen'ed a second time by
    ctypes. A creator already registered (by the application, or a build with static
    registration) is accepted as is."""

    resolved = str(Path(path).resolve())
    key = (id(trt), resolved)
    if key in _LOADED_PLUGINS:
        return
    reg = trt.get_plugin_registry() if trt is not None and hasattr(trt, "get_plugin_registry") else None
    if reg is None or not hasattr(reg, "load_library"):
        raise UserError(f"this TensorRT has no plugin registry with load_library: cannot load {path}")

    def registered() -> bool:
        try:
            return reg.get_creator(PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE) is not None
        except Exception:
            return False

    if registered():
        _LOADED_PLUGINS[key] = None
        return
    logger = shared_logger(trt)
    logger.reset()
    try:
        handle = reg.load_library(resolved)
    except Exception as e:
        handle, why = None, first_line(e)
    else:
        why = logger.last_error()
    if handle is None and not registered():
        raise UserError(f"TensorRT cannot load plugin library {path}: {why}")
    _LOADED_PLUGINS[key] = handle


def count_plugin_layers(trt: Any, network: Any, names: Collection[str] | None = None) -> int | None:
    """IPluginV3 layers in a parsed network, only those named in ``names`` when given (the parser
    names a plugin layer after its node; it also emits plugins of its own, e.g. ``ROIAlign_TRT``
    for RoiAlign, and users add theirs); None if the API cannot tell."""
    found = spp_plugin_layers(trt, network, names)
    return None if found is None else len(found)


def spp_plugin_layers(trt: Any, network: Any, names: Collection[str] | None) -> list[str] | None:
    """Names of the IPluginV3 layers (named in ``names`` when given); None if the API cannot tell."""
    kind = getattr(getattr(trt, "LayerType", None), "PLUGIN_V3", None)
    if kind is None or not hasattr(network, "num_layers"):
        return None
    wanted = None if names is None else set(names)
    layers = (network.get_layer(i) for i in range(network.num_layers))
    return [str(la.name) for la in layers if la.type == kind and (wanted is None or str(la.name) in wanted)]


def check_plugin_layers(trt: Any, network: Any, model: onnx.ModelProto, what: str) -> None:
    """Every SPP node of ``model`` became its own SPP plugin layer in ``network`` (else one-line
    ``UserError``): a plugin that was not used is never a silent standard-op engine."""
    nodes = plugin_nodes(model)
    if not nodes:
        return
    names = [n.name for n in nodes]
    found = spp_plugin_layers(trt, network, names if all(names) else None)  # unnamed nodes: every IPluginV3 layer
    missing = [n for n in names if n and n not in (found or ())]
    if found is None or (len(found) == len(nodes) and not missing):
        return
    ops = " / ".join(sorted({n.op_type for n in nodes}))
    raise UserError(f"TensorRT parsed {what} into {len(found)} plugin layer(s) for {len(nodes)} {ops} node(s): "
                    "the SPP plugin was not used for every node ("
                    + (f"no plugin layer for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}; " if missing
                       else "") + "is the library the right one?)")
