"""What every ctypes binding of our C ABIs shares: the status codes, TensorRT's plugin-field
struct, one process-wide cache of opened libraries (signatures declared, ABI version checked),
and the plugin-config round trips (fields -> config, config <-> engine blob)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..contract import MAX_NB_LEVELS, Status
from ..util.errors import UserError

STATUS_OK, STATUS_ILLEGAL_SIZE, STATUS_BAD_CONFIG, STATUS_BAD_ARGUMENT = (
    Status.OK, Status.ILLEGAL_SIZE, Status.BAD_CONFIG, Status.BAD_ARGUMENT)

# nvinfer1::PluginFieldType numbering (for config-parser tests).
FIELD_INT32 = 5
FIELD_CHAR = 6
FIELD_UNKNOWN = 8
FIELD_INT64 = 10


class CField(ctypes.Structure):
    """nvinfer1::PluginField as the C ABI's ``*_config_parse`` takes it."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("type", ctypes.c_int32),
        ("length", ctypes.c_int32),
    ]


_OPENED: dict[str, ctypes.CDLL] = {}


def open_declared(path: str | os.PathLike, declare: Callable[[ctypes.CDLL], None], abi_version: str,
                  what: str) -> ctypes.CDLL:
    """``path`` dlopened once per process, ``declare(lib)`` setting its signatures; ``UserError``
    unless its ``abi_version()`` function returns 1."""
    key = str(Path(path).resolve())
    if key not in _OPENED:
        lib = ctypes.CDLL(key)
        version = getattr(lib, abi_version)
        version.restype, version.argtypes = ctypes.c_int32, []
        declare(lib)
        if version() != 1:
            raise UserError(f"{key}: unsupported {what} ABI version {version()}")
        _OPENED[key] = lib
    return _OPENED[key]


def int32_array(values: Sequence[int]) -> ctypes.Array:
    """``values`` as an ``int32_t[]`` (never zero-length, so the pointer is valid)."""
    return (ctypes.c_int32 * max(1, len(values)))(*(int(v) for v in values))


def declare_config_functions(lib: ctypes.CDLL, prefix: str, config: type[ctypes.Structure]) -> None:
    """Signatures of ``<prefix>_config_parse / _serialize / _deserialize`` (sppConfigAbi shape)."""
    i32, i64, text, p_cfg = ctypes.c_int32, ctypes.c_int64, ctypes.c_char_p, ctypes.POINTER(config)
    parse, serialize, deserialize = (getattr(lib, f"{prefix}_config_{op}")
                                     for op in ("parse", "serialize", "deserialize"))
    parse.restype, parse.argtypes = i32, [ctypes.POINTER(CField), i32, p_cfg, text, i32]
    serialize.restype, serialize.argtypes = i64, [p_cfg, text, i64]
    deserialize.restype, deserialize.argtypes = i32, [text, i64, p_cfg, text, i32]


def set_levels(cfg: ctypes.Structure, levels: Sequence[int]) -> None:
    """A config struct's ``nbLevels`` / ``levels[]`` (extra levels dropped: the count stays, so the
    C side refuses it)."""
    cfg.nbLevels = len(levels)
    for i, n in enumerate(list(levels)[:MAX_NB_LEVELS]):
        cfg.levels[i] = int(n)


def _filled(fn: Any, args: tuple, cfg: ctypes.Structure) -> Any:
    err = ctypes.create_string_buffer(512)
    if fn(*args, ctypes.byref(cfg), err, len(err)) != STATUS_OK:
        raise ValueError(err.value.decode())
    return cfg.as_tuple()


def parse_with(parse: Any, fields: Sequence[tuple[str, int, bytes, int]], cfg: ctypes.Structure) -> Any:
    """A C ABI ``*_config_parse`` (the plugin creator's parser) on (name, type, data, length)
    tuples into ``cfg``: ``cfg.as_tuple()``, or ``ValueError`` with the parser's message."""
    buffers = [ctypes.create_string_buffer(bytes(data), max(1, len(data))) for _, _, data, _ in fields]
    arr = (CField * max(1, len(fields)))(*(
        CField(name.encode() if isinstance(name, str) else name, ctypes.cast(buf, ctypes.c_void_p), ftype, length)
        for (name, ftype, _, length), buf in zip(fields, buffers)))
    return _filled(parse, (arr, len(fields)), cfg)


def deserialize_with(deserialize: Any, blob: bytes, cfg: ctypes.Structure) -> Any:
    """A C ABI ``*_config_deserialize`` on an engine blob: ``cfg.as_tuple()`` or ``ValueError``."""
    return _filled(deserialize, (blob, len(blob)), cfg)


def serialize_with(serialize: Any, cfg: ctypes.Structure, what: str) -> bytes:
    """The engine blob a C ABI ``*_config_serialize`` writes (size query, then the write)."""
    n = serialize(ctypes.byref(cfg), None, 0)
    if n < 0:
        raise ValueError(f"invalid {what} configuration")
    buf = ctypes.create_string_buffer(int(n))
    serialize(ctypes.byref(cfg), buf, n)
    return buf.raw
