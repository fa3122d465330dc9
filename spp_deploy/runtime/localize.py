"""Where a file first disagrees with PyTorch: the first module, in execution order, whose output
differs beyond tolerance (``spp-deploy validate --localize``, and export's parity-failure message).

The exporter leaves on each node the module it came from (``pkg.torch.onnx.name_scopes``, kept
through the SPP passes by ``export.scopes``). Nodes without scopes (the SPP lowering's) take the
module of the nodes that consume them. Each module's region is the nodes inside it; the tensors
leaving the region are its outputs. A temporary copy of the file lists those tensors as graph
outputs (Polygraphy's ``--onnx-outputs mark all``, limited to module boundaries), any ONNX Runtime
backend runs it, forward hooks record the same modules' outputs in PyTorch, and the two are
compared module by module in the order PyTorch finished them (children before their parent).
"""

from __future__ import annotations

import ast
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..util.errors import UserError
from .compare import Comparison, compare_arrays

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
CLASSES_KEY = "pkg.torch.onnx.class_hierarchy"
FLOAT_TYPES = (1, 10, 11, 16)  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass
class ModuleDiff:
    """One module's output, PyTorch against the file."""

    module: str  # module path, e.g. "features.2"
    kind: str  # class name, e.g. "Conv2d"
    tensor: str  # the ONNX tensor compared
    comparison: Comparison
    ops: list[str] = field(default_factory=list)  # ONNX op types in the module's region

    def as_dict(self) -> dict:
        c = self.comparison
        return {"module": self.module, "kind": self.kind, "tensor": self.tensor, "passed": c.passed,
                "max_abs": _finite(c.max_abs), "max_rel": _finite(c.max_rel), "nan_mismatch": c.nan_mismatch,
                "ops": self.ops}


@dataclass
class Localization:
    """Every compared module in execution order, and the first that differs (None: none does)."""

    shape: tuple
    backend: str
    rtol: float
    atol: float
    rows: list[ModuleDiff] = field(default_factory=list)

    @property
    def first(self) -> ModuleDiff | None:
        return next((r for r in self.rows if not r.comparison.passed), None)

    def describe(self) -> str:
        """One line: the first differing module with its errors and ops, or that none differs."""
        shape = "x".join(map(str, self.shape))
        d = self.first
        if d is None:
            return (f"localize ({self.backend}, input {shape}): no module's output differs beyond tolerance "
                    f"({len(self.rows)} module(s) compared)")
        c = d.comparison
        before = self.rows.index(d)
        return (f"localize ({self.backend}, input {shape}): first differing module {d.module!r} ({d.kind}): "
                f"max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g}"
                f"{f', NaN mismatches {c.nan_mismatch}' if c.nan_mismatch else ''} (limits {self.atol:g} / "
                f"{self.rtol:g}); ONNX ops there: {', '.join(d.ops) or 'none'}; {before} module(s) before it agree")

    def as_dict(self) -> dict:
        first = self.first
        return {"shape": list(self.shape), "backend": self.backend, "rtol": self.rtol, "atol": self.atol,
                "first": first.module if first else None, "modules": [r.as_dict() for r in self.rows]}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _scopes(node) -> list[str] | None:
    """The module paths a node sits in, outermost first (the root and the op's own name dropped)."""
    for p in node.metadata_props:
        if p.key == SCOPES_KEY:
            try:
                names = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return None
            return [n for n in names[1:-1] if n]
    return None


def _common_prefix(lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for parts in zip(*lists):
        if any(p != parts[0] for p in parts):
            break
        out.append(parts[0])
    return out


def _reads(node) -> list[str]:
    """The tensors a node reads: its inputs and the outer tensors its subgraphs (If, Loop) use."""
    names = list(node.input)
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in g.node:
                names += _reads(inner)
    return names


def module_regions(model) -> dict[str, list]:
    """{module path: its nodes, in graph order}; unscoped nodes take their consumers' common module.

    Args:
        model: an ``onnx.ModelProto`` carrying the exporter's module scopes.

    Returns:
        Each module path's nodes, in graph order.
    """
    nodes = list(model.graph.node)
    scopes = [_scopes(n) for n in nodes]
    if not any(s for s in scopes):
        return {}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in _reads(n):
            consumers.setdefault(t, []).append(i)
    for i in reversed(range(len(nodes))):  # graph order is topological: consumers come later
        if scopes[i] is None:
            seen = [scopes[j] for t in nodes[i].output for j in consumers.get(t, []) if scopes[j] is not None]
            scopes[i] = _common_prefix(seen) if seen else []
    regions: dict[str, list] = {}
    for n, s in zip(nodes, scopes):
        for path in s:
            regions.setdefault(path, []).append(n)
    return regions


def _region_outputs(model, regions: dict[str, list], types: dict[str, int]) -> dict[str, list[str]]:
    """{module path: float tensors its region makes that nodes outside it (or the graph) read}."""
    graph_outputs = {o.name for o in model.graph.output}
    readers: dict[str, list] = {}
    for n in model.graph.node:
        for t in _reads(n):
            readers.setdefault(t, []).append(n)
    out = {}
    for path, nodes in regions.items():
        inside = {id(n) for n in nodes}
        leaving = [t for n in nodes for t in n.output
                   if t and types.get(t) in FLOAT_TYPES
                   and (t in graph_outputs or any(id(r) not in inside for r in readers.get(t, [])))]
        out[path] = leaving
    return out


def _kinds(regions: dict[str, list]) -> dict[str, str]:
    """{module path: class name}, from the class hierarchy the exporter recorded."""
    out = {}
    for path, nodes in regions.items():
        for n in nodes:
            for p in n.metadata_props:
                if p.key == CLASSES_KEY:
                    try:
                        classes = ast.literal_eval(p.value)
                    except (ValueError, SyntaxError):
                        continue
                    scopes = _scopes(n) or []
                    if path in scopes and scopes.index(path) + 1 < len(classes):
                        out[path] = classes[scopes.index(path) + 1].rpartition(".")[2]
                        break
            if path in out:
                break
        out.setdefault(path, "?")
    return out


def _ops(nodes: list) -> list[str]:
    seen: list[str] = []
    for n in nodes:
        if n.op_type not in seen:
            seen.append(n.op_type)
    return seen


def _tensor_types(model) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def _torch_outputs(model, x: np.ndarray, paths: set[str]) -> list[tuple[str, list]]:
    """[(module path, its output tensors as arrays)] in the order PyTorch finished the modules;
    a module called more than once is left out (which call the file's region is, is unknown)."""
    import torch
    from torch.utils._pytree import tree_leaves

    from ..sources.heads import export_mode

    order: list[tuple[str, list]] = []
    calls: dict[str, int] = {}

    def hook(path):
        def record(module, args, output):
            calls[path] = calls.get(path, 0) + 1
            if calls[path] == 1:
                # copies: a later in-place module (ReLU(inplace=True)) would change the recorded values
                leaves = [t.detach().to("cpu", torch.float32 if t.dtype == torch.bfloat16 else t.dtype,
                                        copy=True).numpy()
                          for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
                order.append((path, leaves))
        return record

    handles = [m.register_forward_hook(hook(p)) for p, m in model.named_modules() if p in paths]
    try:
        with torch.no_grad(), export_mode(model):
            model(torch.from_numpy(np.ascontiguousarray(x)))
    finally:
        for h in handles:
            h.remove()
    return [(p, leaves) for p, leaves in order if calls[p] == 1]


def localize(model, onnx_path: str | os.PathLike, x: np.ndarray, *, backend: str = "ort-cpu", rtol: float = 1e-5,
             atol: float = 0.0, plugin: str | os.PathLike | None = None, threads: int | None = None,
             engine: str | os.PathLike | None = None) -> Localization:
    """Compare every module's output of ``model`` with the file's tensor for it, on input ``x``.

    ``backend``: an ONNX Runtime backend (``ort-cpu``, ``ort-cuda``, ``ort-trt``), or ``trt``: a
    debug engine built from ``onnx_path`` with the same tensors marked as network outputs (with
    ``engine``'s precision and plugin library when given). The file must carry the exporter's
    module scopes (every file ``export_onnx`` writes does).

    Args:
        model: the PyTorch model the file was exported from.
        onnx_path: the exported file.
        x: one input array (the shape that failed).
        backend: which backend runs the file.
        rtol: relative tolerance per module output.
        atol: absolute tolerance per module output.
        plugin: the SPP plugin library (``ort-trt``, ``trt``).
        threads: intra-op threads of the backend.
        engine: the engine being checked (``trt``): its precision and plugin library.

    Returns:
        Every module's comparison in execution order and the first that differs (None: none).

    Raises:
        UserError: not an ONNX Runtime or ``trt`` backend, or the file has no module scopes.
    """
    import onnx

    if not (backend.startswith("ort-") or backend == "trt"):
        raise UserError(f"localizing runs on ONNX Runtime backends (ort-cpu, ort-cuda, ort-trt) or trt, not {backend}",
                        option="backend")
    proto = onnx.load(os.fspath(onnx_path))
    regions = module_regions(proto)
    if not regions:
        raise UserError(f"{onnx_path} records no PyTorch module scopes on its nodes (files exported by this "
                        "version of spp_deploy.export_onnx do): cannot map modules to tensors; re-export it",
                        option="onnx")
    types = _tensor_types(proto)
    leaving = _region_outputs(proto, regions, types)
    marked = sorted({t for ts in leaving.values() for t in ts} - {o.name for o in proto.graph.output})
    if backend == "trt":
        from .trt.marked import run_marked

        got = run_marked(onnx_path, x, marked, engine=engine, plugin=plugin)
    else:
        got = _run_ort(proto, marked, types, x, backend, plugin, threads)
    kinds = _kinds(regions)
    result = Localization(tuple(x.shape), backend, rtol, atol)
    for path, leaves in _torch_outputs(model, x, set(regions)):
        tensors = leaving.get(path, [])
        pairs = _pair(tensors, leaves, got)
        for name, ref in pairs:
            cmp = compare_arrays(got[name].astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol)
            result.rows.append(ModuleDiff(path, kinds.get(path, "?"), name, cmp, _ops(regions[path])))
    return result


def _run_ort(proto, marked: list[str], types: dict[str, int], x: np.ndarray, backend: str,
             plugin: str | os.PathLike | None, threads: int | None) -> dict[str, np.ndarray]:
    """A temporary copy of the file with ``marked`` as extra graph outputs, run once on ``backend``."""
    import onnx

    from .backends import make_runner

    for t in marked:
        proto.graph.output.append(onnx.helper.make_tensor_value_info(t, types[t], None))
    with tempfile.TemporaryDirectory(prefix="spp-localize-") as tmp:
        copy = Path(tmp) / "marked.onnx"
        onnx.save_model(proto, copy)
        with make_runner(backend, onnx=copy, plugin=plugin, threads=threads) as runner:
            (in_name, (in_type, _)), = runner.input_specs().items()
            dtype = np.float16 if "float16" in str(in_type) else np.float32
            return runner.infer({in_name: x.astype(dtype)})


def _pair(tensors: list[str], leaves: list, got: dict) -> list[tuple[str, np.ndarray]]:
    """Match a module's ONNX output tensors with its PyTorch output arrays by shape, one to one;
    nothing where that is ambiguous."""
    pairs = []
    free = [t for t in tensors if t in got]
    for ref in leaves:
        same = [t for t in free if got[t].shape == ref.shape]
        if len(same) != 1 or sum(r.shape == ref.shape for r in leaves) != 1:
            continue
        pairs.append((same[0], ref))
        free.remove(same[0])
    return pairs


def parity_failure_note(model, onnx_path: str | os.PathLike, shape, rtol: float, atol: float,
                        seed: int = 0) -> str | None:
    """``localize`` at a parity failure's input shape, as one line for export's message; None when
    it cannot say (no shape, no scopes, or localizing itself fails: the parity error stands alone).

    Args:
        model: the PyTorch model being exported.
        onnx_path: the file that failed the parity check.
        shape: the input shape that failed, or None.
        rtol: the parity check's relative tolerance.
        atol: the parity check's absolute tolerance.
        seed: seeds the random input.

    Returns:
        One line naming the first differing module, or None.
    """
    if shape is None:
        return None
    x = np.random.default_rng(seed).standard_normal(tuple(shape), dtype=np.float32)
    try:
        return localize(model, onnx_path, x, rtol=rtol, atol=atol).describe()
    except Exception:  # a note on the error being reported must never replace it
        return None
