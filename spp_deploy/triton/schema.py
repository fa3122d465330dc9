"""Triton's model configuration schema: the ``ModelConfig`` protobuf message that ``tritonclient``
ships (``tritonclient/grpc/model_config_pb2.py``, generated from Triton's model_config.proto).

Importing it the usual way runs ``tritonclient.grpc``'s ``__init__``, which needs ``grpcio``; the
repository writer needs only the message, so without ``grpcio`` the generated module is loaded
from its file. Text format (``config.pbtxt``) goes through ``google.protobuf.text_format``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..util.errors import UserError, first_line

_PRIVATE = "spp_deploy._triton_model_config_pb2"


def model_config_pb2() -> ModuleType:
    """The generated module (``ModelConfig``, ``DataType``, ...), or a one-line ``UserError``
    saying how to install ``tritonclient``."""
    try:
        spec = importlib.util.find_spec("tritonclient")
        has_grpc = _has_module("grpc")
    except Exception as e:  # a broken install
        return _missing(e)
    if spec is None:
        return _missing(ModuleNotFoundError("tritonclient", name="tritonclient"))
    if has_grpc:
        try:
            return importlib.import_module("tritonclient.grpc.model_config_pb2")
        except Exception as e:
            return _missing(e)
    if _PRIVATE in sys.modules:
        return sys.modules[_PRIVATE]
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    file_spec = importlib.util.spec_from_file_location(_PRIVATE, path)
    if file_spec is None or not path.is_file():
        return _missing(FileNotFoundError(str(path)))
    module = importlib.util.module_from_spec(file_spec)
    try:
        file_spec.loader.exec_module(module)
    except Exception as e:  # protobuf runtime too old for the generated code
        return _missing(e)
    sys.modules[_PRIVATE] = module
    return module


def _has_module(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def _missing(e: BaseException) -> ModuleType:
    from ..util.extras import pip_install_hint

    why = "not installed" if isinstance(e, ModuleNotFoundError) else f"unusable ({first_line(e)})"
    raise UserError(f"tritonclient (Triton's model configuration schema) is {why}: {pip_install_hint('triton')}")


def to_text(config) -> str:
    """``config.pbtxt`` text of a ``ModelConfig``."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def parse_text(text: str):
    """A ``ModelConfig`` from ``config.pbtxt`` text, strictly (unknown fields are errors)."""
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as e:
        raise UserError(f"not a valid Triton model configuration: {first_line(e)}") from None
