"""Inputs and outputs in the formats Polygraphy and trtexec read, so a failure found here can be
replayed elsewhere (``polygraphy run model.onnx --trt --load-inputs in.json --load-outputs out.json``,
``trtexec --loadInputs=input:input.0.bin``).

Polygraphy's JSON (``polygraphy.json``): an array is ``{"array": base64(np.save bytes),
"polygraphy_class": "ndarray"}``; an inputs file is a list of feeds ({name: array}), one per
iteration; an outputs file is a ``RunResults``: ``{"lst": [[runner, [IterationResult, ...]], ...]}``
with each ``IterationResult`` ``{"outputs": {name: LazyArray}, "runtime", "runner_name"}``.
Written here with numpy and json alone (Polygraphy is no dependency; the tests load what this
writes with Polygraphy and read what Polygraphy writes). trtexec's ``--loadInputs`` reads one
raw little-endian, C-order binary file per input.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .util.errors import UserError, first_line

CLASS = "polygraphy_class"
Feed = Mapping[str, np.ndarray]


def encode_array(array: np.ndarray) -> dict:
    """One array as Polygraphy encodes it: np.save bytes, base64.

    Args:
        array: the array.

    Returns:
        Polygraphy's JSON object for it.
    """
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return {"array": base64.b64encode(buf.getvalue()).decode(), CLASS: "ndarray"}


def decode_array(obj, where: str) -> np.ndarray:
    """An encoded array (plain or wrapped in a LazyArray), or a ``UserError`` naming ``where``.

    Args:
        obj: the JSON object.
        where: names the array in a message (file, iteration, input).

    Returns:
        The array.
    """
    if isinstance(obj, dict) and obj.get(CLASS) in ("LazyArray", "LazyNumpyArray"):
        obj = obj.get("values")
    if not isinstance(obj, dict) or obj.get(CLASS) != "ndarray" or not isinstance(obj.get("array"), str):
        raise UserError(f"{where} is not an array in Polygraphy's JSON format")
    try:
        return np.load(io.BytesIO(base64.b64decode(obj["array"].encode(), validate=True)), allow_pickle=False)
    except Exception as e:
        raise UserError(f"{where}: cannot decode the array: {first_line(e)}") from None


def inputs_json(feeds: Sequence[Feed]) -> str:
    """A Polygraphy inputs file: a list of feeds, one per iteration.

    Args:
        feeds: {input name: array}, one per iteration.

    Returns:
        The file's JSON text.
    """
    return json.dumps([{name: encode_array(a) for name, a in feed.items()} for feed in feeds], indent=1)


def outputs_json(results: Sequence[tuple[str, Sequence[Feed]]]) -> str:
    """A Polygraphy ``RunResults``: (runner name, [outputs of each iteration]) per runner.

    Args:
        results: (runner name, [{output name: array} per iteration]) per runner.

    Returns:
        The file's JSON text.
    """
    lst = [[runner, [{"outputs": {name: {"values": encode_array(a), CLASS: "LazyArray"} for name, a in outs.items()},
                      "runtime": None, "runner_name": runner, CLASS: "IterationResult"} for outs in iterations]]
           for runner, iterations in results]
    return json.dumps({"lst": lst, CLASS: "RunResults"}, indent=1)


def _read_json(path: str | os.PathLike, what: str):
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} file not found: {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{p} is not JSON: {first_line(e)}") from None


def _feed(obj, where: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict) or not obj or CLASS in obj:
        raise UserError(f"{where} is not a feed ({{input name: array}})")
    return {str(name): decode_array(a, f"{where}[{name!r}]") for name, a in obj.items()}


def read_inputs(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """The feeds of a Polygraphy inputs file (``--save-inputs`` here or in ``polygraphy run``).

    Args:
        path: the JSON file.

    Returns:
        {input name: array}, one per iteration.

    Raises:
        UserError: missing, not JSON, or not an inputs file.
    """
    data = _read_json(path, "inputs")
    if not isinstance(data, list) or not data:
        raise UserError(f"{path} is not a Polygraphy inputs file (a non-empty list of {{input name: array}})")
    return [_feed(f, f"{path} iteration {i}") for i, f in enumerate(data)]


def read_outputs(path: str | os.PathLike) -> list[tuple[str, list[dict[str, np.ndarray]]]]:
    """(runner name, [outputs per iteration]) of a Polygraphy ``RunResults`` file.

    Args:
        path: the JSON file.

    Returns:
        (runner name, [{output name: array} per iteration]) per runner.

    Raises:
        UserError: missing, not JSON, or not a ``RunResults`` file.
    """
    data = _read_json(path, "outputs")
    if not isinstance(data, dict) or data.get(CLASS) != "RunResults" or not isinstance(data.get("lst"), list):
        raise UserError(f"{path} is not a Polygraphy outputs file (RunResults)")
    out = []
    for entry in data["lst"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise UserError(f"{path}: a RunResults entry is not [runner name, iterations]")
        runner, iterations = str(entry[0]), entry[1]
        feeds = []
        for i, it in enumerate(iterations):
            where = f"{path} runner {runner!r} iteration {i}"
            if not isinstance(it, dict) or "outputs" not in it:
                raise UserError(f"{where} is not an IterationResult")
            feeds.append(_feed(it["outputs"], where))
        out.append((runner, feeds))
    if not out:
        raise UserError(f"{path} holds no runner's results")
    return out


def save_inputs(path: str | os.PathLike, feeds: Sequence[Feed], force: bool = False) -> Path:
    """Write ``feeds`` as a Polygraphy inputs file (checked first, written whole or not at all).

    Args:
        path: the file to write.
        feeds: {input name: array}, one per iteration.
        force: replace an existing file.

    Returns:
        The path written.
    """
    from .util.fileio import check_output, write_text

    return write_text(check_output(path, "inputs file", force), inputs_json(feeds) + "\n")


def save_outputs(path: str | os.PathLike, results: Sequence[tuple[str, Sequence[Feed]]], force: bool = False) -> Path:
    """Write ``results`` as a Polygraphy ``RunResults`` file.

    Args:
        path: the file to write.
        results: (runner name, [{output name: array} per iteration]) per runner.
        force: replace an existing file.

    Returns:
        The path written.
    """
    from .util.fileio import check_output, write_text

    return write_text(check_output(path, "outputs file", force), outputs_json(results) + "\n")


def trtexec_names(feeds: Sequence[Feed]) -> list[dict[str, str]]:
    """The raw file name of each input of each iteration: ``NAME.ITER.bin``.

    Args:
        feeds: {input name: array}, one per iteration.

    Returns:
        {input name: file name}, one per iteration.
    """
    return [{name: f"{_safe(name)}.{i}.bin" for name in feed} for i, feed in enumerate(feeds)]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "input"


def trtexec_command(directory: str | os.PathLike, feed: Feed, names: Mapping[str, str]) -> str:
    """The trtexec flags that load one iteration's raw files at their shapes.

    Args:
        directory: where the raw files are.
        feed: the iteration's {input name: array}.
        names: {input name: file name} of that iteration.

    Returns:
        ``--loadInputs=... --shapes=...``.
    """
    load = ",".join(f"{n}:{Path(directory) / names[n]}" for n in feed)
    shapes = ",".join(f"{n}:{'x'.join(map(str, a.shape))}" for n, a in feed.items())
    return f"--loadInputs={load} --shapes={shapes}"


def save_trtexec_inputs(directory: str | os.PathLike, feeds: Sequence[Feed]) -> list[str]:
    """One raw binary file per input per iteration in ``directory`` (created), for trtexec's
    ``--loadInputs``; returns the trtexec flags for each iteration (also written to
    ``directory/trtexec.txt``). Existing files of these names are replaced: the directory is ours.

    Args:
        directory: where to write (created with its parents).
        feeds: {input name: array}, one per iteration.

    Returns:
        The trtexec flags of each iteration.
    """
    from .util.fileio import atomic_write, check_output_dir, write_text

    d = check_output_dir(directory, "trtexec inputs directory")
    d.mkdir(parents=True, exist_ok=True)
    commands = []
    for feed, names in zip(feeds, trtexec_names(feeds)):
        for name, arr in feed.items():
            data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            atomic_write(d / names[name], lambda tmp, data=data: tmp.write_bytes(data))
        commands.append(trtexec_command(d, feed, names))
    write_text(d / "trtexec.txt", "".join(f"trtexec --onnx=MODEL.onnx {c}\n" for c in commands))
    return commands
