"""Build (or fetch from the cache) a TensorRT engine from an ONNX file, trtexec-style.

The generic steps are Polygraphy's loaders (ONNX parse, ``CreateConfig``: profiles, fp16/TF32,
memory pools, timing cache, precision constraints; ``engine_bytes_from_network``); ours are steps
in that chain: SPP bodies stripped before the parse, the plugin library registered once, the SPP
plugin layers counted, fp32 edge pinning (a network post-processing step), the cache and metadata.

User-input problems (file, shapes, plugin library, workspace) are reported before TensorRT is
imported. Supports TensorRT 10.x (fp16 via ``BuilderFlag.FP16`` on weakly typed networks) and 11.x
(always strongly typed: fp16 comes from an fp16 ONNX written by ``spp-deploy export --precision
fp16``); see ``precision``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from ...util.errors import UserError, first_line
from ...options import BuildOptions, takes_options
from . import poly
from .cache import cache_dir, engine_cache_key, file_sha256
from .common import gpu_identity, import_tensorrt, version_major
from .metadata import EngineMeta
from .plugin_mode import check_plugin_layers, is_plugin_mode, load_plugin, prepare_for_parser, resolve_plugin
from .precision import network_is_strongly_typed, pin_edge_layers_fp32, plan_precision
from .profiles import Profile, make_profile

LOG = logging.getLogger(__name__)  # steps: the build command's progress, -v, --log-file


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


@takes_options(BuildOptions)
def build_engine(
    onnx_path: str | os.PathLike,
    output: str | os.PathLike,
    profile: Profile | None = None,
    *,
    options: BuildOptions | None = None,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    fp16: bool = False,
    plugin: str | os.PathLike | None = None,
    timing_cache: str | os.PathLike | None = None,
    workspace_gib: float | None = None,
    use_cache: bool = True,
    mark_outputs: Sequence[str] | None = None,
    trt: Any = None,
) -> BuildResult:
    """Build (or fetch from the cache) a serialized engine for ``onnx_path``; writes ``output`` and
    ``output.json`` (metadata checked when the engine is loaded). User-input problems are reported
    before TensorRT is imported, except that with no shapes given a missing TensorRT comes first.
    ``mark_outputs``: intermediate tensors also made network outputs (a debug engine for
    ``localize``; those the network lacks are left out; never cached). ``options``: a
    ``BuildOptions`` holding the keywords from ``min_shape`` to ``use_cache`` (each documented there)."""
    from ...util.fileio import atomic_write

    model, raw = load_onnx(onnx_path)
    out = Path(output)
    trt, profile, plugin_path = _checked_inputs(model, out, profile, min_shape, opt_shape, max_shape, plugin,
                                                workspace_gib, trt)
    version = str(trt.__version__)
    onnx_fp16 = any(vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for vi in model.graph.input)
    plan = plan_precision(version_major(version), hasattr(trt.BuilderFlag, "FP16"), onnx_fp16, fp16)
    key, meta = _cache_key_and_meta(model, raw, version, plan, profile, plugin_path, workspace_gib)
    t0 = time.perf_counter()
    if plugin_path:
        load_plugin(plugin_path, trt)  # ours: load_library, once (Polygraphy's LoadPlugins only dlopens)
    LOG.info("parsing %s (TensorRT %s)", onnx_path, version)
    parsed = _parse(trt, model, onnx_path, plan.strongly_typed)
    strongly_typed = network_is_strongly_typed(trt, parsed[1], plan.strongly_typed)
    check_plugin_layers(trt, parsed[1], model, str(onnx_path))  # a cached engine too: the file may not fit the library
    if mark_outputs is not None:
        use_cache = False  # a debug engine: its outputs are not the file's
        mark_network_outputs(trt, parsed, mark_outputs)
    cached = cache_dir() / f"{key}.engine"
    if use_cache and cached.is_file():
        atomic_write(out, lambda tmp: tmp.write_bytes(cached.read_bytes()))  # copyfile refuses a FIFO target
        meta.save(out)
        return BuildResult(out, True, key, time.perf_counter() - t0, meta, plan.note)
    tc = Path(timing_cache) if timing_cache is not None else None
    blob, timing = _build_serialized(trt, parsed, plan.fp16_flag and not strongly_typed, profile, tc, workspace_gib)
    atomic_write(out, lambda tmp: tmp.write_bytes(blob))
    meta.save(out)
    if timing is not None:
        atomic_write(tc, lambda tmp: tmp.write_bytes(timing))
    if use_cache:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, cached)
        except OSError:
            pass  # the cache is an optimisation only
    return BuildResult(out, False, key, time.perf_counter() - t0, meta, plan.note)


def _checked_inputs(model: onnx.ModelProto, out: Path, profile: Profile | None, min_shape: str | None,
                    opt_shape: str | None, max_shape: str | None, plugin: str | os.PathLike | None,
                    workspace_gib: float | None, trt: Any) -> tuple[Any, Profile, Path | None]:
    """(tensorrt module, profile, plugin library): the user's inputs checked before TensorRT is
    imported, except that with no shapes given a missing TensorRT comes first."""
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    if trt is None and profile is None and not (min_shape or opt_shape or max_shape):
        trt = import_tensorrt("spp-deploy build")  # without TensorRT, that is the news, not the shapes
    if profile is None:
        profile = make_profile(model, min_shape, opt_shape, max_shape)
    plugin_path = resolve_plugin(model, plugin)
    if workspace_gib is not None and workspace_gib <= 0:
        raise UserError(f"the workspace must be > 0 GiB, got {workspace_gib}")
    return trt or import_tensorrt("spp-deploy build"), profile, plugin_path


def _cache_key_and_meta(model: onnx.ModelProto, raw: bytes, version: str, plan: Any, profile: Profile,
                        plugin_path: Path | None, workspace_gib: float | None) -> tuple[str, EngineMeta]:
    """The engine cache key (file, TensorRT, GPU, precision, profile, plugin, build settings) and
    the metadata written beside the engine."""
    gpu = gpu_identity()
    plugin_sha = file_sha256(plugin_path) if plugin_path else None
    key = engine_cache_key(raw, version, gpu["name"], gpu["compute_capability"], plan.precision, [profile], plugin_sha,
                           {"workspace": workspace_gib, "strongly_typed": plan.strongly_typed})
    meta = EngineMeta(version, gpu["name"], gpu["compute_capability"], plan.precision, [profile.as_json()],
                      hashlib.sha256(raw).hexdigest(), str(plugin_path.resolve()) if plugin_path else None,
                      is_plugin_mode(model), key)
    return key, meta


def _build_serialized(trt: Any, parsed: tuple, fp16_flag: bool, profile: Profile, tc: Path | None,
                      workspace_gib: float | None) -> tuple[bytes, bytes | None]:
    """(engine bytes, timing cache bytes or None) through Polygraphy's ``CreateConfig`` and
    ``engine_bytes_from_network``, with fp32 edge pinning as a network post-processing step."""
    with poly.using(trt, "TensorRT engine build failed"):
        from polygraphy.backend.trt import CreateConfig, engine_bytes_from_network, postprocess_network

        pinned: list[int] = []
        if fp16_flag:  # a network post-processing step: the `rounded` edges stay fp32
            def pin(network: Any) -> None:
                pinned.append(pin_edge_layers_fp32(trt, network))

            postprocess_network(parsed, pin, name="spp-deploy: pin fp32 edge layers")
        # an open file, not the path: Polygraphy's path load/save leaves PATH.lock behind and writes in
        # place; the merged cache is written by the caller, whole or not at all
        with open(tc, "rb") if tc is not None and tc.is_file() else contextlib.nullcontext() as cache_in:
            config = CreateConfig(
                tf32=False, fp16=fp16_flag, profiles=[poly_profile(profile)],
                precision_constraints="obey" if any(pinned) else None,
                memory_pool_limits=({trt.MemoryPoolType.WORKSPACE: int(workspace_gib * (1 << 30))}
                                    if workspace_gib is not None else None),
                load_timing_cache=cache_in)(*parsed[:2])
        LOG.info("building the engine (TensorRT times its kernels: minutes for a large model)")
        blob = bytes(engine_bytes_from_network(parsed, config=config))
        timing = bytes(config.get_timing_cache().serialize()) if tc is not None else None
    return blob, timing


def mark_network_outputs(trt: Any, parsed: tuple, names: Sequence[str]) -> list[str]:
    """The network's own outputs, then those of ``names`` that are network tensors (the parser
    folds some away), marked through Polygraphy's ``ModifyNetworkOutputs`` (``--trt-outputs``);
    returns the tensors marked."""
    network = parsed[1]
    with poly.using(trt, "cannot mark the debug engine's outputs"):
        from polygraphy.backend.trt import ModifyNetworkOutputs
        from polygraphy.backend.trt import util as trt_util

        have = trt_util.get_all_tensors(network)
        outputs = [network.get_output(i).name for i in range(network.num_outputs)]
        outputs += [n for n in dict.fromkeys(names) if n in have and n not in outputs]
        ModifyNetworkOutputs(parsed, outputs=outputs)()
    return outputs


def poly_profile(profile: Profile) -> Any:
    """Our checked profile as Polygraphy's ``Profile`` (input -> min/opt/max)."""
    from polygraphy.backend.trt import Profile as PolyProfile

    out = PolyProfile()
    for name, (mn, op, mx) in profile.shapes.items():
        out.add(name, min=mn, opt=op, max=mx)
    return out


def _parse(trt: Any, model: onnx.ModelProto, onnx_path: str | os.PathLike, strong: bool) -> tuple[Any, Any, Any]:
    """(builder, network, parser) through Polygraphy's ONNX loaders: a plugin-mode file without its
    SPP function bodies as bytes, any other file from its path (external weights resolve)."""
    to_parse = prepare_for_parser(model)
    with poly.using(trt, f"TensorRT cannot parse {onnx_path}"):
        from polygraphy.backend.trt import network_from_onnx_bytes, network_from_onnx_path

        if to_parse is not model:
            return network_from_onnx_bytes(to_parse.SerializeToString(), strongly_typed=strong)
        return network_from_onnx_path(str(Path(onnx_path).resolve()), strongly_typed=strong)


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
