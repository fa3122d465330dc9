"""Backends ``bench`` can time, their availability on this machine, and the timed calls.

Each backend opens once (session / engine / model) and then, per input array, yields one or two
*variants*: timed callables that run one inference. GPU backends give two, like trtexec: with
host<->device copies in every call, and without (input already on the device, output left there;
trtexec's --noDataTransfers). Heavy modules (onnxruntime, tensorrt, CUDA) are imported lazily.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..util.errors import UserError, first_line
from ..runtime.backends import BENCH_BACKENDS, REGISTRY, TRITON_BACKENDS
from ..runtime.backends import unavailable_reason as runtime_unavailable_reason

BACKENDS = {b: REGISTRY[b].description for b in BENCH_BACKENDS}
REMOTE_BACKENDS = set(TRITON_BACKENDS)  # a server does the work: no local device, no local threads
ORT_PROVIDER = {b: REGISTRY[b].variant for b in BENCH_BACKENDS if REGISTRY[b].needs == "onnx"}


class BackendUnavailable(UserError):
    """A known backend that cannot run here (reason in the message)."""


def parse_backends(text: str) -> list[str]:
    """The bench's backends (torch-cuda included), parsed like everywhere else."""
    from ..runtime.backends import parse_backends as _parse

    return _parse(text, known=tuple(BACKENDS))


def unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run on this machine, or None if it can: the runtime registry's
    answer, or for a Triton backend the client's."""
    if backend in TRITON_BACKENDS:
        from .triton_client import unavailable_reason as triton_reason

        return triton_reason(backend)
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    return runtime_unavailable_reason(backend)


@dataclass
class Variant:
    """One timed way to run an inference."""

    fn: Callable[[], object]
    transfers: str | None = None  # "with" / "without" host<->device copies; None on CPU
    clock: str = "host"  # "host" or "cuda-event"
    stream: object = None  # the CUDA stream the work goes to (cuda-event clock; None: torch's current)
    note: str | None = None  # said once and kept in the record (e.g. a CUDA graph that could not be captured)


class Backend:
    """Open with ``with``; ``variants(x)`` gives the timed calls for input ``x``."""

    def __init__(self, name: str, model=None, onnx_path: Path | None = None, threads: int | None = None,
                 cuda_graph: bool = False, engine: Path | None = None, plugin: Path | None = None,
                 shapes=(), workdir: Path | None = None, triton: dict | None = None) -> None:
        self.name, self.model, self.onnx_path, self.threads, self.cuda_graph = name, model, onnx_path, threads, cuda_graph
        self.triton = triton or {}  # url, grpc_url, model
        self.engine, self.plugin, self.shapes, self.workdir = engine, plugin, list(shapes), workdir
        self._runner = None
        self._state: dict = {}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Backend":
        try:
            self._open()
        except UserError as e:
            raise BackendUnavailable(str(e)) from e
        except Exception as e:
            raise BackendUnavailable(first_line(e)) from e
        return self

    def __exit__(self, *exc) -> None:
        if self._runner is not None and hasattr(self._runner, "__exit__"):
            self._runner.__exit__(None, None, None)
        self._runner, self._state = None, {}

    def _open(self) -> None:
        if REGISTRY[self.name].needs == "model":
            if self.model is None:
                raise UserError(f"backend {self.name} needs the PyTorch model")
            if self.name == "torch-cuda":
                import copy

                self._state["model"] = copy.deepcopy(self.model).cuda().eval()
            else:
                self._state["model"] = self.model.eval()
        elif self.name in ORT_PROVIDER:
            self._open_ort(ORT_PROVIDER[self.name])
        elif self.name == "trt":
            self._open_trt()
        elif self.name in TRITON_BACKENDS:
            self._open_triton()
        else:  # pragma: no cover - parse_backends rejects these
            raise UserError(f"unknown backend {self.name!r}")

    def _open_ort(self, provider: str) -> None:
        from ..runtime.ort_runner import OrtRunner

        runner = OrtRunner(self.onnx_path, provider, self.threads, plugin=self.plugin, cuda_graph=self.cuda_graph)
        runner.activate()
        self._runner = runner

    def _open_triton(self) -> None:
        from .triton_client import DEFAULT_HTTP_URL, PROTOCOLS, TritonModel, grpc_url_for

        protocol = PROTOCOLS[self.name]
        http_url = self.triton.get("url") or DEFAULT_HTTP_URL
        url = http_url if protocol == "http" else (self.triton.get("grpc_url") or grpc_url_for(http_url))
        self._runner = TritonModel(protocol, url, self.triton.get("model")).__enter__()

    def _open_trt(self) -> None:
        """A TensorRT engine: ``engine`` as given, or built from the ONNX file with one profile
        spanning every benchmarked shape (opt = the first)."""
        trt_runner = importlib.import_module("spp_deploy.runtime.trt.runner")
        engine = self.engine
        if engine is None:
            if self.onnx_path is None or not self.shapes:
                raise UserError("backend trt needs an engine file, or an ONNX file and shapes to build one")
            import tempfile

            import onnx

            from ..runtime.trt.build import build_engine

            name = onnx.load(str(self.onnx_path), load_external_data=False).graph.input[0].name
            lo = tuple(min(s[i] for s in self.shapes) for i in range(4))
            hi = tuple(max(s[i] for s in self.shapes) for i in range(4))
            spec = lambda dims: f"{name}:{'x'.join(map(str, dims))}"  # noqa: E731
            out = Path(self.workdir or tempfile.mkdtemp(prefix="spp-bench-")) / "bench.engine"
            engine = build_engine(self.onnx_path, out, min_shape=spec(lo), opt_shape=spec(self.shapes[0]),
                                  max_shape=spec(hi), plugin=self.plugin).path
        self._runner = trt_runner.TrtRunner(engine, plugin=self.plugin)
        self._runner.__enter__()

    def outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{output name: array} of one untimed run on ``x``, on the host (``bench --save-outputs``)."""
        if REGISTRY[self.name].needs == "model":
            import torch

            from ..sources.outputs import to_numpy

            xt = torch.from_numpy(np.ascontiguousarray(x))
            with torch.inference_mode():
                return to_numpy(self._state["model"](xt.cuda() if self.name == "torch-cuda" else xt))
        if self.name in TRITON_BACKENDS:
            return self._runner.request(x)()
        name, _ = self._input_output()
        return self._runner.infer({name: x})

    # -- timed calls -----------------------------------------------------------------------
    @property
    def clock(self) -> str:
        """The registry's clock for this backend's device-side runs ("host" or "cuda-event")."""
        return REGISTRY[self.name].timing

    def variants(self, x: np.ndarray) -> Iterator[Variant]:
        b = REGISTRY[self.name]  # what it runs and where decide the timed calls
        gpu = b.device == "gpu"
        if b.needs == "model":
            yield from self._torch_cuda(x) if gpu else (self._torch_cpu(x),)
        elif b.needs == "onnx":
            yield from self._ort_gpu(x) if gpu else (self._ort_plain(x, None),)
        elif b.needs == "engine":
            yield from self._trt(x)
        elif b.device == "remote":
            yield Variant(self._runner.request(x))

    def _torch_cpu(self, x: np.ndarray) -> Variant:
        import torch

        model, xt = self._state["model"], torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                return model(xt)

        return Variant(run)

    def _torch_cuda(self, x: np.ndarray) -> Iterator[Variant]:
        import torch

        model, xd = self._state["model"], torch.from_numpy(x).cuda()

        from ..sources.outputs import to_host

        def with_copies():
            with torch.inference_mode():  # every output back to the host (a tuple/dict output too)
                return to_host(model(torch.from_numpy(x).cuda(non_blocking=False)))

        def without():
            with torch.inference_mode():
                return model(xd)

        yield Variant(with_copies, "with", self.clock)
        yield Variant(without, "without", self.clock)

    def _input_output(self) -> tuple[str, list[str]]:
        return next(iter(self._runner.input_specs())), self._runner.output_names()

    def _ort_plain(self, x: np.ndarray, transfers: str | None) -> Variant:
        name, _ = self._input_output()
        sess, feed = self._runner.session, {name: x}
        return Variant(lambda: sess.run(None, feed), transfers)

    def _ort_gpu(self, x: np.ndarray) -> Iterator[Variant]:
        import onnxruntime as ort

        name, outs = self._input_output()
        sess = self._runner.session
        if not self.cuda_graph:  # CUDA graphs need fixed device buffers: no per-call copies
            yield self._ort_plain(x, "with")
        x_dev = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        binding = sess.io_binding()
        binding.bind_ortvalue_input(name, x_dev)
        for o in outs:
            binding.bind_output(o, "cuda", 0)

        def without():
            sess.run_with_iobinding(binding)  # synchronous: ORT syncs the EP stream at the end of Run

        self._state.setdefault("keep", []).append(x_dev)
        yield Variant(without, "without")

    def _trt(self, x: np.ndarray) -> Iterator[Variant]:
        """With copies: the runner's own ``infer`` (H2D, execute, D2H, sync). Without: device
        buffers bound once, ``execute_async_v3`` on the runner's stream (optionally replayed from
        a CUDA graph), timed with CUDA events on that stream."""
        import torch

        runner = self._runner
        feed_name = next(iter(runner.input_specs()))
        if not self.cuda_graph:
            yield Variant(lambda: runner.infer({feed_name: x}), "with")
        ctx, stream = runner.context, runner.stream
        x_dev = torch.from_numpy(np.ascontiguousarray(x)).cuda()
        if not ctx.set_input_shape(feed_name, tuple(x.shape)):
            raise UserError(f"TensorRT refused input shape {'x'.join(map(str, x.shape))}")
        ctx.set_tensor_address(feed_name, x_dev.data_ptr())
        keep = [x_dev]
        from ..runtime.trt.runner import trt_dtype_to_numpy

        for name in runner.output_names():
            dt = runner.engine.get_tensor_dtype(name)
            np_dt = trt_dtype_to_numpy(runner.trt, dt)
            t = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=getattr(torch, np_dt.name), device="cuda")
            ctx.set_tensor_address(name, t.data_ptr())
            keep.append(t)
        self._state.setdefault("keep", []).extend(keep)

        def execute():
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed (execute_async_v3 returned False)")

        execute()  # shape change: the first enqueue after it may allocate; keep it out of any graph
        stream.synchronize()
        fn, note = execute, None
        if self.cuda_graph:
            graph, why = capture_cuda_graph(execute, stream)
            if graph is not None:
                self._state.setdefault("graphs", []).append(graph)
                fn = graph.replay
            else:
                note = (f"CUDA graph capture of the TensorRT engine failed ({why}): timed without a graph "
                        "(standard-mode engines hold an If whose condition TensorRT reads on the host)")
        yield Variant(fn, "without", self.clock, stream, note)


def capture_cuda_graph(fn: Callable[[], object], stream) -> tuple[object | None, str | None]:
    """(graph, None) when ``fn`` can be captured on ``stream``, else (None, why). TensorRT
    synchronizes inside engines whose control flow depends on device data (the NaN ``If``), which
    ends a capture with an error: the stream is then usable again for plain launches."""
    import torch

    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, stream=stream):
            fn()
    except Exception as e:
        try:
            torch.cuda.synchronize()
        except Exception:
            pass
        return None, first_line(e)
    return graph, None

