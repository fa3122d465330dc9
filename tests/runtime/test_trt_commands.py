"""The TensorRT commands refuse bad input in one line before TensorRT is needed, and say when it
is not installed."""

import numpy as np
import pytest

from spp_deploy.runtime.trt.common import TensorRTMissing, import_tensorrt
from trt_cases import HAVE_TRT, NAME


def test_build_bad_inputs_are_one_line(files, tmp_path, cli):
    corrupt = tmp_path / "c.onnx"
    corrupt.write_bytes(b"\x00garbage\xff" * 5)
    prof = ["--min-shape", "input:1x512x8x8", "--opt-shape", "input:1x512x16x16", "--max-shape", "input:2x512x32x32"]
    cases = [
        ([corrupt, *prof], "not a valid ONNX file"),
        ([tmp_path / "none.onnx", *prof], "ONNX file not found"),
        ([files["plugin"], *prof], "plugin-mode file"),
        ([files["standard"], "--min-shape", "input:1x512x64x64", "--opt-shape", "input:1x512x16x16",
          "--max-shape", "input:2x512x32x32"], "min <= opt <= max"),
        ([files["standard"], "--opt-shape", "image:1x512x16x16"], "names input 'image'"),
        ([files["standard"], *prof, "--plugin", tmp_path / "nope.so"], "plugin library not found"),
    ]
    for argv, msg in cases:
        code, _, err = cli("build", *argv, "-o", tmp_path / "m.engine")
        assert code == 2 and msg in err and err.count("\n") == 1, (msg, err)
    assert not (tmp_path / "m.engine").exists()

@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed: the missing-TensorRT message cannot appear")
def test_tensorrt_commands_say_it_is_missing(files, tmp_path, cli):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 512, 16, 16), np.float32))
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"corrupt engine")
    for argv in (["build", files["standard"], "--opt-shape", "input:1x512x16x16", "-o", tmp_path / "e.engine"],
                 ["run", "--engine", eng, "-i", x],
                 ["validate", "--model", f"zoo:{NAME}", "--engine", eng, "--sizes", "16x16"]):
        code, _, err = cli(*argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "TensorRT is not installed" in err and 'pip install -c constraints.txt -e ".[tensorrt]"' in err
    with pytest.raises(TensorRTMissing):
        import_tensorrt()
