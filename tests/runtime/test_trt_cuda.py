"""The GPU's identity from the CUDA driver without torch CUDA (``runtime/trt/cuda.py``): engines are
cached per GPU."""

import torch


class FakeDriver:
    """libcuda's identity calls as the ctypes code makes them (byref arguments, bytes buffers)."""

    def __init__(self, name=b"NVIDIA H100 80GB HBM3", cc=(9, 0), init_rc=0):
        self.name, self.cc, self.init_rc = name, cc, init_rc

    def cuInit(self, flags): return self.init_rc
    def cuDeviceGet(self, dev, ordinal): dev._obj.value = ordinal; return 0

    def cuDeviceGetName(self, buf, n, dev):
        buf.value = self.name
        return 0

    def cuDeviceGetAttribute(self, out, attr, dev):
        out._obj.value = {75: self.cc[0], 76: self.cc[1]}[attr]
        return 0


def test_gpu_identity_through_the_cuda_driver(monkeypatch):
    """With a CPU torch the GPU still comes from the driver (engines cache per GPU)."""
    from spp_deploy.runtime.trt import common as trt_common, cuda as cuda_driver

    h100 = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert cuda_driver.driver_gpu_identity(FakeDriver()) == h100
    assert cuda_driver.driver_gpu_identity(FakeDriver(init_rc=100)) is None  # CUDA_ERROR_NO_DEVICE
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(cuda_driver._STATE, "lib", FakeDriver(b"NVIDIA A10", (8, 6)))
    assert trt_common.gpu_identity() == {"name": "NVIDIA A10", "compute_capability": "8.6"}
    monkeypatch.setitem(cuda_driver._STATE, "lib", None)  # no libcuda at all
    assert trt_common.gpu_identity()["compute_capability"] == "0.0"
