"""The functions behind ``validate``, ``bench``, ``build`` and ``triton``, for Python callers
(``spp_deploy.validate``, ``spp_deploy.benchmark``, ``spp_deploy.build_engine``,
``spp_deploy.triton_repository``, ``spp_deploy.localize``). The commands call these too, so
the command line and Python give the same results; mistakes are ``UserError`` naming these
functions' arguments.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .util.errors import UserError
from .options import ExportOptions, ValidateOptions, takes_options
from .runtime.backends import DEFAULT_BENCH_BACKENDS
from .runtime.localize import localize  # noqa: F401 (public here)
from .runtime.trt.build import build_engine  # noqa: F401 (public here: TensorRT is imported only when it builds)

DEFAULT_VALIDATE_SIZES = ValidateOptions.sizes  # the default sizes, declared once (ValidateOptions)


def input_channels(model) -> int:
    """The model's input channels: its first Conv2d's ``in_channels``."""
    import torch

    first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if first is None:
        raise UserError("cannot tell the model's input channels (it has no Conv2d): give them", option="channels")
    return first.in_channels


def default_backends(onnx, engine) -> list[str]:
    """ONNX Runtime CPU for a file, TensorRT for an engine."""
    return ["ort-cpu"] * (onnx is not None) + ["trt"] * (engine is not None)


def _tolerance(value: float | Mapping[str, float] | None, option: str) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, (int, float)) or not value >= 0:  # NaN too
        raise UserError(f"expected a number >= 0 or {{output name: number}}, got {value!r}", option=option)
    return {"*": float(value)}


@takes_options(ValidateOptions)
def validate(model, onnx: str | os.PathLike | None = None, *, engine: str | os.PathLike | None = None,
             options: ValidateOptions | None = None, backends: Sequence[str] | None = None,
             sizes: Sequence[tuple[int, ...]] = DEFAULT_VALIDATE_SIZES, batch: Sequence[int] = (1,),
             channels: int | None = None,
             rtol: float | Mapping[str, float] | None = None, atol: float | Mapping[str, float] | None = None,
             inputs: Sequence[np.ndarray] = (), seed: int = 0, reference: str = "torch",
             plugin: str | os.PathLike | None = None):
    """Compare ``onnx`` (and/or ``engine``) with ``model`` at ``sizes`` ((H, W) at each ``batch``,
    or (B, H, W)) on random data, and on ``inputs`` (BxCxHxW arrays) as given; returns
    ``spp_deploy.runtime.validate.Report`` (``.passed``, ``.records``, ``.as_dict()``). ``options``: a
    ``ValidateOptions`` holding the keywords from ``backends`` to ``plugin`` (besides ``inputs``)."""
    from .runtime.validate import run_validation

    backends = list(backends) if backends is not None else default_backends(onnx, engine)
    if not backends:
        raise UserError("nothing to validate: give an ONNX file or an engine", option="onnx")
    options = ValidateOptions(backends=backends, sizes=sizes, batch=batch, channels=channels, rtol=rtol, atol=atol,
                              seed=seed, reference=reference, plugin=plugin)
    images = [(f"inputs[{i}]", np.asarray(x, dtype=np.float32)) for i, x in enumerate(inputs)]
    cfg = validate_config(options, channels or input_channels(model), onnx, engine, images)
    return run_validation(model, cfg)


def validate_config(options: ValidateOptions, channels: int, onnx: str | os.PathLike | None = None,
                    engine: str | os.PathLike | None = None, images: Sequence[tuple[str, np.ndarray]] = (),
                    size_range: tuple[int, int] | None = None, samples: int = 0):
    """The ``run_validation`` config of ``options`` (resolved backends) for these files and real
    inputs (``images``: (label, array)); ``size_range``/``samples``: seeded random sizes besides
    ``options.sizes`` (the CLI's --size-range). The one place ``validate`` and the command build it."""
    from .runtime.validate import ValidateConfig, sweep_shapes

    hw = [(None, *s) if len(s) == 2 else tuple(s) for s in options.sizes]
    if any(len(s) != 3 for s in hw):
        raise UserError(f"sizes are (H, W) or (B, H, W), got {list(options.sizes)!r}", option="sizes")
    shapes = sweep_shapes(channels, hw, size_range, samples, list(options.batch), options.seed)
    return ValidateConfig(shapes=shapes, backends=list(options.backends), onnx=onnx, engine=engine,
                          plugin=options.plugin, rtol=_tolerance(options.rtol, "rtol"),
                          atol=_tolerance(options.atol, "atol"), seed=options.seed, reference=options.reference,
                          images=list(images))


def benchmark(model=None, onnx: str | os.PathLike | None = None, *, backends: Sequence[str] = DEFAULT_BENCH_BACKENDS,
              shapes: Sequence[tuple[int, int, int, int]] = ((1, 3, 224, 224),), iterations: int = 20,
              warmup: int = 3, threads: int | None = None, seed: int = 0, engine: str | os.PathLike | None = None,
              plugin: str | os.PathLike | None = None, inputs: Mapping[tuple, np.ndarray] | None = None,
              progress: bool = False, outputs: bool = False, export_options: ExportOptions | None = None):
    """Time each backend at each BxCxHxW shape (``inputs``: the data per shape, else random);
    ``model`` without ``onnx`` is exported to a temporary file for the ONNX Runtime and TensorRT
    backends. Returns ``spp_deploy.bench.core.BenchReport`` (``.records``, ``.as_dict()``; with
    ``outputs``, ``.outputs``: each backend's outputs of one more, untimed run per shape)."""
    from .bench import BenchConfig, run_bench

    if model is None and onnx is None:
        raise UserError("give the PyTorch model and/or an ONNX file", option="model")
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if not shapes or any(len(s) != 4 for s in shapes):
        raise UserError(f"shapes are BxCxHxW tuples, got {shapes!r}", option="shapes")
    config = BenchConfig(list(backends), shapes, warmup, 0.0, iterations, 0.0, threads, seed=seed,
                         engine=str(engine) if engine else None, plugin=str(plugin) if plugin else None,
                         inputs=dict(inputs) if inputs else None, keep_outputs=outputs)
    with tempfile.TemporaryDirectory(prefix="spp-bench-") as tmp:
        needs_file = any(b.startswith("ort-") or (b == "trt" and engine is None) for b in backends)
        if onnx is None and needs_file:
            import torch

            from .checked_export import export_onnx

            onnx = Path(tmp) / "model.onnx"
            options = dataclasses.replace(export_options or ExportOptions(), check_parity=False)
            export_onnx(model, torch.randn(1, *shapes[0][1:]), onnx, options)
        name = type(model).__name__ if model is not None else str(onnx)
        report = run_bench(config, model, Path(onnx) if onnx is not None else None, name, progress=progress,
                           workdir=Path(tmp))
    if onnx is not None and Path(onnx).parent == Path(tmp):
        report.onnx = None  # a temporary file: do not point at it
    return report


@dataclass
class TritonModel:
    """What ``triton_repository`` wrote: the repository, the model's files, its config message."""

    repository: Path
    written: object  # spp_deploy.triton.repository.Written: model_dir, files, readme
    config: object  # tritonclient's ModelConfig message
    io: object  # spp_deploy.triton.tensors.ModelIO
    max_batch: int


def triton_repository(repository: str | os.PathLike, name: str, *, onnx: str | os.PathLike | None = None,
                      engine: str | os.PathLike | None = None, plugin: str | os.PathLike | None = None,
                      max_batch: int | None = None, instances: int = 1, kind: str = "auto",
                      force: bool = False) -> TritonModel:
    """Write ``repository/name`` (``config.pbtxt``, ``1/model.onnx`` or ``1/model.plan``, the plugin
    library for a plugin-mode engine) and ``repository/README.md`` for Triton Inference Server."""
    from .triton.config import make_config, resolve_max_batch
    from .triton.repository import check_repository, write_model
    from .triton.schema import model_config_pb2
    from .triton.tensors import engine_io, onnx_io

    if (onnx is None) == (engine is None):
        raise UserError("give exactly one of onnx (served by ONNX Runtime) or engine (served by TensorRT)",
                        option="onnx")
    repo = check_repository(repository, name, force)  # before anything is read
    model_config_pb2()  # tritonclient missing: say so before reading the model
    for option, value in (("onnx", onnx), ("engine", engine), ("plugin", plugin)):
        if value is not None and not Path(value).is_file():
            raise UserError(f"file not found: {value}", option=option)
    io = onnx_io(onnx) if onnx is not None else engine_io(engine, plugin)
    max_batch = resolve_max_batch(io, max_batch)
    config = make_config(io, name, max_batch, instances, kind)
    return TritonModel(repo, write_model(repo, name, io, config, force), config, io, max_batch)
