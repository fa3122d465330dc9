"""Options as objects: what ``export_onnx``, ``build_engine`` and ``validate`` take as keywords,
as frozen dataclasses with one documented field each (as torch_tensorrt's ``CompilationSettings``),
so that a caller (or the command line) builds the options once and passes them around.

The functions keep every keyword: ``takes_options`` lets a keyword compose with an options
object (the keyword fills a field the object leaves at its default); the same field given both
ways is one ``UserError``. Light: no torch, no onnx at import.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .util.constants import DEFAULT_OPSET, DEFAULT_PRECISION, DEFAULT_SPP_IMPL, DYNAMIC_AXES
from .util.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def _all_routes() -> tuple[str, ...]:
    from .export.trace import ROUTES  # imports torch: only when an ExportOptions is made

    return tuple(ROUTES)


@dataclass(frozen=True)
class ExportOptions:
    """How ``export_onnx`` writes a file (the arguments besides the model, example and path).
    Values take the command line's forms too (``dynamic="batch"``, ``opset="20"``,
    ``sizes="64x64,2x131x517"``) and are made canonical when the object is made."""

    dynamic: Sequence[str] = DYNAMIC_AXES
    """Axes left dynamic: any of batch, height, width ('batch,height' or 'none' as text)."""
    opset: int = DEFAULT_OPSET
    """ONNX opset of the file (MIN_OPSET..MAX_OPSET in ``constants``)."""
    spp_impl: str = DEFAULT_SPP_IMPL
    """'standard': SPP as standard ONNX ops; 'plugin': one TensorRT plugin node per layer."""
    check_parity: bool = True
    """Compare ONNX Runtime CPU with PyTorch before the file appears (False: write it unchecked)."""
    sizes: Sequence[tuple[int, int, int]] | None = None
    """Parity sizes as (B, H, W) or (H, W); None: an automatic sweep of 8+ sizes."""
    progress: Callable[[str], None] | None = None
    """Called with each parity step's text (a spinner, a log); None: silent."""
    recognize: bool = True
    """Replace recognised SPP layers by the canonical op while tracing (False: export as is)."""
    sppf: bool = True
    """Rewrite ultralytics SPP to the bit-identical SPPF."""
    spp_layers: Mapping[str, object] | Sequence[str] | None = None
    """Declared SPP layers: {module path: SppConfig or 'levels:4,2,1;rule=RULE'} or ['PATH=levels:...']."""
    precision: str = DEFAULT_PRECISION
    """'fp32', or 'fp16': a half model checked with fp16 tolerances (for TensorRT 11)."""
    tabulate_limit: int | None = None
    """Largest H, W a probed (tabulated) layer is exact for; 0: no tabulation; None: the default (2048)."""
    force: bool = False
    """Replace an existing output file."""
    routes: Sequence[str] = field(default_factory=_all_routes)
    """Exporters to try, in order ('dynamo', 'torchscript'); the first whose file passes is kept."""

    def __post_init__(self) -> None:
        from .util import arguments

        canonical = {"dynamic": tuple(arguments.parse_dynamic(self.dynamic)),
                     "opset": arguments.opset_number(self.opset),
                     "sizes": _tuple_or_none(arguments.parity_sizes(self.sizes)),
                     "tabulate_limit": arguments.tabulate_limit(self.tabulate_limit), "routes": tuple(self.routes)}
        for name, value in canonical.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class BuildOptions:
    """How ``build_engine`` builds a TensorRT engine (the arguments besides the ONNX file and output)."""

    min_shape: str | None = None
    """Smallest input shape of the optimisation profile, trtexec syntax ('input:1x3x64x64')."""
    opt_shape: str | None = None
    """The shape TensorRT tunes for, trtexec syntax."""
    max_shape: str | None = None
    """Largest input shape of the profile, trtexec syntax."""
    fp16: bool = False
    """Half precision (TensorRT 10 with an fp32 file: the FP16 flag; an fp16 file is built strongly typed)."""
    plugin: str | os.PathLike | None = None
    """libspp_plugin.so for a plugin-mode file; None: found as the runners find it."""
    timing_cache: str | os.PathLike | None = None
    """Timing cache file, read when present and written after the build."""
    workspace_gib: float | None = None
    """Workspace memory pool limit in GiB; None: TensorRT's default."""
    use_cache: bool = True
    """Take the engine from, and put it into, the engine cache."""


@dataclass(frozen=True)
class ValidateOptions:
    """How ``validate`` compares a file or engine with the model (the arguments besides the model,
    the files and the real inputs)."""

    backends: Sequence[str] | None = None
    """Backends to compare with the reference; None: ort-cpu for a file, trt for an engine."""
    sizes: Sequence[tuple[int, ...]] = ((64, 64), (131, 517), (2, 224, 224))
    """Random inputs: (H, W) at each ``batch``, or (B, H, W)."""
    batch: Sequence[int] = (1,)
    """Batch sizes for the (H, W) sizes."""
    channels: int | None = None
    """Input channels; None: the first Conv2d's."""
    rtol: float | Mapping[str, float] | None = None
    """Tolerance relative to the reference's largest magnitude, or {output name: rtol}; None: per precision."""
    atol: float | Mapping[str, float] | None = None
    """Absolute tolerance, or {output name: atol}; None: per precision."""
    seed: int = 0
    """Seed of the random inputs."""
    reference: str = "torch"
    """The reference backend: 'torch', or 'torch-fp64' (float64)."""
    plugin: str | os.PathLike | None = None
    """libspp_plugin.so for plugin-mode files and engines."""


def _tuple_or_none(value: Sequence | None) -> tuple | None:
    return None if value is None else tuple(value)


def field_names(cls: type) -> tuple[str, ...]:
    """The option names an options class holds, in order."""
    return tuple(f.name for f in dataclasses.fields(cls))


def merge(cls: type, options: Any, given: Mapping[str, Any], where: str, applies: Sequence[str] | None = None):
    """``options`` (an instance of ``cls`` or None) with the keywords ``given`` filled in: one
    ``UserError`` for the wrong type, a field given both ways, or a field ``where`` does not use."""
    if options is None:
        return cls(**given)
    if not isinstance(options, cls):
        raise UserError(f"expected {cls.__name__} or None, got {type(options).__name__}", option="options")
    defaults = cls()
    for name in field_names(cls):
        set_here = getattr(options, name) != getattr(defaults, name)
        if set_here and name in given:
            value = getattr(options, name)
            raise UserError(f"given both as a keyword and in options ({cls.__name__}.{name}={value!r}): give it once",
                            option=name)
        if set_here and applies is not None and name not in applies:
            raise UserError(f"{cls.__name__}.{name} does not apply to {where} (it uses {', '.join(applies)})",
                            option="options")
    return dataclasses.replace(options, **given)


def takes_options(cls: type, applies: Sequence[str] | None = None) -> Callable[[F], F]:
    """Decorate a function whose keywords include ``cls``'s fields (or ``applies``, the ones it
    uses) and an ``options`` parameter: ``options=cls(...)`` gives those keywords at once. Without
    ``options`` the call is passed on untouched."""
    names = tuple(applies) if applies is not None else field_names(cls)

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            options = bound.arguments.get("options")
            if options is None:
                return fn(*args, **kwargs)
            given = {k: bound.arguments[k] for k in names if k in bound.arguments}
            merged = merge(cls, options, given, fn.__name__, names if applies is not None else None)
            bound.arguments["options"] = None
            bound.arguments.update({k: getattr(merged, k) for k in names})
            return fn(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
