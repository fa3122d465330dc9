"""Proposal boxes from CSV, JSON or .npy: [R, 4] float64 (x1, y1, x2, y2), 1-based inclusive
pixels of the original image. Every problem is one line naming the file and the row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..util.errors import UserError, first_line

FORMATS = (".csv", ".json", ".npy")


DELIMITERS = ",;\t"


def _delimiter(lines: list[str]) -> str:
    """The delimiter of the first data line: whichever of ``,`` ``;`` tab it holds most (``,`` if none)."""
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            return max(DELIMITERS, key=line.count) if any(d in line for d in DELIMITERS) else ","
    return ","


def _rows_csv(p: Path) -> list:
    """Rows of a CSV file: a UTF-8 BOM is dropped, the delimiter is ``,`` ``;`` or tab, and line 1
    is a header only when it holds words and no number."""
    rows = []
    with open(p, newline="", encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    for i, row in enumerate(csv.reader(lines, delimiter=_delimiter(lines)), 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if i == 1 and not any(_is_number(c) for c in cells) and any(ch.isalpha() for ch in "".join(cells)):
            continue  # a header line
        rows.append((i, cells))
    return rows


def _real(value) -> float:
    """A coordinate as float; booleans (JSON ``true``) and complex numbers are not coordinates."""
    if isinstance(value, (bool, np.bool_, complex, np.complexfloating)):
        raise TypeError(f"not a real number: {value!r}")
    return float(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _rows_json(p: Path) -> list:
    data = json.loads(p.read_text())
    if isinstance(data, dict):
        if "boxes" not in data:
            raise UserError(f"{p}: expected a list of [x1, y1, x2, y2] or an object with \"boxes\"")
        data = data["boxes"]
    if not isinstance(data, list):
        raise UserError(f"{p}: expected a list of [x1, y1, x2, y2] boxes")
    out = []
    for i, row in enumerate(data, 1):
        if not isinstance(row, list):
            raise UserError(f"{p}: box {i} is not a list of 4 numbers")
        out.append((i, row))
    return out


def load_boxes(path: str) -> np.ndarray:
    """Read and check a box file (see module doc); ``UserError`` for NaN/inf, a wrong column count,
    x2 < x1 or y2 < y1, naming the first bad row (CSV: line number; JSON, .npy: box number)."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise UserError(f"box file {p}: unknown format {p.suffix or '(none)'} (use {', '.join(FORMATS)})")
    if not p.is_file():
        raise UserError(f"box file not found: {p}")
    where = "line" if p.suffix.lower() == ".csv" else "box"
    try:
        if p.suffix.lower() == ".npy":
            from ..util.inputs import read_npy

            arr = read_npy(p)
            if arr.dtype.kind not in "fiu":
                raise UserError(f"{p} holds {arr.dtype} values: expected real coordinates (float or integer)")
            if arr.ndim != 2 and not (arr.ndim == 1 and arr.size == 0):
                raise UserError(f"{p}: expected an [R, 4] array, got shape {'x'.join(map(str, arr.shape))}")
            rows = [(i, list(r)) for i, r in enumerate(arr.reshape(len(arr), -1), 1)]
        else:
            rows = _rows_csv(p) if p.suffix.lower() == ".csv" else _rows_json(p)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read box file {p}: {first_line(e)}") from None
    boxes = np.zeros((len(rows), 4), dtype=np.float64)
    for k, (i, row) in enumerate(rows):
        if len(row) != 4:
            raise UserError(f"{p} {where} {i}: {len(row)} values, expected 4 (x1, y1, x2, y2)")
        try:
            vals = [_real(v) for v in row]
        except (TypeError, ValueError):
            raise UserError(f"{p} {where} {i}: not a number in {row}") from None
        if not all(np.isfinite(vals)):
            raise UserError(f"{p} {where} {i}: NaN or infinite coordinate in {vals}")
        x1, y1, x2, y2 = vals
        if x2 < x1 or y2 < y1:
            raise UserError(f"{p} {where} {i}: x2 < x1 or y2 < y1 in {vals} (boxes are x1, y1, x2, y2)")
        boxes[k] = vals
    return boxes
