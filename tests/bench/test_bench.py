"""``spp-deploy bench`` and the shared timer: real measurements on a tiny model (few iterations),
report contents, the plot file, and one-line errors for bad input."""

import csv
import json
import math
import struct
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from spp_deploy.bench import unavailable_reason
from spp_deploy.bench.workload import build_shapes, parse_size_range
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.timing import Latency, measure
from tiny import TINY



@pytest.fixture
def bench(cli):
    """``bench(*argv)``: ``spp-deploy bench --no-progress ARGV...`` -> (exit code, stdout, stderr)."""
    return lambda *argv: cli("bench", "--no-progress", *argv)


@pytest.fixture
def bench_report(bench, tmp_path):
    """``bench_report(*argv)``: ``bench(*argv, "--json", FILE)``, which must succeed -> (stderr,
    the JSON report it wrote)."""

    def run(*argv):
        j = tmp_path / "r.json"
        code, out, err = bench(*argv, "--json", str(j))
        assert code == 0, err
        return err, json.loads(j.read_text())

    return run


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("spp-deploy: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---- timer -------------------------------------------------------------------------------------

def test_latency_stats_match_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.0, 6.0, 9.0, 8.0]
    lat = Latency(samples)
    assert lat.min == 1.0 and lat.max == 10.0 and lat.median == 5.5 and lat.mean == 5.5
    assert lat.p90 == pytest.approx(np.percentile(samples, 90))
    assert lat.p99 == pytest.approx(np.percentile(samples, 99))
    assert lat.min <= lat.median <= lat.p90 <= lat.p99 <= lat.max
    assert lat.cv == pytest.approx(np.std(samples) / np.mean(samples))
    assert lat.noisy  # CV ~52%
    assert not Latency([2.0, 2.02, 1.98]).noisy
    assert lat.throughput(8) == pytest.approx(8 * 1000 / 5.5)
    s = lat.summary(batch=4)
    assert s["iterations"] == 10 and s["throughput_per_s"] == pytest.approx(4000 / 5.5)
    with pytest.raises(ValueError, match=r"percentile must be in \[0, 100\], got 101"):
        lat.percentile(101)


def test_measure_count_duration_and_timed_warmup(monkeypatch):
    calls = []
    lat = measure(lambda: calls.append(1), warmup=2, iterations=7)
    assert lat.count == 7 and lat.warmup_runs == 2 and len(calls) == 9 and lat.clock == "host"
    # The time-based limits on a fake clock where each call takes exactly 0.25 s (a real clock
    # would make the counts depend on the machine's load).
    from spp_deploy.runtime import timing

    clock = [0.0]

    def call():
        clock[0] += 0.25

    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    lat = measure(call, warmup=0, iterations=1, duration_s=1.0)
    assert lat.count == 4 and lat.samples_ms == [250.0] * 4 and lat.total_s == 1.0 and lat.warmup_runs == 0
    lat = measure(call, warmup=1, iterations=3, warmup_time_s=0.5)
    assert lat.warmup_runs == 2 and lat.warmup_s == 0.5 and lat.count == 3 and lat.total_s == 0.75
    assert measure(call, 0, 1, duration_s=10, max_iterations=5).count == 5
    ticks = []
    measure(call, 0, 4, progress=ticks.append)
    assert ticks == [1, 2, 3, 4]
    lat = measure(call, 1, 3, duration_s=1.0)
    assert lat.warmup_runs == 1 and lat.count == 4


def test_size_range_and_shape_building():
    assert parse_size_range("100:200:3") == [(100, 100), (150, 150), (200, 200)]
    assert parse_size_range("64:64") == [(64, 64)]
    assert build_shapes(None, [(10, 20), (30, 40)], [1, 8], 3, None) == [
        (1, 3, 10, 20), (1, 3, 30, 40), (8, 3, 10, 20), (8, 3, 30, 40)]
    assert build_shapes([(2, 3, 5, 5)], None, [1, 4], 3, None) == [(1, 3, 5, 5), (4, 3, 5, 5)]
    for bad in ("10", "a:b", "20:10", "0:10:2", "1:2:3:4"):
        with pytest.raises(UserError):
            parse_size_range(bad)


# ---- the command --------------------------------------------------------------------------------

def test_bench_json_csv_plot(tmp_path, bench, tiny_onnx):
    j, c, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "lat.png"
    code, out, err = bench("--model", TINY, "--onnx", str(tiny_onnx), "--backends", "torch,ort-cpu",
                           "--sizes", "16x16,40x24", "--batch", "1,2", "--iterations", "4", "--warmup", "1",
                           "--threads", "1", "--json", str(j), "--csv", str(c), "--plot", str(png))
    assert code == 0, err
    data = json.loads(j.read_text())
    res = data["results"]
    assert len(res) == 2 * 4  # backends x (sizes x batches)
    assert {(r["backend"], tuple(r["shape"])) for r in res} == {
        (b, (n, 3, h, w)) for b in ("torch", "ort-cpu") for n in (1, 2) for h, w in ((16, 16), (40, 24))}
    assert data["config"]["iterations"] == 4 and data["machine"]["threads"] == 1
    assert data["unavailable_backends"] == []
    for r in res:
        assert r["status"] == "ok" and r["iterations"] == 4 and r["warmup_runs"] == 1 and r["threads"] == 1
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["min_ms"] <= r["mean_ms"] <= r["max_ms"]
        assert r["throughput_per_s"] == pytest.approx(r["batch"] * 1000 / r["mean_ms"])
        assert r["megapixels"] == pytest.approx(r["height"] * r["width"] / 1e6)
        assert r["noisy"] == (r["cv"] > 0.10)
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == len(res)
    assert [float(r["median_ms"]) for r in rows] == pytest.approx([r["median_ms"] for r in res])
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width >= 600 and height >= 400
    # the summary table names every row
    assert "Performance summary" in out and out.count("ort-cpu") >= 4 and "1x3x40x24" in out
    assert f"wrote {j}" in out


def test_bench_exports_a_temporary_onnx(bench, bench_report):
    _, data = bench_report("--model", TINY, "--backends", "ort-cpu", "--shapes", "1x3x20x20",
                           "--iterations", "2", "--duration", "0.02")
    assert data["onnx"] is None and len(data["results"]) == 1
    assert data["results"][0]["status"] == "ok" and data["results"][0]["iterations"] >= 2


def test_unknown_backend(bench):
    code, out, err = bench("--model", TINY, "--backends", "torch,onnxruntime")
    assert code == 2
    assert "unknown backend 'onnxruntime'" in one_error_line(err) and "ort-cpu" in err


@pytest.mark.skipif(unavailable_reason("ort-cuda") is None, reason="this machine has CUDA for ONNX Runtime")
def test_unavailable_backend_skipped_or_strict(bench, bench_report, tiny_onnx):
    args = ["--model", TINY, "--onnx", str(tiny_onnx), "--backends", "ort-cpu,ort-cuda", "--shapes", "1x3x16x16",
            "--iterations", "2"]
    err, data = bench_report(*args)
    assert "skipping backend ort-cuda" in err and "CUDAExecutionProvider" in err
    assert [u["backend"] for u in data["unavailable_backends"]] == ["ort-cuda"]
    assert "CUDAExecutionProvider" in data["unavailable_backends"][0]["reason"]
    assert [r["backend"] for r in data["results"]] == ["ort-cpu"]
    code, out, err = bench(*args, "--strict")
    assert code == 2
    line = one_error_line(err)
    assert "ort-cuda" in line and "CUDAExecutionProvider" in line


def test_trt_backend_says_why_it_is_unavailable(bench):
    why = unavailable_reason("trt")
    if why is None:
        pytest.skip("TensorRT is usable here")
    code, out, err = bench("--model", TINY, "--backends", "trt", "--shapes", "1x3x16x16", "--iterations", "1")
    assert code == 2
    assert "no backend can run here" in one_error_line(err) and why in err


def test_shapes_the_model_cannot_take(bench, bench_report, tiny_onnx):
    args = ["--model", TINY, "--onnx", str(tiny_onnx), "--backends", "torch,ort-cpu", "--sizes", "2x2,16x16",
            "--iterations", "2"]
    err, report = bench_report(*args)
    assert "skipping shape 1x3x2x2" in err
    res = report["results"]
    skipped = [r for r in res if r["status"] == "skipped"]
    assert len(res) == 4 and len(skipped) == 2
    assert all(r["shape"] == [1, 3, 2, 2] and "cannot take" in r["reason"] for r in skipped)
    code, out, err = bench(*args, "--strict")
    assert code == 2 and "1x3x2x2" in one_error_line(err)
    code, out, err = bench("--model", TINY, "--backends", "torch", "--sizes", "1x1,2x2")
    assert code == 2 and "cannot take any of the requested shapes" in one_error_line(err)
    code, out, err = bench("--model", TINY, "--backends", "torch", "--shapes", "1x5x16x16")
    assert code == 2 and "1x5x16x16" in one_error_line(err)


def test_fixed_size_onnx_skips_other_sizes(tmp_path, bench, bench_report):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0)], "g", [x], [y])
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), path)
    res = bench_report("--onnx", str(path), "--backends", "ort-cpu", "--shapes", "1x3x8x8,1x3x9x8",
                       "--iterations", "3")[1]["results"]
    by_shape = {tuple(r["shape"]): r for r in res}
    assert by_shape[(1, 3, 8, 8)]["status"] == "ok"
    assert by_shape[(1, 3, 9, 8)]["status"] == "skipped" and "fixed height of 8" in by_shape[(1, 3, 9, 8)]["reason"]
    # torch needs the PyTorch model
    code, out, err = bench("--onnx", str(path), "--backends", "torch", "--shapes", "1x3x8x8", "--strict")
    assert code == 2 and "--model" in one_error_line(err)


@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_unwritable_output_path(tmp_path, bench, flag):
    bad = tmp_path / "missing-dir" / "out.file"
    code, out, err = bench("--model", TINY, "--backends", "torch", "--shapes", "1x3x16x16", flag, str(bad))
    assert code == 2
    line = one_error_line(err)
    assert flag in line and "does not exist" in line and "Performance summary" not in out
    code, out, err = bench("--model", TINY, "--backends", "torch", "--shapes", "1x3x16x16", flag, str(tmp_path))
    assert code == 2 and "is a directory" in one_error_line(err)


@pytest.mark.parametrize("args, message", [
    (["--shapes", "1x3x16"], "expected 4 dims"),
    (["--sizes", "16x16", "--size-range", "8:16"], "not both"),
    (["--shapes", "1x3x16x16", "--sizes", "16x16"], "not both"),
    (["--size-range", "32:16"], "STOP"),
    (["--batch", "0"], ">= 1"),
    (["--iterations", "0"], "--iterations must be > 0"),
    (["--duration", "-1"], "--duration must be > 0"),
    (["--onnx", "no-such.onnx"], "ONNX file not found"),
])
def test_bad_arguments_one_line(bench, args, message):
    code, out, err = bench("--model", TINY, "--backends", "torch", *args)
    assert code == 2
    assert message in one_error_line(err)


def test_table_marks_noisy_and_skipped_rows():
    from rich.console import Console

    from spp_deploy.bench.core import BenchConfig, BenchRecord, BenchReport
    from spp_deploy.bench.report import summary_table

    cfg = BenchConfig(["torch"], [(1, 3, 8, 8), (1, 3, 2, 2)])
    rep = BenchReport("m", None, cfg, machine={"threads": 1})
    rep.records = [BenchRecord("torch", (1, 3, 8, 8), "ok", threads=1, stats=Latency([1.0, 1.0, 5.0]).summary()),
                   BenchRecord("torch", (1, 3, 2, 2), "skipped", "the model cannot take this shape: too small")]
    console = Console(width=200, record=True)
    console.print(summary_table(rep))
    text = console.export_text()
    assert "noisy" in text and "skipped" in text and not math.isnan(rep.records[0].stats["p99_ms"])
