"""TensorRT optimisation profiles (``runtime/trt/profiles.py``): trtexec's shape syntax, checks against
the model, and the message for a shape outside the profile."""

import onnx
import pytest

from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import profiles


def test_parse_shape_spec_trtexec_syntax():
    assert profiles.parse_shape_spec("input:1x3x64x64") == {"input": (1, 3, 64, 64)}
    assert profiles.parse_shape_spec("a:1x2, b:3") == {"a": (1, 2), "b": (3,)}
    assert profiles.parse_shape_spec("ns:in:2x4") == {"ns:in": (2, 4)}
    for bad, msg in [("1x3x64x64", "expected name:dims"), ("x:1x0", ">= 1"), ("x:1xax3", "bad dims"),
                     ("x:1,x:2", "given twice"), ("", "empty")]:
        with pytest.raises(UserError, match=msg):
            profiles.parse_shape_spec(bad)


def test_make_profile_checks_against_the_model(files):
    m = onnx.load(files["standard"])
    p = profiles.make_profile(m, "input:1x512x8x8", "input:2x512x16x16", "input:4x512x64x64")
    assert p.shapes["input"] == ((1, 512, 8, 8), (2, 512, 16, 16), (4, 512, 64, 64))
    assert profiles.make_profile(m, None, "input:1x512x16x16", None).shapes["input"][0] == (1, 512, 16, 16)
    cases = [
        (("x:1x512x8x8", "x:1x512x8x8", "x:1x512x8x8"), "names input 'x'"),
        (("input:1x512x8", "input:1x512x8", "input:1x512x8"), "has rank 3"),
        (("input:1x3x8x8", "input:1x3x8x8", "input:1x3x8x8"), "dim 1 is fixed to 512"),
        (("input:1x512x64x8", "input:1x512x16x16", "input:1x512x32x32"), "min <= opt <= max"),
        ((None, None, None), "dynamic dims"),
        (("input:1x512x8x8", None, None), "both a min and a max shape"),
    ]
    for (mn, op, mx), msg in cases:
        with pytest.raises(UserError, match=msg):
            profiles.make_profile(m, mn, op, mx)


def test_shape_outside_profile_message():
    assert profiles.shape_outside_profile("input", (1, 3, 64, 64), (1, 3, 32, 32), (4, 3, 128, 128)) is None
    why = profiles.shape_outside_profile("input", (1, 3, 300, 64), (1, 3, 32, 32), (4, 3, 128, 128))
    assert "outside the engine's profile [1x3x32x32 .. 4x3x128x128] (dim 2: 300 not in 32..128)" in why
    assert "rank 3" in profiles.shape_outside_profile("input", (3, 64, 64), (1, 3, 32, 32), (4, 3, 128, 128))
