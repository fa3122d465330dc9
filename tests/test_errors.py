"""``first_line``: the one-line form of an exception, also when its message is empty, and the
places that wrap third-party exceptions with it."""

import types

import numpy as np
import pytest
import torch

from spp_deploy.util.errors import UserError, first_line


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("broken __str__")


@pytest.mark.parametrize("exc,expected", [
    (ValueError("bad value"), "bad value"),
    (ValueError(""), "ValueError"),
    (RuntimeError(), "RuntimeError"),
    (KeyError(), "KeyError"),
    (OSError("  \n\t\n"), "OSError"),  # whitespace only counts as empty
    (RuntimeError("first line\nsecond line\nthird"), "first line"),
    (RuntimeError("\n\n   \n  indented first  \nsecond"), "indented first"),  # leading blank lines skipped
    (TypeError("one\r\ntwo"), "one"),
    (KeyError("key"), "'key'"),  # str() of a KeyError, as Python prints it
    (Unprintable(), "Unprintable"),
])
def test_first_line(exc, expected):
    assert first_line(exc) == expected


def test_empty_torch_load_error_is_named(tmp_path, monkeypatch):
    from spp_deploy.sources import loading

    w = tmp_path / "w.pt"
    w.write_bytes(b"not read: torch.load is replaced")

    def empty_error(*args, **kwargs):
        raise RuntimeError()

    monkeypatch.setattr(loading.torch, "load", empty_error)
    with pytest.raises(UserError, match=r"^.*w\.pt is not a valid PyTorch checkpoint: RuntimeError$"):
        loading.load_weights(torch.nn.Linear(2, 2), str(w))


def test_empty_npy_error_is_named(tmp_path, monkeypatch):
    from spp_deploy.util import inputs

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 4, 4), np.float32))
    def blank_error(*args, **kwargs):
        raise ValueError("\n")

    monkeypatch.setattr(inputs.np, "load", blank_error)
    with pytest.raises(UserError, match=r"^cannot read .*x\.npy as a \.npy array: ValueError$"):
        inputs.load_input(str(x))


def test_source_error_of_an_empty_exception():
    from spp_deploy.runtime.compare import source_error

    class Raises(torch.nn.Module):
        def forward(self, x):
            raise IndexError()

    assert source_error(Raises(), (1, 3, 4, 4)) == "IndexError"


def test_tensorrt_messages_never_empty():
    from spp_deploy.runtime.trt.build import format_parser_errors
    from spp_deploy.runtime.trt.common import CapturingLogger

    log = CapturingLogger.create(types.ModuleType("tensorrt"))
    assert log.last_error() == "no message from TensorRT"
    log.log("ERROR", "deserialization failed\ndetails")
    log.log("ERROR", "  \n ")  # an empty message does not replace the real one
    log.log("WARNING", "only a warning")
    assert log.last_error() == "deserialization failed"

    class Err:
        def __init__(self, desc):
            self._desc = desc

        def desc(self):
            return self._desc

        def node(self):
            return 3

        def node_name(self):
            return "n3"

        def node_operator(self):
            return "Conv"

        def __str__(self):
            return ""

    parser = types.SimpleNamespace(num_errors=2, get_error=[Err("\n  "), Err("\nreal reason\nmore")].__getitem__)
    assert format_parser_errors(parser) == "node n3 (Conv): no description; node n3 (Conv): real reason"
