"""``spp-deploy doctor`` lists every dependency, provider, GPU and the plugin library."""


def test_doctor_lists_everything(cli):
    code, out, _ = cli("doctor")
    assert code == 0
    for key in ("torch", "onnx", "onnxruntime", "providers", "tensorrt", "tritonclient", "CUDA", "GPU", "SPP plugin library"):
        assert key in out
