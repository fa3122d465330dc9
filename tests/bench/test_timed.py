"""Timed calls (``bench/timed.py``): a CUDA graph capture that TensorRT breaks falls back, reported."""

import torch


def test_cuda_graph_capture_failure_falls_back(monkeypatch):
    """A capture TensorRT breaks (it syncs to read the NaN If's condition) is reported, not fatal."""
    import contextlib

    from spp_deploy.bench import timed

    @contextlib.contextmanager
    def capturing(graph, stream=None):
        yield
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", capturing)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    calls = []
    graph, why = timed.capture_cuda_graph(lambda: calls.append(1), stream=None)
    assert graph is None and "not permitted when stream is capturing" in why and calls == [1]
