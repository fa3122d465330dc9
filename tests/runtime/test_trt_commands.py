"""The TensorRT commands refuse bad input in one line before TensorRT is needed, and say when it
is not installed; ``plugin build`` prints the trtexec and Polygraphy lines that load the library, and
``export --strip-functions`` writes the file those tools take as it is."""

import numpy as np
import onnx
import pytest

import fake_tensorrt
from spp_deploy.contract import plugin_nodes
from spp_deploy.runtime.trt import build
from spp_deploy.runtime.trt.common import TensorRTMissing, import_tensorrt
from trt_cases import HAVE_TRT, NAME, layers as _layers


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


def test_plugin_build_prints_dynamic_plugins(cli, monkeypatch, tmp_path):
    from spp_deploy.native import cmake

    seen = {}

    def fake_build(build_dir, **kw):
        seen.update(kw)
        return tmp_path / "libspp_plugin.so"

    monkeypatch.setattr(cmake, "build_plugins", fake_build)
    code, out, _ = cli("plugin", "build", "--build-dir", tmp_path)
    lib = tmp_path / "libspp_plugin.so"
    assert code == 0 and f"--dynamicPlugins={lib}" in out and "--staticPlugins" not in out
    assert "--strip-functions" in out and f"--plugins {lib}" not in out and seen["static_registration"] is False
    code, out, _ = cli("plugin", "build", "--build-dir", tmp_path, "--static-registration")
    assert code == 0 and seen["static_registration"] is True and f"polygraphy run m.onnx --trt --plugins {lib}" in out


@pytest.mark.slow
def test_export_strip_functions_writes_the_parser_ready_file(cli, tmp_path, engine_cache):
    out = tmp_path / "seed.onnx"
    code, text, err = cli("export", "--model", "zoo:sppnet-pytorch", "--spp-impl", "plugin", "--strip-functions",
                          "--sizes", "16x16,24x20", "-o", out)
    assert code == 0, err
    m = onnx.load(out)
    assert plugin_nodes(m) and not m.functions and "body/bodies stripped" in text
    trt = fake_tensorrt.make("10.14.0")  # a parser that would inline any body it found
    build.build_engine(out, tmp_path / "m.engine", plugin=engine_cache, trt=trt,
                       min_shape="input:1x512x16x16", opt_shape="input:1x512x16x16", max_shape="input:2x512x32x32")
    assert sum(la.type == trt.LayerType.PLUGIN_V3 for la in _layers(trt)) == len(plugin_nodes(m))
    bad = tmp_path / "standard.onnx"
    code, _, err = cli("export", "--model", "zoo:sppnet-pytorch", "--strip-functions", "--no-check", "-o", bad)
    assert code == 2 and err.count("\n") == 1 and "spp-deploy: error: --strip-functions needs --spp-impl plugin" in err
    assert not bad.exists()
