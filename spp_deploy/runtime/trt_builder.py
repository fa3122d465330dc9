"""TensorRT engine builder: trtexec-style shape profiles, plugin-mode preparation, an engine cache.

Pure helpers (shape parsing, profile checks, cache keys, metadata, the precision plan) need no
TensorRT; ``build_engine`` imports it lazily. Supports TensorRT 10.x (fp16 via ``BuilderFlag.FP16``
on weakly typed networks) and 11.x (always strongly typed: fp16 comes from an fp16 ONNX written by
``spp-deploy export --precision fp16``). An fp16 ONNX file is built strongly typed on 10.x too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx

from ..contract import EDGE_F32_MARK, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION, plugin_nodes, strip_functions
from ..errors import UserError, first_line
from .trt_common import gpu_identity, import_tensorrt, init_trt_plugins, shared_logger, version_major

PRECISIONS = ("fp32", "fp16")
META_SUFFIX = ".json"
CACHE_ENV = "SPP_DEPLOY_ENGINE_CACHE"


# ---- shapes --------------------------------------------------------------------------------------


def parse_shape_spec(text: str, flag: str = "shape") -> dict[str, tuple[int, ...]]:
    """trtexec syntax: ``name:1x3x64x64[,other:2x8]`` -> {name: dims}. Names may contain ':'
    (the last ':' splits); dims are positive integers joined by 'x'."""
    if not text or not text.strip():
        raise UserError(f"{flag}: empty shape spec (expected name:1x3x64x64)")
    out: dict[str, tuple[int, ...]] = {}
    for item in text.split(","):
        item = item.strip()
        name, sep, dims = item.rpartition(":")
        name = name.strip().strip("'\"")
        if not sep or not name:
            raise UserError(f"{flag}: bad shape {item!r}: expected name:dims, e.g. input:1x3x224x224")
        if not re.fullmatch(r"\d+(x\d+)*", dims.strip()):
            raise UserError(f"{flag}: bad dims {dims!r} for {name!r}: expected positive integers joined by 'x'")
        shape = tuple(int(d) for d in dims.strip().split("x"))
        if any(d < 1 for d in shape):
            raise UserError(f"{flag}: every dimension of {name!r} must be >= 1, got {dims}")
        if name in out:
            raise UserError(f"{flag}: input {name!r} given twice")
        out[name] = shape
    return out


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


@dataclass
class Profile:
    """One optimization profile: input name -> (min, opt, max)."""

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

    def as_json(self) -> dict:
        return {n: [list(a), list(b), list(c)] for n, (a, b, c) in sorted(self.shapes.items())}


def onnx_inputs(model: onnx.ModelProto) -> dict[str, tuple]:
    """Graph inputs (not initializers) -> dims (int, or the dim_param string / None)."""
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in vi.type.tensor_type.shape.dim)
        out[vi.name] = dims
    return out


def make_profile(model: onnx.ModelProto, min_s: str | None, opt_s: str | None, max_s: str | None) -> Profile:
    """Profile from min/opt/max shape specs (trtexec syntax), checked against the ONNX inputs.

    Static inputs may be omitted (their shape is used); dynamic ones need all three (or opt only,
    giving a fixed profile). Errors name the input and the dimension, not the CLI's flags."""
    inputs = onnx_inputs(model)
    given = {k: (parse_shape_spec(v, f"{k} shape") if v else {}) for k, v in (("min", min_s), ("opt", opt_s), ("max", max_s))}
    for kind, spec in given.items():
        for name in spec:
            if name not in inputs:
                raise UserError(f"the {kind} shape names input {name!r}, but the model's inputs are: {', '.join(inputs)}")
    shapes = {}
    for name, dims in inputs.items():
        mn, op, mx = (given[k].get(name) for k in ("min", "opt", "max"))
        if mn is None and op is None and mx is None:
            if all(isinstance(d, int) and d > 0 for d in dims):
                s = tuple(dims)
                shapes[name] = (s, s, s)
                continue
            raise UserError(f"input {name!r} has dynamic dims {fmt_dims(dims)}: give min/opt/max shapes {name}:...")
        if op is not None and mn is None and mx is None:
            mn = mx = op
        if None in (mn, op, mx):
            op = op or mn or mx
            if mn is None or mx is None:
                raise UserError(f"input {name!r}: give both a min and a max shape (and an opt shape)")
        for label, s in (("min", mn), ("opt", op), ("max", mx)):
            if len(s) != len(dims):
                raise UserError(f"{label} shape {name}:{fmt_shape(s)} has rank {len(s)}, the model's input has rank {len(dims)} ({fmt_dims(dims)})")
            for i, (v, d) in enumerate(zip(s, dims)):
                if isinstance(d, int) and d > 0 and v != d:
                    raise UserError(f"{label} shape {name}:{fmt_shape(s)}: dim {i} is fixed to {d} in the model")
        for i in range(len(dims)):
            if not mn[i] <= op[i] <= mx[i]:
                raise UserError(f"input {name!r} dim {i}: need min <= opt <= max, got {mn[i]} / {op[i]} / {mx[i]}")
        shapes[name] = (tuple(mn), tuple(op), tuple(mx))
    return Profile(shapes)


def fmt_dims(dims: Sequence) -> str:
    return "x".join(str(d) if d not in (None, "") else "?" for d in dims)


def shape_outside_profile(name: str, shape: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> str | None:
    """Why ``shape`` cannot run on a profile [lo, hi] (None if it can)."""
    if len(shape) != len(lo):
        return f"input {name!r} has rank {len(shape)}, the engine expects rank {len(lo)}"
    for i, (v, a, b) in enumerate(zip(shape, lo, hi)):
        if not a <= v <= b:
            return (f"input {name!r} shape {fmt_shape(shape)} is outside the engine's profile "
                    f"[{fmt_shape(lo)} .. {fmt_shape(hi)}] (dim {i}: {v} not in {a}..{b}); rebuild with wider min/max shapes")
    return None


# ---- plugin-mode files ---------------------------------------------------------------------------


def spp_plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes that become plugin layers: ``spp_deploy.SpatialPyramidPool`` and
    ``spp_deploy.WindowSpatialPyramidPool`` (both plugins of libspp_plugin.so)."""
    return plugin_nodes(model)


def is_plugin_mode(model: onnx.ModelProto) -> bool:
    return bool(spp_plugin_nodes(model))


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
    found = None
    try:
        from ..native.library import find_plugin_library

        found = find_plugin_library()
    except UserError:
        raise
    except Exception:  # native.library absent or broken: behave as "not found"
        found = None
    if found is None:
        n = len(spp_plugin_nodes(model))
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


def count_plugin_layers(trt: Any, network: Any) -> int | None:
    """Plugin layers (IPluginV3 or V2) in a parsed network; None if the API cannot tell."""
    kinds = [getattr(getattr(trt, "LayerType", None), k, None) for k in ("PLUGIN_V3", "PLUGIN_V2", "PLUGIN")]
    kinds = [k for k in kinds if k is not None]
    if not kinds or not hasattr(network, "num_layers"):
        return None
    return sum(1 for i in range(network.num_layers) if network.get_layer(i).type in kinds)


# ---- precision -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecisionPlan:
    """How a build treats precision, decided before TensorRT is asked anything."""

    strongly_typed: bool  # the network is created strongly typed (types come from the ONNX file)
    fp16_flag: bool  # BuilderFlag.FP16 is set (weakly typed TensorRT 10 with --fp16 only)
    precision: str  # "fp16" or "fp32": what the metadata records
    note: str | None = None  # said to the user (e.g. --fp16 ignored for an fp16 file)


def plan_precision(trt_major: int, has_fp16_flag: bool, onnx_fp16: bool, fp16: bool) -> PrecisionPlan:
    """TensorRT 11 (or a 10.x without ``BuilderFlag.FP16``) is always strongly typed; an fp16 ONNX
    file is built strongly typed on 10.x too. A strongly typed network must not get the FP16 flag
    (TensorRT rejects it), so ``--fp16`` is ignored for an fp16 file and refused for an fp32 file
    where only strong typing exists."""
    always_strong = trt_major >= 11 or not has_fp16_flag
    strong = always_strong or onnx_fp16
    if fp16 and strong and not onnx_fp16:
        raise UserError(
            f"TensorRT {trt_major}.x builds strongly typed networks: fp16 needs an fp16 ONNX file "
            "(export the model in fp16 precision)"
        )
    note = ("--fp16 ignored: the ONNX file is fp16, so the network is strongly typed and its types "
            "come from the file" if fp16 and strong else None)
    return PrecisionPlan(strong, fp16 and not strong, "fp16" if (fp16 or onnx_fp16) else "fp32", note)


def network_is_strongly_typed(trt: Any, network: Any, requested: bool) -> bool:
    """The network's own STRONGLY_TYPED flag where the API exposes it (TensorRT 11 networks are
    strongly typed whatever was asked), else what was requested."""
    st = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
    get_flag = getattr(network, "get_flag", None)
    if st is not None and callable(get_flag):
        try:
            return bool(get_flag(st))
        except Exception:
            pass
    return requested


def pin_edge_layers_fp32(trt: Any, network: Any, config: Any) -> int:
    """Weakly typed fp16 builds (TensorRT 10): keep the `rounded` rule's float32 bin-edge layers
    (Cast/Div/Mul/Add/Round, named with ``EDGE_F32_MARK`` by the lowering; the parser names layers
    after their ONNX nodes) in fp32 with precision constraints. Returns how many were pinned."""

    f32 = getattr(trt, "float32", None)
    obey = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None)
    if f32 is None or obey is None or not hasattr(network, "num_layers"):
        return 0
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if EDGE_F32_MARK not in str(getattr(layer, "name", "")):
            continue
        layer.precision = f32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype == f32:
                layer.set_output_type(j, f32)
        pinned += 1
    if pinned:
        config.set_flag(obey)
    return pinned


# ---- cache ---------------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_cache_key(onnx_bytes: bytes, trt_version: str, gpu_name: str, compute_capability: str,
                     precision: str, profiles: Sequence[Profile], plugin_sha256: str | None,
                     extra: Mapping[str, Any] | None = None) -> str:
    """sha256 over everything that makes an engine different: ONNX bytes, TensorRT version,
    GPU name and compute capability, precision, profiles, plugin library (its content hash)."""
    desc = {
        "onnx": hashlib.sha256(onnx_bytes).hexdigest(),
        "tensorrt": str(trt_version),
        "gpu": str(gpu_name),
        "cc": str(compute_capability),
        "precision": precision,
        "profiles": [p.as_json() for p in profiles],
        "plugin": plugin_sha256,
        "extra": dict(sorted((extra or {}).items())),
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spp-deploy" / "engines"


# ---- engine metadata (sidecar) -------------------------------------------------------------------


@dataclass
class EngineMeta:
    tensorrt: str
    gpu: str
    compute_capability: str
    precision: str
    profiles: list
    onnx_sha256: str
    plugin: str | None = None
    plugin_mode: bool = False
    cache_key: str = ""
    created: float = field(default_factory=time.time)

    def save(self, engine_path: Path) -> None:
        Path(str(engine_path) + META_SUFFIX).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, engine_path: Path) -> "EngineMeta | None":
        p = Path(str(engine_path) + META_SUFFIX)
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_text())
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except (ValueError, TypeError, KeyError):
            return None


def engine_mismatch(meta: EngineMeta | None, trt_version: str, gpu: Mapping[str, str]) -> str | None:
    """Why an engine described by ``meta`` cannot run here (TensorRT engines are tied to the exact
    TensorRT version and, without hardware compatibility, to the GPU's compute capability)."""
    if meta is None:
        return None
    if meta.tensorrt != trt_version:
        return f"engine was built with TensorRT {meta.tensorrt}, this is TensorRT {trt_version}: rebuild it with `spp-deploy build`"
    if meta.compute_capability != gpu.get("compute_capability"):
        return (f"engine was built for {meta.gpu} (compute capability {meta.compute_capability}), this GPU is "
                f"{gpu.get('name')} ({gpu.get('compute_capability')}): rebuild it on this machine")
    return None


# ---- building ------------------------------------------------------------------------------------


def format_parser_errors(parser: Any, limit: int = 3) -> str:
    """'node NAME (OP): reason' for the parser's first errors (TensorRT 10 IParserError API)."""
    parts = []
    n = int(getattr(parser, "num_errors", 0))
    for i in range(min(n, limit)):
        err = parser.get_error(i)
        desc = str(_call(err, "desc") or "").strip() or str(err).strip() or "no description"
        node_name = _call(err, "node_name")
        op = _call(err, "node_operator")
        node_idx = _call(err, "node")
        where = f"node {node_name or '#' + str(node_idx)}" if (node_name or (node_idx is not None and node_idx >= 0)) else "model"
        parts.append(f"{where}{f' ({op})' if op else ''}: {desc.splitlines()[0]}")
    more = f" (+{n - limit} more)" if n > limit else ""
    return "; ".join(parts) + more if parts else "unknown parser error"


def _call(obj: Any, name: str):
    f = getattr(obj, name, None)
    try:
        return f() if callable(f) else f
    except Exception:
        return None


@dataclass
class BuildResult:
    path: Path
    cache_hit: bool
    cache_key: str
    seconds: float
    meta: EngineMeta
    note: str | None = None  # e.g. "--fp16 ignored" (the build command prints it)


def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    profile: Profile | None = None,
    *,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    fp16: bool = False,
    plugin: str | os.PathLike | None = None,
    timing_cache: str | os.PathLike | None = None,
    workspace_gib: float | None = None,
    use_cache: bool = True,
    trt: Any = None,
) -> BuildResult:
    """Build (or fetch from the cache) a serialized engine for ``onnx_path``; writes ``output`` and
    ``output.json`` (metadata checked when the engine is loaded). User-input problems are reported
    before TensorRT is imported."""
    from ..fileio import atomic_write

    model, raw = load_onnx(onnx_path)
    out = Path(output)
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    if profile is None:
        profile = make_profile(model, min_shape, opt_shape, max_shape)
    plugin_path = resolve_plugin(model, plugin)
    onnx_fp16 = any(vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for vi in model.graph.input)
    if workspace_gib is not None and workspace_gib <= 0:
        raise UserError(f"the workspace must be > 0 GiB, got {workspace_gib}")

    trt = trt or import_tensorrt("spp-deploy build")
    version = str(trt.__version__)
    plan = plan_precision(version_major(version), hasattr(trt.BuilderFlag, "FP16"), onnx_fp16, fp16)
    gpu = gpu_identity()
    plugin_sha = file_sha256(plugin_path) if plugin_path else None
    key = engine_cache_key(raw, version, gpu["name"], gpu["compute_capability"], plan.precision, [profile], plugin_sha,
                           {"workspace": workspace_gib, "strongly_typed": plan.strongly_typed})
    meta = EngineMeta(version, gpu["name"], gpu["compute_capability"], plan.precision, [profile.as_json()],
                      hashlib.sha256(raw).hexdigest(), str(plugin_path.resolve()) if plugin_path else None,
                      is_plugin_mode(model), key)
    t0 = time.perf_counter()
    cached = cache_dir() / f"{key}.engine"
    if use_cache and cached.is_file():
        atomic_write(out, lambda tmp: shutil.copyfile(cached, tmp))
        meta.save(out)
        return BuildResult(out, True, key, time.perf_counter() - t0, meta, plan.note)

    logger = init_trt_plugins(trt)  # one process-wide logger: TensorRT keeps its raw pointer
    if plugin_path:
        load_plugin(plugin_path, trt)
    builder = trt.Builder(logger)
    flags = 0
    st = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if plan.strongly_typed and st is not None:
        flags |= 1 << int(st)
    network = builder.create_network(flags)
    strongly_typed = network_is_strongly_typed(trt, network, plan.strongly_typed)
    parser = trt.OnnxParser(network, logger)
    to_parse = prepare_for_parser(model)
    data = to_parse.SerializeToString() if to_parse is not model else raw
    if not parser.parse(data, str(Path(onnx_path).resolve())):
        raise UserError(f"TensorRT cannot parse {onnx_path}: {format_parser_errors(parser)}")
    n_spp = len(spp_plugin_nodes(model))
    if n_spp:
        got = count_plugin_layers(trt, network)
        if got is not None and got != n_spp:
            ops = " / ".join(sorted({n.op_type for n in spp_plugin_nodes(model)}))
            raise UserError(f"TensorRT parsed {onnx_path} into {got} plugin layer(s) for {n_spp} {ops} "
                            "node(s): the SPP plugin was not used for every node (is the library the right one?)")

    config = builder.create_builder_config()
    if workspace_gib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if plan.fp16_flag and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
        pin_edge_layers_fp32(trt, network, config)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # exact fp32: no TF32 tensor-core math (on by default, 10.x and 11.x)
    opt_profile = builder.create_optimization_profile()
    for name, (mn, op, mx) in profile.shapes.items():
        opt_profile.set_shape(name, mn, op, mx)
    config.add_optimization_profile(opt_profile)
    cache_obj = None
    if timing_cache is not None:
        tc = Path(timing_cache)
        cache_obj = config.create_timing_cache(tc.read_bytes() if tc.is_file() else b"")
        config.set_timing_cache(cache_obj, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"TensorRT engine build failed: {logger.last_error()}")
    blob = bytes(serialized)
    atomic_write(out, lambda tmp: tmp.write_bytes(blob))
    meta.save(out)
    if timing_cache is not None:
        Path(timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    if use_cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, cached)
        except OSError:
            pass  # the cache is an optimisation only
    return BuildResult(out, False, key, time.perf_counter() - t0, meta, plan.note)


def load_onnx(path: str | os.PathLike) -> tuple[onnx.ModelProto, bytes]:
    """(model, raw bytes); one-line ``UserError`` for a missing or corrupt file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"ONNX file not found: {p}")
    raw = p.read_bytes()
    try:
        model = onnx.load_model_from_string(raw)
    except Exception as e:
        raise UserError(f"{p} is not a valid ONNX file: {first_line(e)}") from None
    if not model.graph.node and not model.graph.input:
        raise UserError(f"{p} is not a valid ONNX file: empty graph")
    return model, raw
