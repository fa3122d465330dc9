"""``spp-deploy demo``: the main job (export, validate, benchmark a zoo model on ORT CPU)."""

from __future__ import annotations

from pathlib import Path

from ..util.errors import UserError
from .args import add_force_arg, add_model_arg
from .common import output_path, print_parity


def run(args) -> int:
    if not args.model.startswith("zoo:"):
        raise UserError(f"the demo runs zoo models: give --model zoo:NAME, not {args.model!r} (list: spp-deploy zoo)")
    name = args.model[4:]
    out_dir = Path(args.out_dir)
    if args.out_dir.strip():
        from ..util.fileio import check_output_dir

        check_output_dir(out_dir, "--out-dir")
    if not args.out_dir.strip() or out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out-dir {args.out_dir!r} is not a directory")
    if out_dir.is_dir():
        output_path(args, out_dir / f"{name}.onnx", "output")
    return run_demo(out_dir, name, force=args.force)


BENCH_SIZES = ((1, 224, 224), (1, 480, 320))


def run_demo(out_dir: Path, name: str = "sppnet-zf5", force: bool = False) -> int:
    import numpy as np
    import torch

    from ..sources import zoo
    from ..checked_export import export_onnx
    from ..runtime.ort_runner import OrtRunner
    from ..runtime.timing import measure

    entry = zoo.get_entry(name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out_dir}: {e.strerror}") from None
    model = zoo.create(name)
    path = out_dir / f"{name}.onnx"
    print(f"[1/3] export zoo:{name} ({entry.source}) -> {path}")
    res = export_onnx(model, torch.randn(*entry.input_shape), path, force=force)
    print("[2/3] validate: ONNX Runtime CPU vs PyTorch eager, random inputs")
    print_parity(res.parity)
    checked = [r for r in res.parity if r.comparison]
    print(f"      {len(checked)} sizes PASSED, {len(res.parity) - len(checked)} skipped "
          f"(worst max rel err {max(r.comparison.max_rel for r in checked):.2e})")
    print("[3/3] benchmark: median latency, ONNX Runtime CPU vs PyTorch eager CPU "
          f"({torch.get_num_threads()} threads)")
    C = entry.input_shape[1]
    rng = np.random.default_rng(0)
    with OrtRunner(path, "cpu") as ort_runner:
        for b, h, w in BENCH_SIZES:
            x = rng.standard_normal((b, C, h, w), dtype=np.float32)
            xt = torch.from_numpy(x)
            with torch.no_grad():
                t_torch = measure(lambda: model(xt), warmup=2, iterations=10).median
            t_ort = measure(lambda: ort_runner.infer({"input": x}), warmup=2, iterations=10).median
            print(f"  {b}x{C}x{h}x{w}: torch {t_torch:7.2f} ms   ort-cpu {t_ort:7.2f} ms   "
                  f"speed-up {t_torch / t_ort:4.2f}x")
    print(f"done: {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="export, validate and benchmark a zoo model on ONNX Runtime CPU")
    add_model_arg(p, required=False, default="zoo:sppnet-zf5", help="a zoo model, zoo:NAME (default zoo:sppnet-zf5)")
    p.add_argument("--out-dir", default="spp-deploy-demo", help="directory for the exported model (created if missing)")
    add_force_arg(p)
    p.set_defaults(func=run)
