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

from ..errors import UserError

BACKENDS = {
    "torch": "PyTorch eager, CPU",
    "torch-cuda": "PyTorch eager, CUDA",
    "ort-cpu": "ONNX Runtime, CPUExecutionProvider",
    "ort-cuda": "ONNX Runtime, CUDAExecutionProvider",
    "ort-trt": "ONNX Runtime, TensorrtExecutionProvider",
    "trt": "TensorRT engine (spp_deploy.runtime.trt_runner)",
}
GPU_BACKENDS = {"torch-cuda", "ort-cuda", "ort-trt", "trt"}
ORT_PROVIDER = {"ort-cpu": "cpu", "ort-cuda": "cuda", "ort-trt": "trt"}
_EP = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "trt": "TensorrtExecutionProvider"}


class BackendUnavailable(UserError):
    """A known backend that cannot run here (reason in the message)."""


def parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in (text or "").split(",") if b.strip()]
    if not names:
        raise UserError("--backends is empty (known: " + ", ".join(BACKENDS) + ")")
    for b in names:
        if b not in BACKENDS:
            raise UserError(f"unknown backend {b!r} (known: {', '.join(BACKENDS)})")
    return list(dict.fromkeys(names))


def _torch_cuda_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__} (torch.cuda.is_available() is False)"
    return None


def unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run on this machine, or None if it can (as far as can be told
    before loading a model)."""
    if backend == "torch":
        return None
    if backend == "torch-cuda":
        return _torch_cuda_reason()
    if backend in ORT_PROVIDER:
        try:
            import onnxruntime as ort
        except Exception as e:
            return f"onnxruntime cannot be imported ({type(e).__name__}: {e}); pip install onnxruntime"
        ep = _EP[ORT_PROVIDER[backend]]
        have = ort.get_available_providers()
        if ep not in have:
            pkg = "onnxruntime-gpu" if backend == "ort-cuda" else "onnxruntime-gpu built with TensorRT, and TensorRT"
            return f"onnxruntime {ort.__version__} has no {ep} (available: {', '.join(have)}; needs {pkg})"
        return None
    if backend == "trt":
        if importlib.util.find_spec("spp_deploy.runtime.trt_runner") is None:
            return "spp_deploy.runtime.trt_runner is not part of this install"
        if importlib.util.find_spec("tensorrt") is None:
            return "TensorRT (the tensorrt Python package) is not installed; pip install -e '.[tensorrt]'"
        return _torch_cuda_reason()
    raise UserError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")


@dataclass
class Variant:
    """One timed way to run an inference."""

    fn: Callable[[], object]
    transfers: str | None = None  # "with" / "without" host<->device copies; None on CPU
    clock: str = "host"  # "host" or "cuda-event"


class Backend:
    """Open with ``with``; ``variants(x)`` gives the timed calls for input ``x``."""

    def __init__(self, name: str, model=None, onnx_path: Path | None = None, threads: int | None = None,
                 cuda_graph: bool = False) -> None:
        self.name, self.model, self.onnx_path, self.threads, self.cuda_graph = name, model, onnx_path, threads, cuda_graph
        self._runner = None
        self._state: dict = {}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Backend":
        try:
            self._open()
        except UserError as e:
            raise BackendUnavailable(str(e)) from e
        except Exception as e:
            raise BackendUnavailable(_first_line(e)) from e
        return self

    def __exit__(self, *exc) -> None:
        if self._runner is not None and hasattr(self._runner, "__exit__"):
            self._runner.__exit__(None, None, None)
        self._runner, self._state = None, {}

    def _open(self) -> None:
        if self.name in ("torch", "torch-cuda"):
            if self.model is None:
                raise UserError(f"backend {self.name} needs --model")
            if self.name == "torch-cuda":
                import copy

                self._state["model"] = copy.deepcopy(self.model).cuda().eval()
            else:
                self._state["model"] = self.model.eval()
        elif self.name in ORT_PROVIDER:
            self._open_ort(ORT_PROVIDER[self.name])
        elif self.name == "trt":
            mod = importlib.import_module("spp_deploy.runtime.trt_runner")
            runner_cls = getattr(mod, "TrtRunner")
            self._runner = runner_cls(str(self.onnx_path))
            self._runner.__enter__()
        else:  # pragma: no cover - parse_backends rejects these
            raise UserError(f"unknown backend {self.name!r}")

    def _open_ort(self, provider: str) -> None:
        from ..runtime.ort_runner import OrtRunner

        runner = OrtRunner(self.onnx_path, provider, self.threads)
        if self.cuda_graph and provider != "cpu":
            # CUDA graphs need provider options OrtRunner does not take: build the session here.
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            if self.threads:
                opts.intra_op_num_threads = self.threads
            key = {"cuda": ("CUDAExecutionProvider", "enable_cuda_graph", "1"),
                   "trt": ("TensorrtExecutionProvider", "trt_cuda_graph_enable", "True")}[provider]
            providers = [(key[0], {key[1]: key[2]})] + [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                                                          if p != key[0]]
            runner.session = ort.InferenceSession(str(self.onnx_path), opts, providers=providers)
        else:
            runner.activate()
        self._runner = runner

    # -- timed calls -----------------------------------------------------------------------
    def variants(self, x: np.ndarray) -> Iterator[Variant]:
        if self.name == "torch":
            yield self._torch_cpu(x)
        elif self.name == "torch-cuda":
            yield from self._torch_cuda(x)
        elif self.name == "ort-cpu":
            yield self._ort_plain(x, None)
        elif self.name in ("ort-cuda", "ort-trt"):
            yield from self._ort_gpu(x)
        elif self.name == "trt":
            yield self._trt(x)

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

        def with_copies():
            with torch.inference_mode():
                return model(torch.from_numpy(x).cuda(non_blocking=False)).cpu()

        def without():
            with torch.inference_mode():
                return model(xd)

        yield Variant(with_copies, "with", "cuda-event")
        yield Variant(without, "without", "cuda-event")

    def _input_output(self) -> tuple[str, list[str]]:
        sess = self._runner.session
        return sess.get_inputs()[0].name, [o.name for o in sess.get_outputs()]

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

    def _trt(self, x: np.ndarray) -> Variant:
        runner = self._runner
        feed_name = next(iter(runner.input_specs()))

        def run():
            return runner.infer({feed_name: x})

        return Variant(run, "with")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
