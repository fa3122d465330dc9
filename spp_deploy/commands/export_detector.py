"""``spp-deploy export-detector``: a detector (image + windows) -> DIR/trunk.onnx + head.onnx."""

from __future__ import annotations

import time

from .args import add_force_arg, add_model_args, add_output_arg, add_windows_dtype_arg
from .common import command_inputs, load_model_from_args
from .console import status
from .option_groups import DETECTOR_EXPORT_FIELDS, add_export_options, export_options


def run(args) -> int:
    from ..detection.export import check_detector, export_detector

    from pathlib import Path

    from ..detection.export import HEAD_FILE, META_FILE, TRUNK_FILE
    from ..util.fileio import check_not_input, check_output_dir

    check_output_dir(args.output, "output")
    for name in (TRUNK_FILE, HEAD_FILE, META_FILE):
        check_not_input(Path(args.output) / name, command_inputs(args))
    model = load_model_from_args(args)
    check_detector(model)
    options = export_options(args)
    t0 = time.perf_counter()
    with status(f"exporting the detector to {args.output}") as step:  # steps on a terminal, not in the results
        meta = export_detector(model, args.output, progress=step, windows_dtype=args.windows_dtype,
                               **{name: getattr(options, name) for name in DETECTOR_EXPORT_FIELDS})
    p = meta["projection"]
    print(f"exported {args.output}/trunk.onnx, head.onnx, detector.json (window SPP levels {meta['levels']}, "
          f"stride {p['stride']:g}, offset0 {p['offset0']:g}, spp-impl {args.spp_impl}, "
          f"{meta['windows_dtype']} windows) "
          f"in {time.perf_counter() - t0:.1f}s")
    if meta["head_parity"]:
        worst = max(r.max_abs_diff for r in meta["head_parity"])
        print(f"head parity, ONNX Runtime CPU vs PyTorch: {len(meta['head_parity'])} map sizes x window sets "
              f"(R = 0, 1, ..., 2000; degenerate windows included), max |diff| {worst:.3g}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export-detector",
                       help="export an SPP-net detector as trunk + head ONNX (dynamic sizes and windows)")
    add_model_args(p)
    add_export_options(p, DETECTOR_EXPORT_FIELDS)
    add_windows_dtype_arg(p)
    add_output_arg(p, "output directory (trunk.onnx, head.onnx, detector.json)", required=True)
    add_force_arg(p)
    p.set_defaults(func=run)
