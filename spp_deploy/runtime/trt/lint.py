"""``spp-deploy check --target tensorrt``: static lint against onnx-tensorrt's operator support.

Facts encoded from onnx-tensorrt's ``docs/operators.md`` (TensorRT 10.x support matrix): which
ops exist, which tensor types each takes, and the documented restrictions (e.g. ReduceX ``axes``
must be an initializer, Round/Ceil/Floor are float-only, MaxRoiPool is unsupported, pooling is
2D/3D with unit dilations, ``Indices`` of MaxPool unsupported). A "constant" operand is an
initializer or the output of a ``Constant`` node (the parser turns both into weights).

Also: model-local function bodies are linted like the graph (the parser inlines them) and their
names checked (the parser keys functions by name only); ``If`` branches must have the same number
of outputs with distinct names, equal ranks and (TensorRT 10.4-10.10) identical shapes; SPP nodes
must fit the plugin (<= 16 levels, each <= 64), window-SPP nodes the window plugin (its level set,
a valid projection); the `rounded` rule's float bin edges are flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import onnx
from onnx import TensorProto as TP

from ...contract import EDGE_F32_MARK, PLUGIN_ATTRS, PLUGIN_OPS, SPP_DOMAIN, SPP_OP, WINDOW_OP

# Type-set codes: F fp32, H fp16, b bf16, i int32, l int64, B bool, u uint8, c int8, 8 fp8, 4 int4.
_TYPE_CODES = {
    "F": TP.FLOAT, "H": TP.FLOAT16, "b": TP.BFLOAT16, "i": TP.INT32, "l": TP.INT64, "B": TP.BOOL,
    "u": TP.UINT8, "c": TP.INT8, "8": TP.FLOAT8E4M3FN, "4": TP.INT4,
}
_SUPPORT = {
    "FHbil": "Abs Add ArgMax ArgMin DepthToSpace Div Equal Greater GreaterOrEqual IsNaN Less LessOrEqual Max Min "
             "Mod Mul Neg Pad Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin "
             "ReduceProd ReduceSum ReduceSumSquare Relu Scatter ScatterElements ScatterND Shrink Sign SpaceToDepth "
             "Sub Sum TopK",
    "FHb": "Acos Acosh Asin Asinh Atan Atanh AveragePool BatchNormalization Ceil Celu Clip Conv ConvTranspose Cos "
           "Cosh CumSum Dropout Einsum Elu Erf Exp Floor Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool "
           "GroupNormalization GRU HardSigmoid HardSwish Hardmax ImageScaler InstanceNormalization IsInf "
           "LayerNormalization LeakyRelu Log LogSoftmax LRN LSTM LpNormalization LpPool MatMul MaxPool "
           "MeanVarianceNormalization ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike "
           "RandomUniform RandomUniformLike Reciprocal Resize RNN Round ScaledTanh Scan Selu Sigmoid Sin Sinh "
           "Softmax Softplus Softsign Sqrt Tan Tanh ThresholdedRelu Upsample",
    "B": "And Not Or Xor",
    "FHbilBu": "Cast CastLike",
    "FHbilB": "Concat Constant ConstantOfShape Expand EyeLike Flatten Gather GatherElements GatherND Identity If "
              "Loop OneHot Reshape ReverseSequence Shape Size Slice Split Squeeze Tile Transpose Trilu Unsqueeze Where",
    "FH": "DeformConv GridSample Mish NonMaxSuppression NonZero RoiAlign",
    "c84": "DequantizeLinear",
    "FHbilc": "Gelu",
    "FHbil8": "Mean",
}
SUPPORTED_TYPES: dict[str, frozenset[int]] = {
    op: frozenset(_TYPE_CODES[c] for c in codes) for codes, ops in _SUPPORT.items() for op in ops.split()
}
UNSUPPORTED = frozenset(
    "AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor BlackmanWindow CenterCropPad Col2Im "
    "Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear HammingWindow HannWindow ImageDecoder "
    "MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional "
    "OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul RegexFullMatch STFT SequenceAt "
    "SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap "
    "SoftmaxCrossEntropyLoss SplitToSequence StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique".split()
)
# Which input carries the type the matrix talks about (default: input 0).
_DATA_INPUT = {"Where": 1}
# Inputs that must be constant: op -> [(input index, name)].
_CONST_INPUTS = {
    **{op: [(1, "axes")] for op in ("ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean "
                                     "ReduceMin ReduceProd ReduceSum ReduceSumSquare Squeeze Unsqueeze").split()},
    "Slice": [(3, "axes")],
    "Pad": [(3, "axes")],
    "CumSum": [(1, "axis")],
    "Dropout": [(2, "training_mode")],
}
TRT_OPSET_RANGE = (9, 20)  # TensorRT 10.0's documented range; later releases extend it
_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}


@dataclass
class Finding:
    severity: str  # "error" (the parser rejects it), "warning" (may fail or degrade), "info"
    node: str
    op: str
    message: str

    def line(self) -> str:
        where = f"node {self.node!r} ({self.op})" if self.node or self.op else "model"
        return f"{self.severity.upper():7} {where}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _type_name(t: int) -> str:
    return TP.DataType.Name(t) if t else "unknown"


class _Context:
    def __init__(self, model: onnx.ModelProto) -> None:
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:
            inferred = model
        self.types: dict[str, int] = {}
        self.shapes: dict[str, tuple | None] = {}
        self.consts: dict[str, onnx.TensorProto] = {}
        self._collect(inferred.graph)
        for fn in model.functions:  # Constant nodes inside bodies are weights too
            self._collect_constants(fn.node)

    def _collect(self, g: onnx.GraphProto) -> None:
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.HasField("tensor_type"):
                self.types[vi.name] = vi.type.tensor_type.elem_type
                tt = vi.type.tensor_type
                self.shapes[vi.name] = (tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                              for d in tt.shape.dim) if tt.HasField("shape") else None)
        for init in g.initializer:
            self.types[init.name] = init.data_type
            self.consts[init.name] = init
        self._collect_constants(g.node)
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    self._collect(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        self._collect(sg)


    def _collect_constants(self, nodes) -> None:
        for n in nodes:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output:
                v = _attr(n, "value")
                if isinstance(v, onnx.TensorProto):
                    self.consts[n.output[0]] = v
                    self.types[n.output[0]] = v.data_type


def lint_tensorrt(model: onnx.ModelProto) -> list[Finding]:
    """Findings for every node onnx-tensorrt's support matrix rejects or restricts."""
    out: list[Finding] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    lo, hi = TRT_OPSET_RANGE
    if opset and opset < lo:
        out.append(Finding("error", "", "", f"opset {opset} is below TensorRT's supported range {lo}..{hi}"))
    elif opset > hi:
        out.append(Finding("warning", "", "", f"opset {opset} is above {hi}, the newest opset TensorRT 10.0 parses "
                                              "(later TensorRT releases parse newer opsets)"))
    ctx = _Context(model)
    g = model.graph
    for vi in list(g.input) + list(g.output):
        t = vi.type.tensor_type.elem_type
        if t == TP.DOUBLE:
            out.append(Finding("warning", vi.name, "graph I/O", "DOUBLE has limited support: TensorRT casts it to FLOAT"))
        elif t not in (TP.FLOAT, TP.FLOAT16, TP.BFLOAT16, TP.INT32, TP.INT64, TP.BOOL, TP.UINT8, TP.INT8, 0):
            out.append(Finding("error", vi.name, "graph I/O", f"tensor type {_type_name(t)} is not supported by TensorRT"))
    out += _lint_graph(g, ctx)
    out += _lint_functions(model, ctx)
    marked = [n.name for n in _all_nodes(g) if EDGE_F32_MARK in n.name]
    if marked:
        out.append(Finding("warning", marked[0], "`rounded` bin edges",
                           f"{len(marked)} float32 bin-edge node(s) of the `rounded` rule: spp-deploy build pins "
                           "them to fp32 in TensorRT 10 fp16 builds, but TensorRT may still fuse them into pointwise "
                           "kernels "
                           "(contraction/approximate division not ruled out, not verified); for edges bit-exact by "
                           "construction export with --spp-impl plugin"))
    return out


def _all_nodes(g: onnx.GraphProto) -> Iterable[onnx.NodeProto]:
    for n in g.node:
        yield n
        for a in n.attribute:
            for sg in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                yield from _all_nodes(sg)


def _lint_functions(model: onnx.ModelProto, ctx: "_Context") -> list[Finding]:
    """Model-local functions: the parser keys them by name only and inlines the body it finds."""
    out: list[Finding] = []
    by_name: dict[str, list[onnx.FunctionProto]] = {}
    for fn in model.functions:
        by_name.setdefault(fn.name, []).append(fn)
    for name, fns in by_name.items():
        where = "local function"
        if any(f.domain == SPP_DOMAIN for f in fns) and name in PLUGIN_OPS:
            out.append(Finding("warning", f"{SPP_DOMAIN}.{name}", where, _spp_bodies_message(model, name, len(fns))))
            continue
        if len(fns) > 1:
            out.append(Finding("error", name, where, f"{len(fns)} functions named {name!r} (domains/overloads "
                                                   f"{', '.join(repr(f.domain + ':' + f.overload) for f in fns)}): "
                                                   "TensorRT's parser keys local functions by name only"))
        for fn in fns:
            for i, n in enumerate(fn.node):
                out += list(_lint_node(n, f"{name}/{n.name or '#' + str(i)}", ctx))
    return out


def _spp_bodies_message(model: onnx.ModelProto, op: str, n_bodies: int) -> str:
    """What each TensorRT version's ONNX parser does with SPP nodes whose function bodies are in the
    file (onnx-tensorrt: a local function is inlined unless the plugin path wins)."""
    nodes = [n for n in _all_nodes(model.graph) if n.domain == SPP_DOMAIN and n.op_type == op]
    no_ns = sum(1 for n in nodes if _attr(n, "plugin_namespace") is None)
    inlined = ("the first body for every SPP node (wrong results for the other configurations)" if n_bodies > 1
               else "the body instead of using the plugin")
    return (f"{n_bodies} SPP function body/bodies for {op}: TensorRT < 10.7 inlines {inlined}; 10.7-10.14 use "
            "the plugin if it is registered before parsing, else the body; >= 10.15 use the plugin only for "
            "nodes with plugin_namespace" + (f" ({no_ns} node(s) lack it)" if no_ns else "")
            + " or with the parser's plugin-override flag. `spp-deploy build` strips the bodies, so every "
            "version builds the plugin; for trtexec or Polygraphy export with --strip-functions")


def _lint_if(n: onnx.NodeProto, name: str, ctx: "_Context") -> Iterable[Finding]:
    """onnx-tensorrt's If: same output count, distinct output names, broadcastable shapes;
    TensorRT 10.4-10.10 require identical shapes (10.11 relaxed that to equal ranks)."""
    then_g, else_g = _attr(n, "then_branch"), _attr(n, "else_branch")
    if then_g is None or else_g is None:
        return
    if len(then_g.output) != len(else_g.output):
        yield Finding("error", name, "If", f"the branches have {len(then_g.output)} and {len(else_g.output)} outputs")
        return
    cond_t = ctx.types.get(n.input[0], 0) if n.input else 0
    if cond_t and cond_t != TP.BOOL:
        yield Finding("error", name, "If", f"the condition has type {_type_name(cond_t)}, TensorRT needs BOOL")
    for k, (a, b) in enumerate(zip(then_g.output, else_g.output)):
        if a.name == b.name:
            yield Finding("error", name, "If",
                          f"output {k}: both branches name it {a.name!r} (TensorRT needs distinct names)")
        sa, sb = ctx.shapes.get(a.name), ctx.shapes.get(b.name)
        if sa is None or sb is None:
            continue
        if len(sa) != len(sb):
            yield Finding("error", name, "If", f"output {k}: branch ranks differ ({len(sa)} vs {len(sb)})")
        elif any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
            yield Finding("warning", name, "If", f"output {k}: branch shapes differ ({_dims(sa)} vs {_dims(sb)}): "
                                                 "TensorRT 10.4-10.10 need identical shapes")
    yield Finding("info", name, "If", "a condition computed on the GPU: TensorRT may synchronize to read it, so "
                                      "CUDA-graph capture of the engine can fail (spp-deploy bench then times "
                                      "without a graph)")


def _dims(s) -> str:
    return "x".join("?" if d is None else str(d) for d in s)


def _lint_graph(g: onnx.GraphProto, ctx: _Context) -> list[Finding]:
    out: list[Finding] = []
    for i, n in enumerate(g.node):
        name = n.name or f"#{i}"
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                out += _lint_graph(a.g, ctx)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    out += _lint_graph(sg, ctx)
        out += list(_lint_node(n, name, ctx))
    return out


def _missing_plugin_attrs(n: onnx.NodeProto, name: str, where: str) -> Finding | None:
    """An error for a plugin node without plugin_version / plugin_namespace: the parser reads both to
    find the creator, and TensorRT >= 10.15 builds a node as the plugin only when it has plugin_namespace."""
    missing = [a for a in PLUGIN_ATTRS if _attr(n, a) is None]
    if not missing:
        return None
    why = (": TensorRT >= 10.15 then inlines its function body instead of using the plugin"
           if "plugin_namespace" in missing else "")
    return Finding("error", name, where, f"plugin node lacks the {' and '.join(missing)} attribute{why}")


def _lint_window_node(n: onnx.NodeProto, name: str) -> Finding:
    """What the window plugin's createPlugin refuses (windowConfig.h): levels outside the exact set
    or more than 16, a projection that is not 3 finite values with stride > 0."""
    import math

    from ...ops.window_pyramid import EXACT_LEVELS

    where = f"{n.domain}.{n.op_type}"
    levels = [int(v) for v in (_attr(n, "levels", []) or [])]
    proj = [float(v) for v in (_attr(n, "projection", []) or [])]
    missing = _missing_plugin_attrs(n, name, where)
    if missing:
        return missing
    if not 1 <= len(levels) <= 16 or any(v not in EXACT_LEVELS for v in levels):
        return Finding("error", name, where, f"levels {levels}: the window plugin takes 1..16 levels, each one of "
                                            f"{', '.join(map(str, EXACT_LEVELS))}")
    if len(proj) != 3 or not all(math.isfinite(v) for v in proj) or proj[0] <= 0:
        return Finding("error", name, where, f"projection {proj}: the window plugin needs (stride > 0, offset0, "
                                            "offset), all finite")
    return Finding("info", name, where, "TensorRT plugin node: the build needs the plugin library libspp_plugin.so")


def _lint_node(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    """One node's findings: a custom-domain node, an op onnx-tensorrt lacks or does not list, its
    data input's type, inputs that must be initializers, then the op's own attribute rules."""
    op = n.op_type
    if n.domain not in ("", "ai.onnx"):
        yield from _lint_custom(n, name, ctx)
        return
    if op in UNSUPPORTED:
        yield Finding("error", name, op, "not supported by onnx-tensorrt")
        return
    types = SUPPORTED_TYPES.get(op)
    if types is None:
        yield Finding("warning", name, op, "not listed in onnx-tensorrt's support matrix")
        return
    yield from _lint_inputs(n, name, types, ctx)
    check = _OP_CHECKS.get(op)
    if check is not None:
        yield from check(n, name, ctx)


def _lint_custom(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    """Our plugin nodes (their attributes as the plugins take them); any other custom op needs a plugin."""
    op, where = n.op_type, f"{n.domain}.{n.op_type}"
    if n.domain == SPP_DOMAIN and op == SPP_OP:
        levels = list(_attr(n, "levels", []) or [])
        missing = _missing_plugin_attrs(n, name, where)
        if missing:
            yield missing
        elif not 1 <= len(levels) <= 16 or any(not 1 <= int(v) <= 64 for v in levels):
            yield Finding("error", name, where, f"levels {levels}: the plugin takes 1..16 levels, each 1..64")
        else:
            yield Finding("info", name, where,
                          "TensorRT plugin node: the build needs the plugin library libspp_plugin.so")
    elif n.domain == SPP_DOMAIN and op == WINDOW_OP:
        yield _lint_window_node(n, name)
        if len(n.input) > 1 and ctx.types.get(n.input[1]) == TP.FLOAT16:
            yield Finding("error", name, where, "FP16 windows: the window plugin takes FP32 windows "
                                                "only (FP16 spacing moves projected cells)")
    else:
        yield Finding("warning", name, where, f"custom-domain op: TensorRT needs a plugin registered as {op!r}")


def _lint_inputs(n: onnx.NodeProto, name: str, types, ctx: _Context) -> Iterable[Finding]:
    """The data input's type against the op's supported types; inputs that must be initializers."""
    op = n.op_type
    k = _DATA_INPUT.get(op, 0)
    if len(n.input) > k and n.input[k]:
        t = ctx.types.get(n.input[k], 0)
        if t == TP.DOUBLE:
            yield Finding("warning", name, op, "DOUBLE input: TensorRT casts it to FLOAT (limited support)")
        elif t and t not in types:
            allowed = ", ".join(sorted(_type_name(x) for x in types))
            yield Finding("error", name, op,
                          f"input {n.input[k]!r} has type {_type_name(t)}; TensorRT supports {allowed}")
    for idx, what in _CONST_INPUTS.get(op, []):
        if len(n.input) > idx and n.input[idx] and n.input[idx] not in ctx.consts:
            yield Finding("error", name, op, f"`{what}` (input {n.input[idx]!r}) must be an initializer")


def _lint_pool(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    op = n.op_type
    ks = _attr(n, "kernel_shape", [])
    if op != "LpPool" and len(ks) not in (2, 3):
        yield Finding("error", name, op, f"only 2D or 3D pooling is supported (kernel_shape {list(ks)})")
    dil = _attr(n, "dilations")
    if dil and any(d != 1 for d in dil):
        yield Finding("error", name, op, f"`dilations` must be empty or all ones, got {list(dil)}")
    if op == "MaxPool" and len(n.output) > 1 and n.output[1]:
        yield Finding("error", name, op, "the `Indices` output is not supported")


def _lint_topk(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    if _attr(n, "sorted", 1) != 1:
        yield Finding("error", name, n.op_type, "`sorted` must be 1")
    kt = ctx.consts.get(n.input[1]) if len(n.input) > 1 else None
    if kt is not None:
        kv = int(onnx.numpy_helper.to_array(kt).reshape(-1)[0])
        if kv >= 3840:
            yield Finding("error", name, n.op_type, f"`K` must be less than 3840, got {kv}")


def _lint_scatter_nd(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    if _s(_attr(n, "reduction", "none")) != "none":
        yield Finding("error", name, n.op_type, "`reduction` is not supported")


def _lint_resize(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    op = n.op_type
    ctm = _s(_attr(n, "coordinate_transformation_mode", "half_pixel"))
    mode = _s(_attr(n, "mode", "nearest"))
    nm = _s(_attr(n, "nearest_mode", "round_prefer_floor"))
    if ctm not in _RESIZE_COORD:
        yield Finding("error", name, op, f"coordinate_transformation_mode {ctm!r} is not supported")
    if mode not in ("nearest", "linear"):
        yield Finding("error", name, op, f"mode {mode!r} is not supported (nearest, linear)")
    if mode == "nearest" and nm not in _RESIZE_NEAREST:
        yield Finding("error", name, op, f"nearest_mode {nm!r} is not supported")
    if _attr(n, "antialias", 0):
        yield Finding("error", name, op, "antialiasing is not supported")
    if _s(_attr(n, "keep_aspect_ratio_policy", "stretch")) != "stretch":
        yield Finding("error", name, op, "only keep_aspect_ratio_policy 'stretch' is supported")


def _lint_constant(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    for bad in ("sparse_value", "value_string", "value_strings"):
        if _attr(n, bad) is not None:
            yield Finding("error", name, n.op_type, f"`{bad}` is not supported")


def _lint_lstm(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    if _attr(n, "input_forget", 0) != 0 or _attr(n, "layout", 0) != 0:
        yield Finding("error", name, n.op_type, "`input_forget` and `layout` must be 0")


def _lint_dropout(n: onnx.NodeProto, name: str, ctx: _Context) -> Iterable[Finding]:
    if len(n.input) > 2 and n.input[2] in ctx.consts:
        if bool(onnx.numpy_helper.to_array(ctx.consts[n.input[2]]).reshape(-1)[0]):
            yield Finding("error", name, n.op_type, "`training_mode` must evaluate to False")


# op -> its attribute rules from onnx-tensorrt's operator notes (If: its branches, linted as graphs)
_OP_CHECKS = {"MaxPool": _lint_pool, "AveragePool": _lint_pool, "LpPool": _lint_pool, "TopK": _lint_topk,
              "ScatterND": _lint_scatter_nd, "Resize": _lint_resize, "If": _lint_if,
              "Constant": _lint_constant, "LSTM": _lint_lstm, "Dropout": _lint_dropout}


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
