"""The TensorRT runner (``runtime/trt/runner.py``): engines from another TensorRT refused; real
execution tests that skip with the install hint when TensorRT or a GPU is absent."""

import numpy as np
import pytest
import torch

from spp_deploy.sources import zoo
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import build, metadata
from spp_deploy.runtime.trt.common import INSTALL_HINT
from trt_cases import HAVE_TRT, NAME, PROF, fake_trt


def test_fake_runner_refuses_engine_from_other_tensorrt(tmp_path):
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "m.engine"
    eng.write_bytes(b"x")
    metadata.EngineMeta("10.3.0", "NVIDIA A10", "8.6", "fp32", [], "00").save(eng)
    with pytest.raises(UserError, match="built with TensorRT 10.3.0, this is TensorRT 10.16.0"):
        with TrtRunner(eng, trt=fake_trt("10.16.0")):
            pass
    with pytest.raises(UserError, match="engine file not found"):
        TrtRunner(tmp_path / "none.engine")


needs_trt = pytest.mark.skipif(not (HAVE_TRT and torch.cuda.is_available()),
                               reason=f"needs TensorRT and a CUDA GPU; TensorRT: {INSTALL_HINT}")


@needs_trt
@pytest.mark.parametrize("mode", ["standard"])
def test_trt_engine_matches_pytorch(files, tmp_path, mode):
    from spp_deploy.runtime.trt.runner import TrtRunner
    from spp_deploy.runtime.validate import ValidateConfig, run_validation

    eng = tmp_path / "m.engine"
    build.build_engine(files[mode], eng, use_cache=False, **PROF)
    rep = run_validation(zoo.create(NAME), ValidateConfig(shapes=[(1, 512, 16, 16), (2, 512, 21, 13), (1, 512, 64, 64)],
                                                          backends=["trt"], engine=eng))
    assert not rep.failed() and any(r.comparison for r in rep.records)
    assert any(r.skipped and "outside the engine's profile" in r.skipped for r in rep.records)
    with TrtRunner(eng) as r:
        with pytest.raises(UserError, match="outside the engine's profile"):
            r.infer({"input": np.zeros((1, 512, 64, 64), np.float32)})


@needs_trt
def test_trt_corrupt_engine_is_one_line(tmp_path):
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "bad.engine"
    eng.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="cannot load engine"):
        with TrtRunner(eng):
            pass


def test_empty_tensors_are_bound_to_a_real_buffer(tmp_path):
    """enqueueV3 refuses a null address, and an empty torch tensor's data_ptr() is 0."""
    from spp_deploy.runtime.trt.runner import TrtRunner

    eng = tmp_path / "m.engine"
    eng.write_bytes(b"engine")
    runner = TrtRunner(eng)
    empty = torch.empty(0, 5)
    assert empty.data_ptr() == 0
    a, b = runner.tensor_address(empty), runner.tensor_address(torch.empty(0, 3, 2))
    assert a != 0 and a == b  # one dummy buffer, reused
    full = torch.ones(2, 5)
    assert runner.tensor_address(full) == full.data_ptr()
