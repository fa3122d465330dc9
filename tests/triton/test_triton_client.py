"""`spp-deploy bench --backends triton-http,triton-grpc`: the real ``tritonclient`` calls, over
real sockets, against a local stand-in server (tests/support/triton_standin.py: KServe v2 over gRPC and
HTTP, models run by ONNX Runtime) serving a repository written by `spp-deploy triton`. No real
tritonserver runs here: what Triton itself does (dynamic batching, its backends) is not tested."""

import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("tritonclient", reason="tritonclient (the triton extra) is not installed")
pytest.importorskip("grpc", reason="grpcio (tritonclient[grpc]) is not installed: the stand-in serves gRPC with it")

from tiny import export_tiny  # noqa: E402
from spp_deploy.bench.triton_client import TritonModel, grpc_url_for  # noqa: E402
from spp_deploy.util.errors import UserError  # noqa: E402

HAVE_HTTP = importlib.util.find_spec("geventhttpclient") is not None
PROTOCOLS = ["grpc", pytest.param("http", marks=pytest.mark.skipif(
    not HAVE_HTTP, reason="geventhttpclient (tritonclient[http]) is not installed"))]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(stand-in server, {mode: source ONNX}) serving models 'standard' (max batch 2) and 'plugin'."""
    from spp_deploy.cli import main
    from triton_standin import StandIn

    d = tmp_path_factory.mktemp("triton-client")
    src = export_tiny(d, {mode: {"spp_impl": mode} for mode in ("standard", "plugin")})
    repo = str(d / "repo")
    assert main(["triton", "-o", repo, "--name", "standard", "--onnx", str(src["standard"]), "--max-batch", "2"]) == 0
    assert main(["triton", "-o", repo, "--name", "plugin", "--onnx", str(src["plugin"])]) == 0
    with StandIn(d / "repo") as server:
        yield server, src


def url(server, protocol):
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mode", ["standard", "plugin"])
def test_client_returns_the_served_models_outputs(served, protocol, mode):
    import onnxruntime as ort

    server, src = served
    x = np.random.default_rng(1).standard_normal((2, 3, 21, 17), dtype=np.float32)
    want = ort.InferenceSession(str(src[mode]), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with TritonModel(protocol, url(server, protocol), mode) as m:
        assert [(t.name, t.datatype, t.shape) for t in m.inputs] == [("input", "FP32", (-1, 3, -1, -1))]
        assert m.max_batch_size == (2 if mode == "standard" else 8)
        got = m.request(x)()
    np.testing.assert_array_equal(got["output"], want)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_refuses_what_the_model_cannot_take(served, protocol):
    server, _ = served
    with TritonModel(protocol, url(server, protocol), "standard") as m:
        assert "over the model's max_batch_size 2" in m.shape_problem((3, 3, 16, 16))
        assert "dim 1 is fixed to 3" in m.shape_problem((1, 4, 16, 16))
        assert "rank 4" in m.shape_problem((3, 16, 16))
        assert m.shape_problem((2, 3, 16, 16)) is None
    with pytest.raises(UserError, match="serves 2 ready models"):
        TritonModel(protocol, url(server, protocol)).__enter__()
    with pytest.raises(UserError, match="'nope' is not ready"):
        TritonModel(protocol, url(server, protocol), "nope").__enter__()


def test_bench_times_the_server_and_skips_shapes_it_refuses(served, cli, tmp_path):
    server, _ = served
    backends = "triton-grpc,triton-http" if HAVE_HTTP else "triton-grpc"
    out = tmp_path / "b.json"
    code, text, err = cli("bench", "--backends", backends, "--url", server.http_url, "--grpc-url", server.grpc_url,
                          "--triton-model", "standard", "--shapes", "1x3x16x16,2x3x20x24,3x3x16x16",
                          "--iterations", "3", "--warmup", "1", "--no-progress", "--json", out)
    assert code == 0, err
    rows = json.loads(out.read_text())["results"]
    assert {r["backend"] for r in rows} == set(backends.split(","))
    for r in rows:
        if r["batch"] == 3:
            assert r["status"] == "skipped" and "max_batch_size 2" in r["reason"]
        else:
            assert r["status"] == "ok" and r["iterations"] >= 3 and 0 < r["min_ms"] <= r["p99_ms"] <= r["max_ms"]
            assert r["threads"] is None  # the server's threads, not ours
    assert "triton-grpc" in text


def test_unreachable_server_is_skipped_or_refused_in_one_line(cli, tmp_path):
    code, _, err = cli("bench", "--backends", "triton-grpc", "--grpc-url", "127.0.0.1:1", "--shapes", "1x3x16x16",
                       "--strict", "--no-progress")
    assert code == 2 and err.count("\n") == 1 and "backend triton-grpc is not available" in err, err
    assert "127.0.0.1:1" in err
    code, _, err = cli("bench", "--backends", "triton-grpc", "--grpc-url", "127.0.0.1:1", "--shapes", "1x3x16x16",
                       "--no-progress")
    assert code == 2 and "no backend could run: triton-grpc: Triton server at 127.0.0.1:1" in err.splitlines()[-1], err


def test_triton_flags_need_a_triton_backend(cli):
    code, _, err = cli("bench", "--model", "zoo:sppnet-pytorch", "--backends", "torch", "--url", "localhost:8000")
    assert code == 2 and err.count("\n") == 1 and "--url is for the triton-http / triton-grpc backends" in err, err


def test_grpc_url_defaults_to_the_http_host():
    assert grpc_url_for("localhost:8000") == "localhost:8001"
    assert grpc_url_for("10.0.0.5:9000") == "10.0.0.5:8001"
    assert grpc_url_for("triton") == "triton:8001"
