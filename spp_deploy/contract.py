"""The contract between the exporter, the runners and the TensorRT plugin, defined once.

Op and plugin names, the node attributes, the C ABI's enum numbers and status codes, ``SppConfig``
(what one pyramid computes), and how to find SPP nodes and their function bodies in an ONNX
file. A leaf module: it imports only ``bins`` and ``onnx``, so ``export/``, ``runtime/``,
``recognize/`` and the plugin tools can all depend on it without depending on each other.
``tests/test_contract.py`` checks these values against the plugin's C++ headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import onnx

from .ops import bins as _bins

SPP_DOMAIN = "spp_deploy"
SPP_OP = "SpatialPyramidPool"  # the canonical pyramid; also the TensorRT plugin's name
TAB_OP = "TabulatedPyramidPool"  # a probed layer's tables (spp_deploy.ops.table_pyramid): always lowered inline
POOL_OP = "SizeDependentPool"  # one size-dependent pooling call (spp_deploy.ops.size_dependent_pool): always lowered inline

# SPP-net detection pooling (maps + windows -> per-window pyramid): spp_deploy.export.lowering.window
WINDOW_OP = "WindowSpatialPyramidPool"
WINDOW_PLUGIN_VERSION = "1"
WINDOW_PLUGIN_NAMESPACE = ""

# Op types of the custom nodes a plugin-mode file holds: each is a plugin of libspp_plugin.so
# (same name, version and namespace) and carries a model-local function body for other runtimes.
PLUGIN_OPS = (SPP_OP, WINDOW_OP)

PLUGIN_NAME = SPP_OP
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
# The node's (and the plugin's) config fields. SppConfig.rule travels as "bins": the wire name of
# plugin version 1 and of every file written so far, so it stays.
RULE_ATTR = "bins"
CONFIG_ATTRS = ("levels", "mode", RULE_ATTR, "order")
PLUGIN_ATTRS = ("plugin_version", "plugin_namespace")  # read by TensorRT's ONNX parser

# Marks the names of the float32 bin-edge nodes (the `rounded` rule): the TensorRT builder pins
# those layers to fp32 in weakly typed fp16 builds (TensorRT names layers after ONNX nodes).
EDGE_F32_MARK = "spp_edge_f32"

MAX_NB_LEVELS = 16  # pyramid levels per node (sppBins.h kMAX_NB_LEVELS; the C ABI's level arrays)

# The C ABI's enum numbers (sppBins.h): the position in bins.py's tuples.
MODE_CODES = {m: i for i, m in enumerate(_bins.MODES)}
RULE_CODES = {r: i for i, r in enumerate(_bins.RULES)}
ORDER_CODES = {o: i for i, o in enumerate(_bins.ORDERS)}


class Status(IntEnum):
    """Status codes of the kernel launcher and the CPU reference (spatialPyramidPoolKernel.h)."""

    OK = 0
    ILLEGAL_SIZE = 1
    BAD_CONFIG = 2
    BAD_ARGUMENT = 3
    CUDA_ERROR = 4


@dataclass(frozen=True)
class SppConfig:
    """(levels, mode, rule, order): everything the canonical op, its ONNX node and the plugin need."""

    levels: tuple[int, ...]
    mode: str = "max"
    rule: str = "adaptive"
    order: str = "channel_major"

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", _bins.validate_config(self.levels, self.mode, self.rule, self.order))

    def module(self):
        from .ops.pyramid import SpatialPyramidPool

        return SpatialPyramidPool(self.levels, self.mode, self.rule, self.order)

    def feature_count(self, channels: int) -> int:
        return _bins.feature_count(channels, self.levels)

    def as_dict(self) -> dict:
        return {"levels": list(self.levels), "mode": self.mode, "rule": self.rule, "order": self.order}

    @property
    def attrs(self) -> dict:
        """The node attributes (``CONFIG_ATTRS``)."""
        return {"levels": list(self.levels), "mode": self.mode, RULE_ATTR: self.rule, "order": self.order}

    @classmethod
    def from_attrs(cls, attrs) -> "SppConfig":
        """From a node's attributes (onnx-graphsurgeon's ``node.attrs`` or a name -> value dict)."""
        return cls(tuple(int(v) for v in attrs["levels"]), str(attrs["mode"]), str(attrs[RULE_ATTR]), str(attrs["order"]))


def is_spp_node(node) -> bool:
    """An SPP pyramid node: an ``onnx.NodeProto`` or an onnx-graphsurgeon ``Node``."""
    op = node.op_type if isinstance(node, onnx.NodeProto) else node.op
    return node.domain == SPP_DOMAIN and op == SPP_OP


def spp_nodes(model) -> list:
    """The SPP nodes of a file's main graph (a plugin-mode file has one per pyramid): of an
    ``onnx.ModelProto`` (``NodeProto``s) or an onnx-graphsurgeon ``Graph`` (``Node``s)."""
    nodes = model.graph.node if isinstance(model, onnx.ModelProto) else model.nodes
    return [n for n in nodes if is_spp_node(n)]


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes of a file's main graph that become plugin layers (``PLUGIN_OPS``)."""
    return [n for n in model.graph.node if n.domain == SPP_DOMAIN and n.op_type in PLUGIN_OPS]


def is_spp_function(fn: onnx.FunctionProto) -> bool:
    """A model-local function body of one of our plugin ops (whole-image or window pyramid)."""
    return fn.domain == SPP_DOMAIN and fn.name in PLUGIN_OPS


def strip_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without the SPP and window-SPP function bodies (every overload). TensorRT's parser looks local
    functions up by name only and inlines the body it finds; without them it builds each SPP node
    as the plugin from the node's own attributes (plugin README, "How TensorRT parses")."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = [f for f in out.functions if not is_spp_function(f)]
    del out.functions[:]
    out.functions.extend(keep)
    return out
