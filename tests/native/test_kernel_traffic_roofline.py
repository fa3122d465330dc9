"""benchmarks/kernel_traffic.py's roofline and shared-memory columns, on a real emulated case: the
floor is the input read once and the output written once, the times scale with each GPU's peak
bandwidth, and the --json record is valid JSON (a case without shared memory gives null, not NaN)."""

from __future__ import annotations

import json

import pytest
from native_checks import load_benchmark

from spp_deploy.native import traffic as tr

LEVELS = [6, 3, 2, 1]


@pytest.fixture(scope="module")
def kernel_traffic():
    return load_benchmark("kernel_traffic")


def _case(kernel_traffic, name: str) -> tuple[str, str, dict]:
    (case,) = [c for c in kernel_traffic.cases(LEVELS, 10, batch=1) if c[1] == name]
    return case


@pytest.mark.parametrize("name,dtype_bytes", [("1x256x13x13 adaptive max fp32", 4),
                                               ("1x256x13x13 adaptive max fp16", 2)])
def test_roofline_floor_is_input_once_plus_output_once(kernel_traffic, emulib, name, dtype_bytes, capsys):
    kernel, _, args = _case(kernel_traffic, name)
    status, t, banks = kernel_traffic.run_case(kernel, args, LEVELS, {"whole_image": emulib})
    assert status == "ok"
    rec = kernel_traffic.record(kernel, name, args, LEVELS, t, banks, 0.0)
    b, c, h, w = args["size"]
    sectors = lambda nbytes: -(-nbytes // tr.SECTOR_BYTES)
    ideal = (sectors(b * c * h * w * dtype_bytes) + sectors(b * c * sum(n * n for n in LEVELS) * dtype_bytes))
    assert rec["bytes_unique"] == ideal * tr.SECTOR_BYTES
    assert rec["bytes_moved"] >= rec["bytes_unique"]
    gpus = list(tr.PEAK_DRAM_GBPS)
    assert gpus == ["H100 SXM", "A100 80GB", "L4", "T4"]
    for g in gpus:
        assert 0 < rec["roofline_floor_us"][g] <= rec["roofline_us"][g]
        # time x bandwidth is the traffic, the same for every GPU
        assert rec["roofline_floor_us"][g] * tr.PEAK_DRAM_GBPS[g] == pytest.approx(
            rec["roofline_floor_us"]["H100 SXM"] * tr.PEAK_DRAM_GBPS["H100 SXM"])
    us = rec["roofline_us"]
    assert us["L4"] > us["T4"] > us["A100 80GB"] > us["H100 SXM"]
    assert rec["shared_requests"] == banks.requests
    assert rec["shared_bank_conflicts_per_request"] == banks.bank_conflicts / banks.requests
    kernel_traffic.print_roofline([rec, {"kernel": kernel, "case": "skipped", "status": "illegal size"}])
    table = capsys.readouterr().out
    assert name in table and "skipped" not in table and f"{rec['bytes_unique'] / 1e6:.2f}.." in table


def test_json_record_without_shared_memory_is_null_not_nan(kernel_traffic, emulib):
    """A launch without shared-memory requests has no conflicts-per-request number: null in the JSON."""
    name = "1x256x13x13 adaptive avg fp32"
    kernel, _, args = _case(kernel_traffic, name)
    status, t, _ = kernel_traffic.run_case(kernel, args, LEVELS, {"whole_image": emulib})
    assert status == "ok"
    no_shared = tr.BankConflicts(0, 0, 0, 0)
    rec = kernel_traffic.record(kernel, name, args, LEVELS, t, no_shared, 0.0)
    text = json.dumps(kernel_traffic.finite(rec), allow_nan=False)
    rec = json.loads(text)
    assert rec["shared_bank_conflicts_per_request"] is None and rec["shared_requests"] == 0
    assert rec["load_efficiency"] == t.load_efficiency
