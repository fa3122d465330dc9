"""Each zoo model: ONNX Runtime CPU (exported, standard mode) vs PyTorch eager CPU, side by side,
at 224x224, 480x320 and 1000x600 (the SPP paper's detection scale), batch 1 and 8, same threads.

    python benchmarks/zoo_ort_vs_torch.py [--iterations 5] [--threads N] [--quick] [--models a,b]

Target: the exported model in ORT CPU is at least 1.5x faster than PyTorch eager CPU
(speedup = torch median / ORT median). Models whose input is a feature map (C != 3) are fed the
feature map such an image gives at stride 16 (224x224 -> 14x14, 480x320 -> 30x20, 1000x600 ->
62x37). Sizes a model cannot take are nudged up by a pixel or two, else skipped with the reason.
The default run stays under ~5 minutes on 2 cores; --quick runs 2 iterations after 1 warm-up.
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
import torch

from _common import Table, export, parse, parser, session, shape_text
from spp_deploy.sources import zoo
from spp_deploy.runtime.compare import source_error
from spp_deploy.runtime.timing import measure

IMAGE_SIZES = [(224, 224), (480, 320), (1000, 600)]  # (width, height) as the paper writes them
BATCHES = [1, 8]
TARGET = 1.5
FEATURE_STRIDE = 16


def input_shape(entry, batch: int, w: int, h: int):
    C = entry.input_shape[1]
    if C != 3:
        h, w = max(1, round(h / FEATURE_STRIDE)), max(1, round(w / FEATURE_STRIDE))
    return (batch, C, h, w)


def legal_shape(model, shape):
    """``shape``, or the nearest size up to +3 pixels per axis the model can take, or (None, why)."""
    b, c, h, w = shape
    for dh in range(4):
        for dw in range(4):
            if source_error(model, (1, c, h + dh, w + dw)) is None:
                return (b, c, h + dh, w + dw), None
    return None, source_error(model, (1, c, h, w))


def main() -> int:
    ap = parser(__doc__, iterations=5, warmup=1)
    ap.add_argument("--models", help="comma separated zoo names (default: every zoo model)")
    ap.add_argument("--quick", action="store_true", help="2 timed iterations after 1 warm-up")
    args = parse(ap)
    if args.quick:
        args.iterations, args.warmup = 2, 1
    names = args.models.split(",") if args.models else zoo.zoo_names()
    t_start = time.perf_counter()
    print(f"ONNX Runtime {ort.__version__} CPU vs torch {torch.__version__} eager CPU, {args.threads} threads both, "
          f"median of {args.iterations} (warm-up {args.warmup}); speedup = torch / ORT; target >= {TARGET:g}x")
    table = Table(f"{'model':<22} {'input':<16} {'torch ms':>10} {'ORT ms':>10} {'speedup':>8} {'max rel err':>12}  "
                  "target")
    for name in names:
        entry = zoo.get_entry(name)
        model = zoo.create(name)
        ex = torch.randn(*entry.input_shape)
        try:
            sess = session(export(model, ex), args.threads)
        except Exception as e:
            print(f"{name:<22} {'-':<16} skipped: export failed: {(str(e).strip().splitlines() or [''])[0][:100]}")
            continue
        in_name = sess.get_inputs()[0].name
        for batch in BATCHES:
            for w, h in IMAGE_SIZES:
                shape, why = legal_shape(model, input_shape(entry, batch, w, h))
                if shape is None:
                    print(f"{name:<22} {shape_text(input_shape(entry, batch, w, h)):<16} skipped: {why}")
                    continue
                x = np.random.default_rng(batch * w + h).standard_normal(shape, dtype=np.float32)
                xt = torch.from_numpy(x)
                feed = {in_name: x}
                try:
                    with torch.inference_mode():
                        ref = model(xt).numpy()
                    out = sess.run(None, feed)[0]
                except Exception as e:  # e.g. a seed layer that only takes batch 1
                    why = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    print(f"{name:<22} {shape_text(shape):<16} skipped: {why[:100]}")
                    continue
                with torch.inference_mode():
                    rel = float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
                    t_torch = measure(lambda: model(xt), args.warmup, args.iterations).median
                t_ort = measure(lambda: sess.run(None, feed), args.warmup, args.iterations).median
                speedup = t_torch / t_ort
                table.row(f"{name:<22} {shape_text(shape):<16} {t_torch:10.2f} {t_ort:10.2f} {speedup:7.2f}x "
                          f"{rel:12.2e}  ", speedup >= TARGET, missed=f"MISSED (by {TARGET / speedup:.2f}x)")
    return table.finish(f"{table.met}/{table.rows} cases meet the {TARGET:g}x target "
                        f"({time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
