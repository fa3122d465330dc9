"""Engine metadata (``runtime/trt/metadata.py``): saved beside the engine, and a mismatch with this
TensorRT or GPU said in words."""

from spp_deploy.runtime.trt import metadata


def test_engine_metadata_mismatch(tmp_path):
    meta = metadata.EngineMeta("10.16.0", "NVIDIA H100", "9.0", "fp32", [], "00")
    eng = tmp_path / "m.engine"
    meta.save(eng)
    back = metadata.EngineMeta.load(eng)
    assert back.tensorrt == "10.16.0" and back.compute_capability == "9.0"
    assert metadata.engine_mismatch(back, "10.16.0", {"name": "NVIDIA H100", "compute_capability": "9.0"}) is None
    assert "built with TensorRT 10.16.0, this is TensorRT 11.1.0" in metadata.engine_mismatch(back, "11.1.0", {"compute_capability": "9.0"})
    assert "compute capability 9.0" in metadata.engine_mismatch(back, "10.16.0", {"name": "A10", "compute_capability": "8.6"})
