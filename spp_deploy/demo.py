"""The main job: export a zoo model, validate it across sizes, benchmark it on ONNX Runtime CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import zoo
from .commands.common import print_parity as _print_parity
from .errors import UserError
from .export import export_onnx
from .runtime.ort_runner import OrtRunner
from .runtime.timing import measure

BENCH_SIZES = ((1, 224, 224), (1, 480, 320))


def run_demo(out_dir: Path, name: str = "sppnet-zf5") -> int:
    entry = zoo.get_entry(name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out_dir}: {e.strerror}") from None
    model = zoo.create(name)
    path = out_dir / f"{name}.onnx"
    print(f"[1/3] export zoo:{name} ({entry.source}) -> {path}")
    res = export_onnx(model, torch.randn(*entry.input_shape), path)
    print("[2/3] validate: ONNX Runtime CPU vs PyTorch eager, random inputs")
    _print_parity(res.parity)
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
