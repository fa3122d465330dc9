"""Every custom op the exporter emits, mapped to its three ONNX forms: the standard-op lowering,
the plugin node, and the model-local function body that backs a plugin node.

The trace (``export.trace``) builds its translation table and TorchScript symbolics from here and
the graph pass (``export.passes``) lowers or wraps whatever nodes here name, so a new op (an
op-level pool, a test's fake op) plugs in as one ``register(OpSpec(...))`` call, as converters do
in torch_tensorrt's registry. The built-in entries live in ``export/lowering/``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np

from ..contract import PLUGIN_ATTRS, SPP_DOMAIN

FLOAT_TYPES = ("tensor(float)", "tensor(float16)")


@dataclass(frozen=True)
class Attr:
    """One node attribute, in the torch op's argument order: ``kind`` is ints, floats or string."""

    name: str
    kind: str
    doc: str = ""


@dataclass(frozen=True)
class Plugin:
    """The TensorRT plugin a node stays as in plugin mode (read by onnx-tensorrt's fallback)."""

    version: str
    namespace: str = ""
    overload_prefix: str = "cfg"  # distinct configurations of one op: overloads prefix1, prefix2, ...

    def mark(self, node) -> None:
        """Give ``node`` (onnx-graphsurgeon) the attributes that name the plugin."""
        node.attrs["plugin_version"] = self.version
        node.attrs["plugin_namespace"] = self.namespace


@dataclass(frozen=True)
class OpSpec:
    """One custom op: its node (domain, name, inputs, attributes), the torch op it translates,
    how a node's attributes become a config, and how that config lowers to standard ops.

    ``lower(builder, inputs, config)`` writes the standard ops for one node (``inputs``: one
    ``Sym`` per node input) and returns the output; the function body of plugin mode is the
    same lowering on the function's formal inputs. ``plugin`` None: lowered in both modes.
    """

    op: str
    torch_op: str  # "namespace::name"
    torch_module: str  # the module whose import registers the torch op
    inputs: tuple[tuple[str, tuple[str, ...]], ...]  # (formal name, allowed ONNX types)
    attributes: tuple[Attr, ...]
    config: Callable[[Mapping[str, Any]], Hashable]
    lower: Callable[..., Any]
    translate: Callable[[Any], Callable]  # onnxscript Op -> the dynamo exporter's translation function
    prefix: str  # the lowering's node names: prefix + node index
    plugin: Plugin | None = None
    symbolic: Callable | None = None  # the TorchScript exporter's symbolic, where that route serves the op
    domain: str = SPP_DOMAIN

    def torch_overload(self):
        """``torch.ops.<namespace>.<name>.default`` (its module imported first)."""
        import torch

        importlib.import_module(self.torch_module)
        namespace, name = self.torch_op.split("::")
        return getattr(getattr(torch.ops, namespace), name).default

    def schema_op(self):
        """An onnxscript Op for the node: the torch exporter needs a schema to emit it."""
        import onnxscript
        from onnx.defs import OpSchema

        kinds = {"ints": OpSchema.AttrType.INTS, "floats": OpSchema.AttrType.FLOATS,
                 "string": OpSchema.AttrType.STRING}
        schema = OpSchema(
            self.op, self.domain, 1,
            inputs=[OpSchema.FormalParameter(name, f"T{i}") for i, (name, _) in enumerate(self.inputs)],
            outputs=[OpSchema.FormalParameter("Y", "T0")],
            type_constraints=[(f"T{i}", list(types), "") for i, (_, types) in enumerate(self.inputs)],
            attributes=[OpSchema.Attribute(a.name, kinds[a.kind], a.doc) for a in self.attributes],
        )
        return onnxscript.values.Op(onnxscript.values.Opset(self.domain, 1), self.op, schema)

    def nodes(self, graph) -> list:
        """This op's nodes in an onnx-graphsurgeon graph."""
        return [n for n in graph.nodes if n.domain == self.domain and n.op == self.op]

    def function_body(self, config: Hashable, dtypes: Sequence[Any], opset: int, overload: str | None):
        """The standard-op lowering as a model-local function named like the plugin node."""
        import onnx
        import onnx_graphsurgeon as gs

        from .symbolic import GraphBuilder, Sym

        xs = [gs.Variable(name, dtype=dt) for (name, _), dt in zip(self.inputs, dtypes)]
        b = GraphBuilder("body")
        y = self.lower(b, [Sym(b, x, np.dtype(dt)) for x, dt in zip(xs, dtypes)], config).tensor
        y.name = "Y"
        fn = gs.Function(self.op, domain=self.domain, nodes=b.nodes, inputs=xs, outputs=[y],
                         import_domains=[onnx.helper.make_opsetid("", opset)],
                         attrs={name: None for name in (*(a.name for a in self.attributes), *PLUGIN_ATTRS)})
        fn.overload = overload
        return fn


KEY_ATTR = Attr("key", "string", "spp_deploy registry key")


def keyed(op: str, torch_op: str, torch_module: str, build: Callable, prefix: str,
          symbolic: Callable | None = None) -> OpSpec:
    """An op whose spec stays in this process (``torch_module.get_spec(key)``), its node carrying
    only the key: one input, lowered by ``build(builder, x, spec)`` in both modes (no plugin)."""

    def lower(b, inputs, key: str):
        return build(b, inputs[0], importlib.import_module(torch_module).get_spec(key))

    def translate(schema_op):
        def translation(x, key):
            return schema_op(x, key=key)

        return translation

    return OpSpec(op, torch_op, torch_module, (("X", FLOAT_TYPES),), (KEY_ATTR,),
                  config=lambda attrs: str(attrs["key"]), lower=lower, translate=translate, prefix=prefix,
                  symbolic=symbolic)


_REGISTRY: dict[tuple[str, str], OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    """Add ``spec`` (replacing an entry for the same domain and op)."""
    _REGISTRY[(spec.domain, spec.op)] = spec
    return spec


def unregister(spec: OpSpec) -> None:
    _REGISTRY.pop((spec.domain, spec.op), None)


def specs() -> tuple[OpSpec, ...]:
    """Every registered op, the built-in ones first (in the order the graph pass applies them)."""
    from . import lowering  # noqa: F401  (registers the built-in ops)

    return tuple(_REGISTRY.values())


def translation_table() -> dict:
    """torch op -> translation function, for the dynamo exporter's ``custom_translation_table``."""
    return {spec.torch_overload(): spec.translate(spec.schema_op()) for spec in specs()}
