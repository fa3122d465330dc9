"""Validation (``runtime/validate.py``) without TensorRT: every zoo model in both spp-impl modes on
ONNX Runtime CPU, a wrong model caught, seeded size sweeps, tolerance parsing."""

import pytest

from spp_deploy.sources import zoo
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.validate import ValidateConfig, parse_tolerances, run_validation, sweep_shapes
from exports import MODES


def _two_sizes(name):
    B, C, H, W = zoo.get_entry(name).input_shape
    return [(1, C, H, W), (2, C, H + 3, W + 1)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", zoo.zoo_names())
def test_validate_every_zoo_model_on_ort_cpu(exported, name, mode):
    model = zoo.create(name)
    cfg = ValidateConfig(shapes=_two_sizes(name), backends=["ort-cpu"], onnx=exported[name, mode])
    report = run_validation(model, cfg)
    compared = [r for r in report.records if r.comparison is not None]
    assert compared, [r.skipped for r in report.records]  # the entry's own shape is always legal
    assert not report.failed(), [(r.shape, r.comparison) for r in report.failed()]
    for r in compared:
        assert r.comparison.cosine > 0.999999 and r.comparison.max_rel <= 1e-5


def test_validate_detects_a_wrong_model(exported):
    """Not vacuous: a different model (other weights) fails."""
    name = "sppnet-zf5"
    other = zoo.create(name, seed=1)
    report = run_validation(other, ValidateConfig(shapes=_two_sizes(name)[:1], backends=["ort-cpu"],
                                                  onnx=exported[name, "standard"]))
    assert len(report.failed()) == 1 and report.failed()[0].comparison.max_rel > 1e-2


def test_validate_size_range_is_seeded():
    a = sweep_shapes(3, None, (32, 64), 5, [1, 2], seed=7)
    assert a == sweep_shapes(3, None, (32, 64), 5, [1, 2], seed=7)
    assert (1, 3, 32, 32) in a and (2, 3, 64, 64) in a and len(a) == 10
    assert all(32 <= h <= 64 and 32 <= w <= 64 for _, _, h, w in a)
    assert sweep_shapes(3, [(4, 10, 11)], None, 0, [1, 2], 0) == [(4, 3, 10, 11)]


def test_tolerance_parsing():
    assert parse_tolerances("1e-3", "--atol") == {"*": 1e-3}
    assert parse_tolerances("output:1e-3,aux:0", "--atol") == {"output": 1e-3, "aux": 0.0}
    with pytest.raises(UserError, match="bad --rtol"):
        parse_tolerances("output:abc", "--rtol")
