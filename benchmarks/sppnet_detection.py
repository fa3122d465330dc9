"""SPP-net vs R-CNN feature extraction, side by side, one model (zoo:sppnet-zf5-det, fc6/fc7 4096
wide, random weights), one machine, one run (the paper's comparison, TPAMI section 4.3).

    python benchmarks/sppnet_detection.py [--backend ort-cpu|torch] [--reps 3] [--rcnn-windows 100]
                                          [--threads 2] [--hidden 4096] [--pool-reps 10] [--pooling-only]

R-CNN style: crop each window from the image, warp it to 224 x 224 (bilinear), BGR - 128, run the
whole network per window (trunk, pyramid over the crop's whole conv5 map, fc6, fc7), in batches
of 25. Measured at --rcnn-windows windows; R = 500 and 2000 are extrapolated linearly in R from
that measurement (said in the output). SPP-net style: ``spp_deploy.detect`` -- trunk once per
scale (1 scale: 688; 5 scales: 480..1200), window SPP and fc6/fc7 for all windows. Also the
window pooling alone: R = 2000 on the conv5 map of the 688-scale image, exported pyramid in ONNX
Runtime and PyTorch eager, against the trunk time at that scale (target: < half of it), timed
--pool-reps times (median and min).
Image 375 x 500 (a typical VOC image), random pixels and random proposal-like windows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spp_deploy.sources import zoo
from spp_deploy.detection.pipeline import RunnerStages, TorchStages, detect
from spp_deploy.detection.scales import FIVE_SCALES, SINGLE_SCALE, choose_scales, map_boxes, preprocess

H, W = 375, 500
WINDOW_COUNTS = (100, 500, 2000)
CROP = 224
BATCH = 25
PAPER = "paper (GPU, ZF-5): conv 270x (1 scale) / 49x (5 scales); overall 102x / 38x"


def proposals(rng: np.random.Generator, R: int) -> np.ndarray:
    """Selective-search-like boxes: log-uniform sizes from 10 px to the whole image."""
    w = np.exp(rng.uniform(np.log(10), np.log(W), R))
    h = np.clip(w * np.exp(rng.uniform(-0.7, 0.7, R)), 10, H)
    x1 = rng.uniform(1, W - w + 1)
    y1 = rng.uniform(1, H - h + 1)
    return np.stack([x1, y1, np.minimum(x1 + w - 1, W), np.minimum(y1 + h - 1, H)], 1).round()


def warp_crops(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """R-CNN's input: each box cropped and warped to CROP x CROP, BGR - 128: [R, 3, CROP, CROP]."""
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1], dtype=np.float32)).permute(2, 0, 1)[None]
    out = []
    for x1, y1, x2, y2 in boxes.astype(int):
        crop = x[:, :, y1 - 1:y2, x1 - 1:x2]
        out.append(F.interpolate(crop, size=(CROP, CROP), mode="bilinear", align_corners=False))
    return (torch.cat(out) - 128.0).numpy()


def rcnn(stages, image: np.ndarray, boxes: np.ndarray) -> dict:
    t0 = time.perf_counter()
    crops = warp_crops(image, boxes)
    t1 = time.perf_counter()
    conv = head = 0.0
    whole = np.array([[1.0, 1.0, CROP, CROP]])
    for i in range(0, len(crops), BATCH):
        a = time.perf_counter()
        maps = stages.trunk(np.ascontiguousarray(crops[i:i + BATCH]))
        b = time.perf_counter()
        n = maps.shape[0]
        win = np.concatenate([np.arange(n, dtype=np.float64)[:, None], np.repeat(whole, n, 0)], 1)
        stages.head(maps, win)
        head += time.perf_counter() - b
        conv += b - a
    return {"warp": t1 - t0, "conv": conv, "head": head, "total": time.perf_counter() - t0}


def sppnet(stages, image: np.ndarray, boxes: np.ndarray, scales) -> dict:
    t: dict = {}
    t0 = time.perf_counter()
    detect(image, boxes, stages, scales, timings=t)
    t["total"] = time.perf_counter() - t0
    t["conv"] = t["trunk"] + t["preprocess"]
    return t


def median_run(fn, reps: int) -> dict:
    fn()  # warm-up
    runs = [fn() for _ in range(reps)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def pooling_alone(stages, image, boxes, threads: int, reps: int, tmp: Path) -> dict:
    """Window SPP of 2000 windows on the 688-scale conv5 map: ORT (exported pyramid) and eager,
    and the trunk at 688 on ``stages``, each timed ``reps`` times (median and min: on a shared
    machine the min is the steadier estimate)."""
    import onnxruntime as ort

    from spp_deploy.checked_export import export_window_model
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    x688 = preprocess(image, SINGLE_SCALE[0])
    maps = stages.trunk(x688)
    win = np.concatenate([np.zeros((len(boxes), 1)), map_boxes(boxes, H, W, SINGLE_SCALE[0])], 1)
    op = WindowSpatialPyramidPool()
    path = tmp / "pool.onnx"
    export_window_model(op, path, channels=maps.shape[1], stride=16.0, check_parity=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {"features": maps, "windows": win}
    xm, xw = torch.from_numpy(maps), torch.from_numpy(win)

    def timed(f):
        f()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts), min(ts)

    out = {"map": "x".join(map(str, maps.shape))}
    with torch.no_grad():
        out["torch"] = timed(lambda: op(xm, xw))
    out["ort"] = timed(lambda: sess.run(None, feed))
    out["trunk"] = timed(lambda: stages.trunk(x688))
    assert np.array_equal(sess.run(None, feed)[0], op(xm, xw).numpy())
    return out


def report_pooling(pool: dict, backend: str, total688: float | None) -> None:
    tm, tmin = pool["trunk"]
    print(f"\nwindow pooling alone, R = 2000 on conv5 map {pool['map']} (688 scale), median / min of the runs:")
    print(f"  trunk at 688 ({backend}): {1000 * tm:.0f} / {1000 * tmin:.0f} ms")
    for name, label in (("ort", "ONNX Runtime"), ("torch", "PyTorch eager")):
        m, mn = pool[name]
        ok = "ok" if mn < tmin / 2 else "MISSED"
        share = f", {100 * m / total688:.0f}% of the whole 1-scale SPP-net time" if total688 else ""
        print(f"  {label}: {1000 * m:.0f} / {1000 * mn:.0f} ms = {m / tm:.2f}x / {mn / tmin:.2f}x the trunk "
              f"(target < 0.5x: {ok}){share}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("ort-cpu", "torch"), default="ort-cpu")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rcnn-windows", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--pool-reps", type=int, default=10, help="runs of the pooling-alone timing")
    p.add_argument("--pooling-only", action="store_true", help="only the window-pooling-alone part")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (H, W, 3)).astype(np.float32)
    all_boxes = proposals(rng, max(WINDOW_COUNTS))
    model = zoo.create("sppnet-zf5-det", hidden=args.hidden)
    import onnxruntime

    print(f"spp-deploy SPP-net detection benchmark: backend {args.backend}, {args.threads} threads, "
          f"fc6/fc7 {args.hidden}, image {H}x{W}, median of {args.reps} (warm-up 1); "
          f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.backend == "torch":
            stages = TorchStages(model)
        else:
            from spp_deploy.detection.export import export_detector

            export_detector(model, tmp / "det", check_parity=False)
            stages = RunnerStages(tmp / "det", "ort-cpu", threads=args.threads)
        with stages:
            rows = []
            if not args.pooling_only:
                rb = all_boxes[:args.rcnn_windows]
                r = median_run(lambda: rcnn(stages, image, rb), args.reps)
                per_window = {k: v / len(rb) for k, v in r.items()}
                print(f"\nR-CNN, measured at R = {len(rb)}: {r['total']:.2f} s "
                      f"(warp {r['warp']:.2f}, conv {r['conv']:.2f}, fc {r['head']:.2f}); "
                      f"{1000 * per_window['total']:.1f} ms per window; other R: linear in R from this")
                for R in WINDOW_COUNTS:
                    boxes = all_boxes[:R]
                    s1 = median_run(lambda: sppnet(stages, image, boxes, SINGLE_SCALE), args.reps)
                    s5 = median_run(lambda: sppnet(stages, image, boxes, FIVE_SCALES), args.reps)
                    used = len(set(choose_scales(boxes, H, W, FIVE_SCALES, 208.0).tolist()))
                    rc = {k: v * R for k, v in per_window.items()}
                    rows.append((R, rc, s1, s5, used))
                print("\nseconds per image (R-CNN extrapolated where R != measured R)")
                print(f"{'R':>5} {'R-CNN conv':>10} {'total':>8} | {'SPP 1sc conv':>12} {'pool+fc':>8} {'total':>7}"
                      f" {'conv x':>7} {'total x':>7} | {'SPP 5sc conv':>12} {'pool+fc':>8} {'total':>7} {'conv x':>7}"
                      f" {'total x':>7} scales used")
                for R, rc, s1, s5, used in rows:
                    print(f"{R:>5} {rc['conv'] + rc['warp']:>10.2f} {rc['total']:>8.2f} | {s1['conv']:>12.3f} "
                          f"{s1['head']:>8.3f} {s1['total']:>7.3f} {(rc['conv'] + rc['warp']) / s1['conv']:>6.1f}x "
                          f"{rc['total'] / s1['total']:>6.1f}x | {s5['conv']:>12.3f} {s5['head']:>8.3f} "
                          f"{s5['total']:>7.3f} {(rc['conv'] + rc['warp']) / s5['conv']:>6.1f}x "
                          f"{rc['total'] / s5['total']:>6.1f}x {used}/5")
                print(PAPER)
            pool = pooling_alone(stages, image, all_boxes[:2000], args.threads, args.pool_reps, tmp)
            report_pooling(pool, args.backend, rows[-1][2]["total"] if rows else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
