"""The export registry: every custom op the exporter can emit has its three forms (standard
lowering, plugin node or lowered in both modes, function body), and a new op plugs in through
one register() call, without touching the trace or the graph pass."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from spp_deploy import contract
from spp_deploy.export import registry
from spp_deploy.export.passes import run_pass
from spp_deploy.export.trace import to_onnx_model
from spp_deploy.runtime import parity


def _spp_torch_ops() -> set[str]:
    """Every torch op in our namespace, once the modules that define them are imported."""
    import spp_deploy.ops.pyramid, spp_deploy.ops.size_dependent_pool  # noqa: E401,F401
    import spp_deploy.ops.table_pyramid, spp_deploy.ops.window_pyramid  # noqa: E401,F401

    return {name for name in torch._C._dispatch_get_all_op_names() if name.startswith("spp_deploy::")}


def test_every_custom_op_has_an_entry_with_all_forms():
    specs = {spec.op: spec for spec in registry.specs()}
    emitted = {contract.SPP_OP, contract.TAB_OP, contract.POOL_OP, contract.WINDOW_OP}
    assert emitted <= set(specs)
    assert {spec.torch_op for spec in specs.values()} >= _spp_torch_ops()
    # the ops with a TensorRT plugin are exactly the contract's; every other op is lowered in both modes
    assert {op for op, spec in specs.items() if spec.plugin is not None} == set(contract.PLUGIN_OPS)
    for spec in specs.values():
        assert callable(spec.lower) and spec.torch_overload() is not None
        schema = spec.schema_op().op_schema
        assert (schema.name, schema.domain) == (spec.op, spec.domain)
        assert set(schema.attributes) == {a.name for a in spec.attributes}


@pytest.mark.parametrize("op, attrs, dtypes", [
    (contract.SPP_OP, contract.SppConfig((3, 1), rule="ceil_pad").attrs, (np.float32,)),
    (contract.WINDOW_OP, {"levels": [1, 2], "projection": [16.0, 0.0, 0.0]}, (np.float32, np.float64)),
])
def test_plugin_ops_have_a_function_body_named_like_the_node(op, attrs, dtypes):
    spec = next(s for s in registry.specs() if s.op == op)
    fn = spec.function_body(spec.config(attrs), [np.dtype(d) for d in dtypes], 18, None)
    assert (fn.name, fn.domain) == (op, contract.SPP_DOMAIN)
    assert [x.name for x in fn.inputs] == [name for name, _ in spec.inputs] and len(fn.nodes) > 3
    assert set(fn.attrs) == {a.name for a in spec.attributes} | set(contract.PLUGIN_ATTRS)


# ---- a fake op, registered by this test only ----

@torch.library.custom_op("spp_test::twice", mutates_args=())
def _twice(x: torch.Tensor, scale: float) -> torch.Tensor:
    return x * (2.0 * scale)


@_twice.register_fake
def _(x, scale):
    return torch.empty_like(x)


class Twice(torch.nn.Module):
    def forward(self, x):
        return torch.ops.spp_test.twice(torch.relu(x), 1.5)


def _translate(op):
    def translate(x, scale):
        return op(x, scale=float(scale))

    return translate


def _lower(b, inputs, scale):
    x = inputs[0]
    return b.op("Mul", [x.tensor, b.const(2.0 * scale, x.dtype).tensor], x.dtype)


@pytest.fixture
def fake_op():
    spec = registry.register(registry.OpSpec(
        "Twice", "spp_test::twice", "torch", (("X", registry.FLOAT_TYPES),),
        (registry.Attr("scale", "floats", "scale"),), config=lambda attrs: float(np.ravel(attrs["scale"])[0]),
        lower=_lower, translate=_translate, prefix="twice", plugin=registry.Plugin("7", "", "tw"),
        domain="spp_test"))
    try:
        yield spec
    finally:
        registry.unregister(spec)
    assert spec not in registry.specs()


def _run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def test_a_registered_op_plugs_into_trace_and_pass(fake_op):
    example = torch.randn(1, 2, 8, 8)
    standard = to_onnx_model(Twice(), example, route="dynamo")
    assert "Twice" not in {n.op_type for n in standard.graph.node}
    assert "spp_test" not in {o.domain for o in standard.opset_import}
    plugin = to_onnx_model(Twice(), example, route="dynamo", spp_impl="plugin")
    (node,) = [n for n in plugin.graph.node if n.op_type == "Twice"]
    assert node.domain == "spp_test" and {a.name: a.s for a in node.attribute}["plugin_version"] == b"7"
    assert [(f.name, f.domain) for f in plugin.functions] == [("Twice", "spp_test")]
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 11), dtype=np.float32)  # another size: dynamic
    want = Twice()(torch.from_numpy(x)).numpy()
    for proto in (standard, plugin):
        np.testing.assert_allclose(_run(proto, x), want, rtol=1e-6)
    # the pass alone, on the plugin file: its plugin node stays, a second pass changes nothing
    again = run_pass(plugin, "plugin")
    assert [n.op_type for n in again.graph.node if n.domain == "spp_test"] == ["Twice"]


def test_old_names_still_work():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import spp_deploy.checked_export as checked
        from spp_deploy.export import graph, onnx_export, window, window_export

    assert checked.check_window_parity is parity.check_window_parity  # spp_deploy.deploy: tests/test_module_aliases.py
    assert onnx_export.to_onnx_model is to_onnx_model
    assert callable(graph.lower_standard) and callable(graph.to_plugin_mode) and callable(window.windows_to_plugin_mode)
    assert callable(window_export.to_onnx_window_model) and callable(onnx_export.trace_to_onnx)
