"""``bench``'s ``triton-http`` / ``triton-grpc`` backends: a running Triton Inference Server timed
through NVIDIA's own client library (``tritonclient``, imported lazily), one request per call.

The server's model metadata gives the input's name, data type and shape; its configuration the
``max_batch_size``. A shape the model cannot take (rank, a fixed dim, batch over the maximum) is
refused before it is sent; anything else the server refuses comes back as its own message.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..util.errors import UserError, first_line
from ..util.extras import pip_install_hint
from ..runtime.backends import REGISTRY, TRITON_BACKENDS

PROTOCOLS = {b: REGISTRY[b].variant for b in TRITON_BACKENDS}
_CLIENT_DEPS = {"http": "geventhttpclient", "grpc": "grpc"}
DEFAULT_HTTP_URL = "localhost:8000"
DEFAULT_GRPC_PORT = 8001


def grpc_url_for(http_url: str) -> str:
    """The gRPC endpoint beside an HTTP one: the same host, Triton's default gRPC port."""
    hostport = http_url.split("://", 1)[-1]
    host = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
    return f"{host}:{DEFAULT_GRPC_PORT}"


def unavailable_reason(backend: str) -> str | None:
    """Why ``backend``'s client library cannot be used here (a server is checked on open)."""
    protocol = PROTOCOLS[backend]
    for mod in ("tritonclient", _CLIENT_DEPS[protocol]):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (tritonclient[{protocol}]); {pip_install_hint('triton')}"
    return None


@dataclass
class ServedTensor:
    name: str
    datatype: str  # Triton's name: FP32, FP16, ...
    shape: tuple[int, ...]  # as the server reports it: -1 dynamic (the batch dim included)


class TritonModel:
    """One model on one server, over HTTP or gRPC. Use with ``with``."""

    def __init__(self, protocol: str, url: str, model: str | None = None, timeout_s: float = 60.0) -> None:
        self.protocol, self.url, self.model, self.timeout_s = protocol, url, model, timeout_s
        self.client: Any = None
        self.inputs: list[ServedTensor] = []
        self.outputs: list[ServedTensor] = []
        self.max_batch_size = 0

    def __enter__(self) -> "TritonModel":
        try:
            self._open()
        except UserError:
            self.close()
            raise
        except Exception as e:  # connection refused, DNS, protocol errors
            self.close()
            raise UserError(f"Triton server at {self.url} ({self.protocol}): {_message(e)}") from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None and hasattr(self.client, "close"):
            try:
                self.client.close()
            except Exception:
                pass
        self.client = None

    @property
    def module(self):
        return importlib.import_module(f"tritonclient.{self.protocol}")

    def _open(self) -> None:
        mod = self.module
        if self.protocol == "http":
            self.client = mod.InferenceServerClient(self.url, connection_timeout=self.timeout_s,
                                                    network_timeout=self.timeout_s)
        else:
            self.client = mod.InferenceServerClient(self.url)
        if not self.client.is_server_live():
            raise UserError(f"Triton server at {self.url} ({self.protocol}) is not live")
        if self.model is None:
            self.model = self._only_model()
        if not self.client.is_model_ready(self.model):
            raise UserError(f"model {self.model!r} is not ready on the Triton server at {self.url}")
        meta = self._json(self.client.get_model_metadata(self.model, **self._as_json()))
        config = self._json(self.client.get_model_config(self.model, **self._as_json()))
        config = config.get("config", config)
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.inputs = [_tensor(t) for t in meta.get("inputs", [])]
        self.outputs = [_tensor(t) for t in meta.get("outputs", [])]

    def _as_json(self) -> dict:
        return {"as_json": True} if self.protocol == "grpc" else {}

    @staticmethod
    def _json(value) -> dict:
        return value if isinstance(value, dict) else {}

    def _only_model(self) -> str:
        index = self.client.get_model_repository_index(**self._as_json())
        entries = index.get("models", []) if isinstance(index, dict) else index
        names = sorted({e["name"] for e in entries if e.get("state", "READY") == "READY"})
        if len(names) != 1:
            raise UserError(f"the Triton server at {self.url} serves {len(names)} ready models "
                            f"({', '.join(names) or 'none'}): name one")
        return names[0]

    def shape_problem(self, shape: tuple[int, ...]) -> str | None:
        """Why the model cannot take one input of ``shape`` (None if it can, as far as the
        server's metadata tells)."""
        if len(self.inputs) != 1:
            return f"model {self.model!r} has {len(self.inputs)} inputs; bench feeds one"
        want = self.inputs[0].shape
        if len(shape) != len(want):
            return f"input {self.inputs[0].name!r} has rank {len(want)} ({_fmt(want)}), got {_fmt(shape)}"
        for i, (g, w) in enumerate(zip(shape, want)):
            if w >= 0 and g != w:
                return f"input {self.inputs[0].name!r} dim {i} is fixed to {w} ({_fmt(want)}), got {g}"
        if self.max_batch_size and shape[0] > self.max_batch_size:
            return f"batch {shape[0]} is over the model's max_batch_size {self.max_batch_size}"
        return None

    def request(self, x: np.ndarray) -> Callable[[], dict[str, np.ndarray]]:
        """A call that sends ``x`` as the model's input and returns every output as numpy."""
        why = self.shape_problem(tuple(x.shape))
        if why:
            raise UserError(why)
        from tritonclient.utils import triton_to_np_dtype

        mod, spec = self.module, self.inputs[0]
        data = np.ascontiguousarray(x.astype(triton_to_np_dtype(spec.datatype), copy=False))
        inp = mod.InferInput(spec.name, list(data.shape), spec.datatype)
        kw = {"binary_data": True} if self.protocol == "http" else {}
        inp.set_data_from_numpy(data, **kw)
        outs = [mod.InferRequestedOutput(o.name, **kw) for o in self.outputs]
        client, model, names = self.client, self.model, [o.name for o in self.outputs]

        def call() -> dict[str, np.ndarray]:
            result = client.infer(model, [inp], outputs=outs)
            return {n: result.as_numpy(n) for n in names}

        return call


def _tensor(d: dict) -> ServedTensor:
    return ServedTensor(d["name"], d["datatype"], tuple(int(v) for v in d.get("shape", [])))


def _fmt(shape) -> str:
    return "x".join(str(d) if d >= 0 else "?" for d in shape)


def _message(e: BaseException) -> str:
    """tritonclient's InferenceServerException keeps its text in ``message()``."""
    msg = e.message() if callable(getattr(e, "message", None)) else None
    return (msg or first_line(e)).splitlines()[0] if (msg or "").strip() else first_line(e)
