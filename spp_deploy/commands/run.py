"""``spp-deploy run``: one input (image at native size, or .npy) on any backend; top-k, and .npy
out (.npz, one array per output name, for a model with several outputs)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..runtime.backends import BACKENDS, spec
from ..util.errors import UserError
from .args import (add_force_arg, add_interop_args, add_model_args, add_model_file_args, add_normalize_args,
                   add_output_arg, positive_int)
from .common import Interop, loaded_inputs, output_path, require_backends

def run(args) -> int:
    from ..util.inputs import load_input
    from ..runtime.backends import make_runner
    from ..runtime.base import _dtype_name

    backend = args.backend or ("trt" if args.engine else "ort-cpu" if args.onnx else "torch")
    attr = spec(backend).needs  # the registry: model, onnx or engine
    if not getattr(args, attr):
        raise UserError(f"backend {backend} needs --{attr}")
    if (args.input is None) == (args.load_inputs is None):
        raise UserError("give the input with --input (image or .npy) or --load-inputs (Polygraphy JSON), one of them")
    out = output_path(args, args.output, "output")
    io = Interop(args)
    feeds = [(None, load_input(args.input, args.mean, args.std))] if args.input else loaded_inputs(args.load_inputs)
    saved = None
    if args.load_outputs:
        from ..interop import read_outputs

        saved = read_outputs(args.load_outputs)[0]  # the first runner's, as polygraphy --load-outputs reads it
    for flag, path in (("--onnx", args.onnx), ("--engine", args.engine)):
        if path and not Path(path).is_file():
            raise UserError(f"{flag} file not found: {path}")
    require_backends([backend])
    model = None
    if backend.startswith("torch"):
        from .common import load_model_from_args

        model = load_model_from_args(args)
    with make_runner(backend, model=model, onnx=args.onnx, engine=args.engine, plugin=args.plugin) as runner:
        specs = runner.input_specs()
        if len(specs) != 1:
            raise UserError(f"the model has {len(specs)} inputs; run feeds one")
        (name, (dtype, _)), = specs.items()
        want = _dtype_name(dtype)
        results = []
        for label, x in feeds:
            if x.dtype.kind == "f" and want in ("float16", "float32") and x.dtype.name != want and \
                    not (args.input or "").endswith((".npy", ".NPY")):
                x = x.astype(want)  # images are decoded as float32; the model decides
            outs = _infer(runner, backend, name, x, args.model)
            io.add(backend, {name: x}, outs)
            results.append((label, x, outs))
    code = 0
    for i, (label, x, outs) in enumerate(results):
        where = f" {label}" if label else ""
        for out_name, y in outs.items():
            print(f"{backend}:{where} input {'x'.join(map(str, x.shape))} -> {out_name} {'x'.join(map(str, y.shape))} "
                  f"({y.dtype})")
        if saved is not None and not _matches_saved(saved, i, label, x, outs):
            code = 1
    io.write()
    if out is not None:
        _save(out, results[-1][2])
        print(f"wrote {out}")
    if code:
        return code
    outs, x = results[-1][2], results[-1][1]
    out_name, y = next(iter(outs.items()))  # top-k: the first output (a classifier's logits first)
    if y.ndim == 2 and y.shape[1] > 1 and out is None or args.top_k and y.ndim == 2:
        k = min(args.top_k or 5, y.shape[1])
        for b, row in enumerate(y.astype(np.float64)):
            top = np.argsort(-row, kind="stable")[:k]
            label = f" {out_name}" if len(outs) > 1 else ""
            print(f"  [{b}]{label} top-{k}: " + ", ".join(f"{int(i)} ({row[i]:.4g})" for i in top))
    return 0


def _matches_saved(saved, i: int, label, x: np.ndarray, outs: dict) -> bool:
    """Compare one iteration's outputs with a saved runner's (TensorRT fp32 tolerances); print it."""
    from ..runtime.validate import ValidateConfig, saved_records
    from .validate import format_record

    runner, iterations = saved
    if i >= len(iterations):
        print(f"  vs {runner} (saved): no iteration {i} there ({len(iterations)} saved)")
        return False
    records = saved_records(ValidateConfig(shapes=(), backends=()), [(runner, iterations[i:i + 1])],
                            [(label or "input", x)], [(x, outs)])
    for r in records:
        print("  " + format_record(r))
    return all(r.passed and r.skipped is None for r in records)


def _save(path: Path, outs: dict) -> None:
    """One output: an .npy array. Several (a tuple, list or dict output): an .npz archive with one
    array per output name, in the file's output order."""
    from ..util.fileio import atomic_write

    if len(outs) > 1 and path.suffix.lower() == ".npy":
        raise UserError(f"the model has {len(outs)} outputs ({', '.join(outs)}): they are written as one .npz "
                        f"archive, so give -o a name ending in .npz, not {path.name}")

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save(path) would append ".npy" to the name
            if len(outs) == 1:
                np.save(f, next(iter(outs.values())))
                return
            # np.savez's own way, without its keywords (an output named "file" would clash)
            with zipfile.ZipFile(f, "w", allowZip64=True) as z:
                for name, arr in outs.items():
                    with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(arr))

    atomic_write(path, save)


def _infer(runner, backend: str, name: str, x: np.ndarray, spec: str | None) -> dict:
    """One inference; the backend's own failure (input too small, wrong channel count) as one line
    naming the input shape, and for zoo models the sizes they take."""
    from ..util.errors import first_line

    try:
        return runner.infer({name: x})
    except UserError:
        raise
    except Exception as e:
        hint = ""
        if spec and spec.startswith("zoo:"):
            from ..sources.zoo import ZOO

            entry = ZOO.get(spec[4:])
            if entry is not None:
                hint = f" ({spec} takes {entry.input_shape[1]} channels, sizes {entry.input_rule})"
        raise UserError(f"{backend} cannot run input {'x'.join(map(str, x.shape))}: {first_line(e)}{hint}") from None


def register(sub) -> None:
    p = sub.add_parser("run", help="run one input (image at native size, or .npy) on a backend")
    add_model_args(p, required=False)
    add_model_file_args(p)
    p.add_argument("--backend", choices=BACKENDS,
                   help="default: trt with --engine, else ort-cpu with --onnx, else torch")
    p.add_argument("-i", "--input", help="image file (read at native size; needs Pillow) or .npy array")
    add_normalize_args(p, " (images)")
    p.add_argument("--top-k", type=positive_int, help="print the top-k classes (default 5 for classifier outputs)")
    add_interop_args(p, "inputs from a Polygraphy inputs file instead of --input (each iteration run in turn)",
                     "compare with the first runner's outputs in this Polygraphy RunResults file, iteration by "
                     "iteration (TensorRT fp32 tolerances); exit 1 on a mismatch")
    add_output_arg(p, "write the output to this file (.npy format, the name as given; several outputs: "
                      ".npz, one array per output name)")
    add_force_arg(p)
    p.set_defaults(func=run)
