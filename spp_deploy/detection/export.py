"""Export a detector as two ONNX files, trunk + head, plus ``detector.json``.

Why two files: the trunk runs once per scale on differently sized images (five scales in
multi-scale mode), the head once per scale on that scale's windows; one file would fix one scale.
The trunk is a plain conv net (any runtime, TensorRT included); the head holds the window pyramid
(standard ops, or the plugin node) and fc6/fc7.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..util.constants import DEFAULT_OPSET, DEFAULT_WINDOWS_DTYPE
from ..util.errors import UserError
from ..util.fileio import check_output_dir, temp_prefix

TRUNK_FILE, HEAD_FILE, META_FILE = "trunk.onnx", "head.onnx", "detector.json"


def detector_meta(model: torch.nn.Module, windows_dtype: str = DEFAULT_WINDOWS_DTYPE) -> dict:
    head = model.head
    p = head.spp.projection
    return {"trunk": TRUNK_FILE, "head": HEAD_FILE, "area_constant": float(model.area_constant),
            "channels": int(head.fc6.in_features // sum(n * n for n in head.spp.levels)),
            "levels": list(head.spp.levels),
            "projection": {"stride": p.stride, "offset0": p.offset0, "offset": p.offset},
            "features": int(head.fc7.out_features), "windows_dtype": windows_dtype}


def check_detector(model: torch.nn.Module) -> None:
    for attr in ("trunk", "head", "area_constant"):
        if not hasattr(model, attr):
            raise UserError(f"{type(model).__name__} is not a detector (it needs .trunk, .head and .area_constant, "
                            "like zoo:sppnet-zf5-det)")


def export_detector(model: torch.nn.Module, out_dir: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                    spp_impl: str = "standard", check_parity: bool = True, force: bool = False,
                    progress=None, windows_dtype: str = DEFAULT_WINDOWS_DTYPE) -> dict:
    """Write ``out_dir``/trunk.onnx, head.onnx and detector.json, each parity-checked in ONNX
    Runtime; nothing lands in ``out_dir`` unless all three succeed. Returns the metadata.
    ``windows_dtype``: the head's ``windows`` input, float64 or float32 (TensorRT has no float64;
    the head widens float32 windows to float64 exactly before projecting them)."""
    from ..checked_export import export_onnx, export_window_model
    from ..ops.window_pyramid import windows_torch_dtype

    check_detector(model)
    windows_torch_dtype(windows_dtype)  # a bad value fails before anything is traced or written
    out = check_output_dir(out_dir, "output")
    clash = [n for n in (TRUNK_FILE, HEAD_FILE, META_FILE) if (out / n).exists()]
    if clash and not force:
        raise UserError(f"{out / clash[0]} already exists: not replaced; to replace it, use", option="force", example="")
    meta = detector_meta(model, windows_dtype)
    say = progress or (lambda _msg: None)
    with _new_directories(out.parent) as parent, \
            tempfile.TemporaryDirectory(dir=parent, prefix=temp_prefix(out.name, parent)) as tmp:
        t = Path(tmp)
        say("trunk: exporting and checking parity")
        export_onnx(model.trunk, torch.zeros(1, 3, 224, 224), t / TRUNK_FILE, opset=opset,
                    check_parity=check_parity, sizes=[(1, 224, 224), (1, 97, 131), (2, 160, 64), (1, 350, 301)])
        say("head: exporting and checking parity")
        head = export_window_model(model.head, t / HEAD_FILE, channels=meta["channels"],
                                   stride=meta["projection"]["stride"], opset=opset, spp_impl=spp_impl,
                                   check_parity=check_parity, windows_dtype=windows_dtype)
        created = not out.exists()
        try:
            (t / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
            out.mkdir(exist_ok=True)
            for name in (TRUNK_FILE, HEAD_FILE, META_FILE):
                shutil.move(str(t / name), str(out / name))
        except BaseException as e:
            if created:  # made here: nothing of the user's is in it
                shutil.rmtree(out, ignore_errors=True)
            if isinstance(e, OSError):
                raise UserError(f"cannot write {out}: {e.strerror or e}") from None
            raise
    meta["head_parity"] = head.parity
    return meta


@contextlib.contextmanager
def _new_directories(directory: Path):
    """Create ``directory`` and its missing parents; on any failure (Ctrl-C included) remove
    the ones created here again, if they are still empty."""
    created = []
    d = directory.absolute()
    while not d.exists():
        created.append(d)
        d = d.parent
    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create {directory}: {e.strerror or e}") from None
        yield directory
    except BaseException:
        for d in created:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break
        raise


def load_meta(directory: str | os.PathLike) -> dict:
    """detector.json of an exported detector directory, with one-line errors."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"a detector is the directory its export wrote (trunk, head, metadata); {d} is not a directory",
                        option="onnx")
    p = d / META_FILE
    try:
        meta = json.loads(p.read_text())
        for key in ("trunk", "head", "area_constant"):
            meta[key]
    except FileNotFoundError:
        raise UserError(f"{p} not found: export the detector with `spp-deploy export-detector`") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{p} is not a detector description: {e}") from None
    return meta
