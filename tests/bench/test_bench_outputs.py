"""``bench --save-outputs``: each backend's outputs of one more, untimed run per shape, as a
Polygraphy RunResults whose iteration i belongs to ``--save-inputs``' iteration i; loaded here
with the real polygraphy package and checked against the model on those inputs."""

import numpy as np
import pytest
import tiny
import torch

polygraphy_json = pytest.importorskip("polygraphy.json")
from polygraphy.comparator import RunResults

from spp_deploy.sources.outputs import to_numpy


def test_bench_saves_each_backends_outputs_per_shape(tmp_path, cli, tiny_onnx):
    code, out, err = cli("bench", "--model", tiny.TINY, "--onnx", tiny_onnx, "--backends", "torch,ort-cpu",
                         "--shapes", "1x3x16x16,2x3x9x13", "--iterations", "2", "--warmup", "0", "--seed", "4",
                         "--save-inputs", tmp_path / "in.json", "--save-outputs", tmp_path / "out.json")
    assert code == 0, err
    assert f"outputs written to {tmp_path / 'out.json'}" in out
    feeds = polygraphy_json.load_json(str(tmp_path / "in.json"))
    assert [f["input"].shape for f in feeds] == [(1, 3, 16, 16), (2, 3, 9, 13)]
    results = dict(RunResults.load(str(tmp_path / "out.json")).items())
    assert sorted(results) == ["ort-cpu", "torch"]
    model = tiny.tiny_model().eval()
    for runner, iterations in results.items():
        assert len(iterations) == len(feeds)
        for feed, it in zip(feeds, iterations):
            with torch.no_grad():
                want = to_numpy(model(torch.from_numpy(feed["input"])))
            assert sorted(it.keys()) == sorted(want)
            for name, ref in want.items():
                np.testing.assert_allclose(np.asarray(it[name]), ref, rtol=1e-5, atol=1e-6, err_msg=runner)


def test_bench_without_save_outputs_runs_no_extra_inference(tmp_path, cli, tiny_onnx, monkeypatch):
    from spp_deploy.bench import timed

    calls = []
    real = timed.Backend.outputs
    monkeypatch.setattr(timed.Backend, "outputs", lambda self, x: calls.append(x.shape) or real(self, x))
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--shapes", "1x3x9x9",
                         "--iterations", "1", "--warmup", "0")
    assert code == 0 and calls == [] and "outputs written" not in out, err
    code, out, err = cli("bench", "--onnx", tiny_onnx, "--backends", "ort-cpu", "--shapes", "1x3x9x9",
                         "--iterations", "1", "--warmup", "0", "--save-outputs", tmp_path / "o.json")
    assert code == 0 and calls == [(1, 3, 9, 9)], err


def test_python_benchmark_keeps_the_outputs_when_asked(tiny_onnx):
    from spp_deploy import benchmark

    shapes = [(1, 3, 12, 12)]
    report = benchmark(onnx=tiny_onnx, backends=["ort-cpu"], shapes=shapes, iterations=1, warmup=0, outputs=True)
    ((shape, outs),) = report.outputs["ort-cpu"].items()
    with torch.no_grad():
        want = to_numpy(tiny.tiny_model()(torch.from_numpy(report.inputs[shape])))
    assert shape == shapes[0] and sorted(outs) == sorted(want)
    for name, ref in want.items():
        np.testing.assert_allclose(outs[name], ref, rtol=1e-5, atol=1e-6)
    assert benchmark(onnx=tiny_onnx, backends=["ort-cpu"], shapes=shapes, iterations=1, warmup=0).outputs == {}
