"""Typing and precision decided before the build (``runtime/trt/precision.py``)."""

import pytest

from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import precision


def test_plan_precision_decides_from_typing():
    assert precision.plan_precision(10, True, False, True) == precision.PrecisionPlan(False, True, "fp16")
    assert precision.plan_precision(10, True, False, False) == precision.PrecisionPlan(False, False, "fp32")
    p = precision.plan_precision(10, True, True, True)  # fp16 file: strongly typed, so no FP16 flag
    assert p.strongly_typed and not p.fp16_flag and p.precision == "fp16" and "--fp16 ignored" in p.note
    assert precision.plan_precision(11, False, True, False) == precision.PrecisionPlan(True, False, "fp16")
    with pytest.raises(UserError, match="fp16 needs an fp16 ONNX"):
        precision.plan_precision(11, False, False, True)
