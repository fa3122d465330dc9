"""The TensorRT path on Polygraphy (the generic build and run code is NVIDIA's, not ours). The
builder's generic steps are Polygraphy's loaders and the runner is Polygraphy's ``TrtRunner``;
both are driven here against the fake ``tensorrt`` (tests/support/fake_tensorrt.py) and, for the
runner, a fake CUDA runtime that keeps "device" memory on the host, so Polygraphy's own buffers,
stream and output allocator really run."""

import ctypes
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fake_tensorrt

from spp_deploy.sources import zoo
from spp_deploy.util.errors import UserError
from spp_deploy.runtime.trt import build, metadata, plugin_mode

polygraphy_cuda = pytest.importorskip("polygraphy.cuda.cuda")

NAME = "sppnet-pytorch"
PROF = dict(min_shape="input:1x512x8x8", opt_shape="input:1x512x16x16", max_shape="input:2x512x32x32")


@pytest.fixture(scope="module")
def onnx_file(files):
    """NAME in standard mode (the session's export: read only)."""
    return files["standard"]


@pytest.fixture
def engine_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SPP_DEPLOY_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr(plugin_mode, "_LOADED_PLUGINS", {})


class HostCudart:
    """libcudart's calls as Polygraphy's ctypes wrapper makes them, on host memory."""

    def __init__(self):
        self.blocks, self.streams, self.next_stream = {}, set(), 0x51

    def cudaStreamCreate(self, ptr):
        ptr._obj.value = self.next_stream
        self.streams.add(self.next_stream)
        self.next_stream += 1
        return 0

    def cudaStreamSynchronize(self, ptr): return 0

    def cudaStreamDestroy(self, ptr):
        self.streams.discard(ptr.value)
        return 0

    def cudaMalloc(self, ptr, nbytes):
        buf = ctypes.create_string_buffer(max(int(nbytes.value), 1))
        ptr._obj.value = ctypes.addressof(buf)
        self.blocks[ptr._obj.value] = buf
        return 0

    def cudaFree(self, ptr):
        self.blocks.pop(ptr.value, None)
        return 0

    def cudaMemcpy(self, dst, src, nbytes, kind):
        if nbytes.value:
            ctypes.memmove(dst.value, src.value, nbytes.value)
        return 0

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        return self.cudaMemcpy(dst, src, nbytes, kind)


@pytest.fixture
def host_cuda(monkeypatch):
    cudart = HostCudart()
    wrapper = object.__new__(polygraphy_cuda.Cuda)
    wrapper.handle = cudart
    monkeypatch.setattr(polygraphy_cuda, "G_CUDA", wrapper)
    return cudart


def _engine(tmp_path, trt, **meta):
    eng = tmp_path / "m.engine"
    eng.write_bytes(b"ENGINE")
    fields = dict(tensorrt=trt.__version__, gpu="none", compute_capability="0.0", precision="fp32", profiles=[],
                  onnx_sha256="00")
    metadata.EngineMeta(**{**fields, **meta}).save(eng)
    return eng


def test_polygraphy_is_imported_only_when_building_or_running():
    code = ("import sys, spp_deploy.runtime.trt.build, spp_deploy.runtime.trt.runner, spp_deploy.commands.build; "
            "print(any(m.split('.')[0] == 'polygraphy' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_runner_runs_through_polygraphys_trt_runner(tmp_path, host_cuda, monkeypatch):
    """Our runner on Polygraphy's TrtRunner: its stream, its input buffers (uploaded through cudaMemcpy)
    and output allocator; outputs are copies (Polygraphy reuses its host buffers); all freed after."""
    from spp_deploy.runtime.trt import runner as trt_runner

    monkeypatch.setattr(trt_runner, "gpu_identity", lambda: {"name": "none", "compute_capability": "0.0"})
    trt = fake_tensorrt.make("10.16.0")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with trt_runner.TrtRunner(_engine(tmp_path, trt), trt=trt) as r:
        assert r.input_specs()["x"][1] == ("?", 3) and r.output_names() == ["y"]
        y1 = r.infer({"x": x})["y"]
        y2 = r.infer({"x": 2 * x[:1]})["y"]
        assert r.stream_handle in host_cuda.streams
        with pytest.raises(UserError, match="outside the engine's profile"):
            r.infer({"x": np.zeros((9, 3), np.float32)})
    assert np.array_equal(y1, np.concatenate([x, -x], 1)) and np.array_equal(y2, np.concatenate([2 * x[:1], -2 * x[:1]], 1))
    assert [e[0] for e in trt.rec.executions] == [(2, 3), (1, 3)]
    streams = {stream for _, _, stream in trt.rec.executions}
    assert len(streams) == 1 and all(addr for _, addr, _ in trt.rec.executions)  # Polygraphy's stream and buffers
    assert host_cuda.streams == set() and not r.is_active


def test_zero_windows_get_a_real_address(tmp_path, host_cuda, monkeypatch):
    """R = 0: an empty input still gets a non-null device address (Polygraphy allocates one), so
    enqueueV3 accepts it; the output is empty with the right width."""
    from spp_deploy.runtime.trt import runner as trt_runner

    monkeypatch.setattr(trt_runner, "gpu_identity", lambda: {"name": "none", "compute_capability": "0.0"})
    trt = fake_tensorrt.make("11.1.0")
    with trt_runner.TrtRunner(_engine(tmp_path, trt), trt=trt) as r:
        y = r.infer({"x": np.zeros((0, 3), np.float32)})["y"]
    assert y.shape == (0, 6) and trt.rec.executions[0][1] != 0


def test_runner_errors_are_one_line(tmp_path, host_cuda, monkeypatch):
    from spp_deploy.runtime.trt import runner as trt_runner

    monkeypatch.setattr(trt_runner, "gpu_identity", lambda: {"name": "none", "compute_capability": "0.0"})
    trt = fake_tensorrt.make("10.16.0")
    eng = _engine(tmp_path, trt)
    eng.write_bytes(b"")
    with pytest.raises(UserError, match="the file is empty"):
        trt_runner.TrtRunner(eng, trt=trt).activate()
    eng = _engine(tmp_path, trt, plugin_mode=True, plugin=str(tmp_path / "gone.so"))
    with pytest.raises(UserError, match="plugin library .*gone.so does not exist"):
        trt_runner.TrtRunner(eng, trt=trt).activate()
    eng = _engine(tmp_path, trt)
    trt.IExecutionContext.execute_async_v3 = lambda self, stream: False
    with trt_runner.TrtRunner(eng, trt=trt) as r:
        with pytest.raises(UserError) as ei:
            r.infer({"x": np.ones((1, 3), np.float32)})
    assert str(ei.value).startswith("TensorRT execution failed: ") and "execute_async_v3" in str(ei.value)
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize("version", ["10.16.0", "11.1.0"])
def test_build_goes_through_polygraphy_loaders(onnx_file, tmp_path, engine_cache, monkeypatch, version):
    """The parse, config and build are Polygraphy's: spy on its loaders and check what reached TensorRT."""
    import polygraphy.backend.trt as poly_trt

    seen = {}
    real_config, real_build = poly_trt.CreateConfig, poly_trt.engine_bytes_from_network

    def config_spy(**kw):
        seen["config"] = kw
        return real_config(**kw)

    def build_spy(network, config):
        seen["build"] = config
        return real_build(network, config=config)

    monkeypatch.setattr(poly_trt, "CreateConfig", config_spy)
    monkeypatch.setattr(poly_trt, "engine_bytes_from_network", build_spy)
    trt = fake_tensorrt.make(version)
    tc = tmp_path / "timing.cache"
    tc.write_bytes(b"OLD")
    res = build.build_engine(onnx_file, tmp_path / "m.engine", trt=trt, workspace_gib=0.5, timing_cache=tc, **PROF)
    cfg = seen["config"]
    assert cfg["tf32"] is False and cfg["fp16"] is False and cfg["load_timing_cache"].name == str(tc)
    assert cfg["memory_pool_limits"] == {trt.MemoryPoolType.WORKSPACE: 1 << 29} and trt.rec.workspace == 1 << 29
    assert trt.rec.profiles == [("input", (1, 512, 8, 8), (1, 512, 16, 16), (2, 512, 32, 32))]
    assert trt.rec.flags_cleared == [trt.BuilderFlag.TF32] and trt.rec.timing_loaded == b"OLD"
    assert seen["build"].timing_cache == b"OLD"  # the built config holds the loaded cache (Polygraphy)
    assert tc.read_bytes() == b"TIMING" and sorted(p.name for p in tmp_path.iterdir() if "timing" in p.name) == [
        "timing.cache"]  # written whole by us, no PATH.lock left behind
    assert trt.rec.parsed_from == str(onnx_file.resolve())  # a standard file: parsed from its path
    assert (tmp_path / "m.engine").read_bytes() == b"ENGINE" and res.meta.tensorrt == version


def test_build_failure_is_tensorrts_reason_in_one_line(onnx_file, tmp_path, engine_cache, capsys):
    trt = fake_tensorrt.make("10.16.0")

    def refuse(self, network, config):
        trt.Builder.logger.log(trt.Logger.ERROR, "[optimizer.cpp::computeCosts] no implementation for layer X\nmore")

    trt.Builder.build_serialized_network = refuse
    real_init = trt.Builder.__init__

    def init(self, logger):
        real_init(self, logger)
        trt.Builder.logger = logger

    trt.Builder.__init__ = init
    with pytest.raises(UserError) as ei:
        build.build_engine(onnx_file, tmp_path / "m.engine", trt=trt, **PROF)
    msg = str(ei.value)
    assert msg.startswith("TensorRT engine build failed: ") and "no implementation for layer X" in msg and "\n" not in msg
    assert not (tmp_path / "m.engine").exists()
    out, err = capsys.readouterr()
    assert "no implementation" not in out + err  # Polygraphy's log is kept, not printed


def test_polygraphy_missing_is_one_line(monkeypatch, onnx_file, tmp_path, engine_cache):
    from spp_deploy.runtime.trt import poly

    monkeypatch.setattr(poly, "_MODULES", ("polygraphy_not_installed_here",))
    monkeypatch.setattr(poly, "_LAZY", [])  # not imported yet in this process
    with pytest.raises(UserError, match=r"Polygraphy cannot be imported .*needs it: .*\[tensorrt\]"):
        build.build_engine(onnx_file, tmp_path / "m.engine", trt=fake_tensorrt.make(), **PROF)


def test_polygraphy_left_as_it_was(onnx_file, tmp_path, engine_cache):
    """After a build with a stand-in tensorrt, Polygraphy's lazy tensorrt and its logger are as before."""
    from polygraphy.backend.trt import loader
    from polygraphy.logger import G_LOGGER

    before = (vars(loader.trt).get("module"), sys.modules.get("tensorrt"), G_LOGGER.use_python_logging_system)
    build.build_engine(onnx_file, tmp_path / "m.engine", trt=fake_tensorrt.make(), **PROF)
    assert (vars(loader.trt).get("module"), sys.modules.get("tensorrt"), G_LOGGER.use_python_logging_system) == before
    assert importlib.util.find_spec("polygraphy") is not None


# ---- benchmarks/gpu_check.py builds and compares engines too -------------------------------------

GPU_CHECK = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", GPU_CHECK)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


def _script(*args, tmp_path):
    env = {"PYTHONPATH": str(GPU_CHECK.parents[1]), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(GPU_CHECK), *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_gpu_check_plan_lists_every_engine_case_without_a_gpu(tmp_path):
    proc = _script("--plan", "--out", "rep", tmp_path=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    trt = [ln for ln in lines if ln.startswith("trt ")]
    for name in zoo.zoo_names():
        for mode in ("standard", "plugin"):
            for precision in ("fp32", "fp16-file", "fp16-flag"):
                assert any(ln.startswith(f"trt {name} {mode} {precision}:") for ln in trt), (name, mode, precision)
    windows = [ln for ln in trt if ln.startswith("trt window-spp")]
    assert len(windows) == 2 and all("R = 0 and R = 2000" in ln for ln in windows)
    assert any(ln.startswith("kernel spp:") for ln in lines) and not (tmp_path / "rep").exists()
    assert not [ln for ln in _script("--plan", "--skip-trt", tmp_path=tmp_path).stdout.splitlines() if ln.startswith("trt ")]
    helped = _script("--help", tmp_path=tmp_path)
    assert helped.returncode == 0 and "--plan" in helped.stdout and "--skip-trt" in helped.stdout


class OrtAsEngine:
    """Stands in for TrtRunner: runs the ONNX file the engine was built from on ONNX Runtime CPU,
    optionally one output value off (a wrong engine)."""

    off = 0.0

    def __init__(self, engine, plugin=None):
        from spp_deploy.runtime.ort_runner import OrtRunner

        self.ort = OrtRunner(Path(engine).with_suffix(".onnx"), "cpu")

    def __enter__(self):
        self.ort.activate()
        return self

    def __exit__(self, *exc):
        self.ort.deactivate()

    def infer(self, feed):
        out = self.ort.infer(feed)
        for y in out.values():
            if y.size and self.off:
                y.reshape(-1)[0] += self.off
        return out


@pytest.mark.slow
def test_gpu_check_engine_harness_on_the_cpu(gpu_check, tmp_path, engine_cache, monkeypatch):
    """The TensorRT part end to end with the fake TensorRT building and ONNX Runtime standing in for
    the engine: a right engine passes at every size and at R = 0 and R = 2000, a wrong one fails,
    cases that cannot run are skipped with the reason, and the rows reach the JSON/Markdown report."""
    from spp_deploy.runtime.trt import build as trt_build, common, runner as trt_runner

    trt_mod = gpu_check.trt_part()
    monkeypatch.setattr(common, "import_tensorrt", lambda what="": fake_tensorrt.make("11.1.0"))
    monkeypatch.setattr(trt_build, "import_tensorrt", lambda what="": fake_tensorrt.make("11.1.0"))
    monkeypatch.setattr(trt_runner, "TrtRunner", OrtAsEngine)
    cases = [trt_mod.TrtCase(NAME, "standard", "fp32"), trt_mod.TrtCase(NAME, "standard", "fp16-flag"),
             trt_mod.TrtCase(NAME, "plugin", "fp32"), trt_mod.TrtCase("window-spp", "standard", "fp32")]
    monkeypatch.delenv("SPP_DEPLOY_PLUGIN_LIB", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./build/libspp_plugin.so
    rows = trt_mod.run(cases, None, log=lambda m: None)
    by = {}
    for r in rows:
        by.setdefault(r.case, []).append(r)
    assert [r.status for r in by[f"{NAME} standard fp32"]] == ["ok"] * trt_mod.SIZES_PER_MODEL
    assert len({r.shape for r in by[f"{NAME} standard fp32"]}) == trt_mod.SIZES_PER_MODEL
    assert by[f"{NAME} standard fp16-flag"][0].status == "skipped" and "FP16" in by[f"{NAME} standard fp16-flag"][0].detail
    assert by[f"{NAME} plugin fp32"][0].status == "skipped" and "plugin library" in by[f"{NAME} plugin fp32"][0].detail
    win = by["window-spp standard fp32"]
    assert [r.status for r in win] == ["ok", "ok"] and [r.shape.split("R=")[1] for r in win] == ["0", "2000"]
    rep = gpu_check.Report(trt=rows)
    assert rep.failures == 0
    monkeypatch.setattr(OrtAsEngine, "off", 0.5)
    bad = trt_mod.run(cases[:1], None, log=lambda m: None)
    assert bad and all(r.status == "failed" and r.max_abs >= 0.5 for r in bad)
    rep = gpu_check.Report(trt=rows + bad)
    assert rep.failures == len(bad)
    j, m = gpu_check.write_report(rep, tmp_path / "rep")
    assert len(json.loads(j.read_text())["trt"]) == len(rows + bad)
    assert "## TensorRT engines (through Polygraphy) vs ONNX Runtime CPU" in m.read_text()
