"""benchmarks/gpu_check.py's bandwidth report next to the emulator's traffic model: what runs
without a GPU (the report's arithmetic, the join with a kernel_traffic.py --json file made here from
a real emulated case, the refusal of a file that is not one, the Markdown section)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from native_checks import load_benchmark

LEVELS = [6, 3, 2, 1]
CASE = "1x256x13x13 adaptive max fp32"


@pytest.fixture(scope="module")
def gpu_check():
    return load_benchmark("gpu_check")


@pytest.fixture(scope="module")
def traffic_json(emulib, tmp_path_factory) -> Path:
    """kernel_traffic.py's --json file for one real whole-image case (and a case that did not run)."""
    kt = load_benchmark("kernel_traffic")
    (kernel, name, args), = [c for c in kt.cases(LEVELS, 10, batch=1) if c[1] == CASE]
    status, t, banks = kt.run_case(kernel, args, LEVELS, {"whole_image": emulib})
    assert status == "ok"
    records = [kt.record(kernel, name, args, LEVELS, t, banks, 0.0),
               {"kernel": "whole_image", "case": "1x256x13x13 floor_kernel max fp32", "status": "illegal size: ..."}]
    path = tmp_path_factory.mktemp("traffic") / "kernel_traffic.json"
    path.write_text(json.dumps(kt.finite(records), allow_nan=False))
    return path


def test_join_finds_the_same_case_whatever_the_batch(gpu_check, traffic_json):
    model = gpu_check.load_traffic_model(traffic_json)
    assert [r["case"] for r in model] == [CASE]  # the case that did not run is dropped
    for shape in [(1, 256, 13, 13), (64, 256, 13, 13)]:  # planes are independent: batch does not matter
        assert gpu_check.model_for(model, "spp", "float32", gpu_check.BENCH_LEVELS, shape, "max")["case"] == CASE
    assert gpu_check.model_for(model, "spp", "float32", gpu_check.BENCH_LEVELS, (64, 512, 64, 64), "max") is None
    assert gpu_check.model_for(model, "spp", "float32", gpu_check.BENCH_LEVELS, (1, 256, 13, 13), "avg") is None
    assert gpu_check.model_for(model, "spp", "float16", gpu_check.BENCH_LEVELS, (1, 256, 13, 13), "max") is None
    assert gpu_check.model_for(model, "window_spp", "float32", (1, 2, 3, 6)) is None
    assert gpu_check.model_for(None, "spp", "float32", gpu_check.BENCH_LEVELS, (1, 256, 13, 13), "max") is None
    other_batch = {**model[0], "case": "other batch", "size": [7, 256, 13, 13]}
    assert gpu_check.model_for([other_batch, model[0]], "spp", "float32", LEVELS, (1, 256, 13, 13), "max") is model[0]


def test_report_arithmetic(gpu_check, traffic_json):
    """GB/s from the bytes the kernel must move; a kernel as fast as a copy of those bytes is 1.0 of
    it; the model predicts ideal bytes / bytes in every request's sectors."""
    (model,) = gpu_check.load_traffic_model(traffic_json)
    nbytes = 256 * 13 * 13 * 4 + 256 * sum(n * n for n in LEVELS) * 4
    copy_ms = 0.004
    copy_gbs = nbytes / copy_ms / 1e6
    same = gpu_check.bandwidth_row("spp", "c", "1x256x13x13", "float32", copy_ms, nbytes, copy_ms, copy_gbs, 0.1, model)
    assert same.gb_s == pytest.approx(copy_gbs) and same.fraction_of_copy == pytest.approx(1.0)
    predicted = model["bytes_unique"] / model["bytes_moved"]
    assert 0 < predicted <= 1  # a kernel never moves fewer bytes than the unique sectors it touches
    assert same.model_fraction_of_copy == predicted and same.measured_over_model == pytest.approx(1 / predicted)
    assert same.model_load_efficiency == model["load_efficiency"] and same.model_case == CASE
    slow = gpu_check.bandwidth_row("spp", "c", "1x256x13x13", "float32", 4 * copy_ms, nbytes, copy_ms, copy_gbs, 0.1)
    assert slow.fraction_of_copy == pytest.approx(0.25) and slow.gb_s == pytest.approx(copy_gbs / 4)
    assert slow.model_case == "" and slow.measured_over_model is None

    rep = gpu_check.Report(environment={"gpu": "none"}, bench=[same, slow])
    md = gpu_check.to_markdown(rep)
    assert "emulator's traffic model" in md and CASE in md and f"{predicted:.4g}" in md
    assert "emulator's traffic model" not in gpu_check.to_markdown(gpu_check.Report(bench=[slow]))


@pytest.mark.parametrize("content,why", [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ('{"kernel": "x"}', "not a kernel_traffic.py --json report"),
    ('[{"kernel": "window", "case": "w", "status": "ok", "dtype": "fp32"}]', "case 'w' lacks bytes_moved"),
])
def test_a_bad_traffic_file_is_one_line_and_nothing_runs(gpu_check, tmp_path, capsys, content, why):
    path = tmp_path / "traffic.json"
    if content is not None:
        path.write_text(content)
    code = gpu_check.main(["--out", str(tmp_path / "rep"), "--traffic-json", str(path), "--plan"])
    err = capsys.readouterr()
    assert code == 2 and err.out == ""
    assert len(err.err.strip().splitlines()) == 1 and why in err.err and str(path) in err.err
    assert not (tmp_path / "rep").exists()


def test_plan_says_how_many_model_cases(gpu_check, traffic_json, tmp_path, capsys):
    code = gpu_check.main(["--out", str(tmp_path / "rep"), "--traffic-json", str(traffic_json), "--plan",
                           "--skip-trt"])
    assert code == 0 and f"traffic model: 1 case(s) from {traffic_json}" in capsys.readouterr().out
