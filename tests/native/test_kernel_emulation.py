"""The real CUDA kernel source, run by the host SIMT emulator (plugins/simt), against the CPU reference.

No GPU: ``spatialPyramidPoolKernel.cu`` is compiled as host C++ and launched through the same
launcher the TensorRT plugin's enqueue calls (same host checks, grid, block, shared-memory size);
every block's threads run with real ``__syncthreads`` / warp-shuffle semantics. Outputs must be
bit-identical to the C++ reference (and, for max, to ``spp_eager``): avg uses integer-valued data,
whose sums are exact in any order, so the kernel's summation tree cannot hide behind a tolerance.
This checks the kernel's logic, not its speed or memory races.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native_checks import build_emulator
from kernel_checks import check_against_reference, make_input, run_guarded
import oracle as reference
from pyramid_cases import pyramid_case
from spp_deploy.ops import bins as B
from spp_deploy.native import cabi, emulator as emu, emulator_selftest as selftest, library as native_lib
from spp_deploy.native import cmake as native_build
from spp_deploy.util.errors import UserError
from spp_deploy.ops.pyramid import spp_eager

def _build(build_dir: Path, source_root: Path | None = None) -> Path:
    return build_emulator(emu.unavailable_reason(), emu.build_kernel_emulator, build_dir, source_root)


LEVELS = st.lists(st.integers(1, 8), min_size=1, max_size=3) | st.lists(
    st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]), min_size=1, max_size=3
)


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("mode", B.MODES)
@pytest.mark.parametrize("rule", B.RULES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**pyramid_case(70, LEVELS), specials=st.sampled_from([0, 0, 1, 3]), schedule=st.sampled_from(emu.SCHEDULES))
def test_emulated_kernel_matches_reference(emulib, reflib, rule, mode, dtype, h, w, b, c, levels, order, specials,
                                           schedule, seed):
    if rule == "floor_kernel":  # rarely legal at random sizes: build a legal one from (n, k)
        n = levels[0]
        k = max(1, h // (4 * n) + 1)
        h, w, levels = n * k + min(h % k, n - 1) if n > 1 else k, n * k + w % k, [n]
    rng = np.random.default_rng(seed)
    x = make_input(rng, (b, c, h, w), mode, dtype, specials)
    check_against_reference(emulib, reflib, x, levels, mode, rule, order, schedule=schedule, seed=seed)


@pytest.mark.parametrize("rule,h,w,levels", [("adaptive", 37, 29, [6, 3, 2, 1]), ("ceil_pad", 13, 30, [4, 3, 1]),
                                             ("rounded", 25, 33, [6, 3, 2]), ("floor_kernel", 16, 17, [4])])
def test_nan_inputs(emulib, reflib, rule, h, w, levels):
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float16):
        for mode in B.MODES:
            x = make_input(rng, (2, 3, h, w), mode, dtype, 0)
            x[0, 1, h // 2, w // 2] = np.nan  # inside a bin for every rule
            x[1, 2, rng.integers(0, h), rng.integers(0, w)] = np.nan
            x[1, 1, h - 1, w - 1] = np.nan  # the corner (floor_kernel may leave it outside every bin)
            x[1, 0, 0, :] = -np.inf
            for order in B.ORDERS:
                assert check_against_reference(emulib, reflib, x, levels, mode, rule, order)
            run = emu.emulated_pyramid(emulib, x, levels, mode, rule, "channel_major")
            assert np.isnan(run.output[0]).any()


def test_grid_stride_loop(emulib, reflib):
    """More planes than blocks (as above 2^20 planes on a GPU): each block loops, reusing shared memory.
    150 planes: more groups of planes than the largest clamp, whatever the group size."""
    x = make_input(np.random.default_rng(4), (3, 50, 23, 31), "max", np.float32, 2)
    for clamp in (1, 2, 4):
        for schedule in emu.SCHEDULES:
            assert check_against_reference(emulib, reflib, x, [8, 4, 2, 1], "max", "adaptive", "bin_major",
                                           clamp_grid_x=clamp, schedule=schedule, seed=clamp)


@pytest.mark.parametrize("rule,levels", [("adaptive", [64, 32, 16, 8, 4, 2, 1]), ("rounded", [64, 13]),
                                         ("adaptive", list(range(1, 17)))])
def test_largest_levels(emulib, reflib, rule, levels):
    """Up to the plugin's limits: n = 64 (16 KiB of shared fine bins) and 16 levels."""
    rng = np.random.default_rng(8)
    for mode, dtype in (("max", np.float32), ("avg", np.float16)):
        x = make_input(rng, (1, 2, 67, 90), mode, dtype, 2)
        assert check_against_reference(emulib, reflib, x, levels, mode, rule, "bin_major")


def test_avg_general_data_within_bound(emulib, reflib):
    """Non-integer data: the kernel's fp32 summation order is its own, so avg is compared to the
    float64 op within float32's worst-case summation error (integer data above pins it exactly)."""
    rng = np.random.default_rng(5)
    for rule, (h, w), levels in [("adaptive", (41, 37), [5, 3, 1]), ("ceil_pad", (13, 30), [4, 3, 1]),
                                 ("rounded", (25, 33), [6, 3, 2]), ("floor_kernel", (16, 17), [4])]:
        x = rng.standard_normal((2, 2, h, w)).astype(np.float32)
        for order in B.ORDERS:
            run = run_guarded(emulib, x, levels, "avg", rule, order)
            assert run.status == cabi.STATUS_OK, run.fault
            e64 = spp_eager(torch.from_numpy(x).double(), levels, "avg", rule, order).numpy()
            reference.assert_within(run.output.astype(np.float64), e64,
                                    reference.avg_error_bound(x, levels, rule, order) + 1e-7 * np.abs(e64))


def test_bad_configuration_launches_nothing(emulib):
    x = np.ones((1, 2, 8, 8), dtype=np.float32)
    for levels in ([0], [65], list(range(1, 18))):
        run = emu.emulated_pyramid(emulib, x, levels, "max", "adaptive", "channel_major",
                                    out=np.zeros(10**4, dtype=np.float32))
        assert run.status == cabi.STATUS_BAD_CONFIG and run.launch.launches == 0


# ---- the emulator catches broken kernels ----------------------------------------------------------

# name: (kernel text, replacement, what the comparison must report).
MUTATIONS = {
    "shuffle-skips-half-warp": ("int32_t off = kWARP / 2; off > 0", "int32_t off = kWARP / 4; off > 0",
                                "outputs differ"),
    "fp16-store-truncates": ("::simt::store(p + i, __float2half_rn(v));", "::simt::store(p + i, __float2half_rz(v));",
                             "outputs differ"),
    # 4 words short: the last plane's last bins land in the emulator's 64-byte guard
    "shared-memory-too-small": ("* (static_cast<size_t>(plan.edgeWords) +",
                                "* (static_cast<size_t>(plan.edgeWords) - 4 +",
                                "write past the end of dynamic shared memory"),
    "divergent-syncthreads": ("__syncthreads(); // the stage is reused", "if (lane == 0) __syncthreads(); //",
                              "__syncthreads reached by 8 of 256 threads"),
    "shuffle-mask-half-warp": ("__shfl_xor_sync(0xFFFFFFFFU, acc, off)", "__shfl_xor_sync(0x0000FFFFU, acc, off)",
                               "is not in its mask"),
    "reads-past-the-input": ("T const* x = input + (first + c0) * HW + static_cast<int64_t>(r0) * W;",
                             "T const* x = input + (first + c0) * HW + static_cast<int64_t>(r0) * W + W;",
                             "outside every tracked buffer"),
    # Bins read from shared memory (coarser levels, the output stage) before other warps wrote them:
    # the 0xFF poison (NaN) shows.
    "missing-syncthreads": ("__syncthreads(); // the pixels are replaced by the next chunk; the bins are complete",
                            "", "NaN positions differ"),
}


@pytest.fixture(scope="module")
def plugin_tree_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugins_copy")
    src = native_lib.plugin_source_dir()
    for sub in ("spatialPyramidPoolPlugin", "simt", "common"):  # the kernel includes common/levelPlan.h
        shutil.copytree(src / sub, root / sub)
    return root


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_emulator_catches_broken_kernel(plugin_tree_copy, reflib, tmp_path, name):
    old, new, expected = MUTATIONS[name]
    kernel = plugin_tree_copy / "spatialPyramidPoolPlugin" / "spatialPyramidPoolKernel.cu"
    pristine = (native_lib.plugin_source_dir() / "spatialPyramidPoolPlugin" / "spatialPyramidPoolKernel.cu").read_text()
    assert pristine.count(old) == 1, f"mutation {name!r} no longer applies: update MUTATIONS to the kernel"
    kernel.write_text(pristine.replace(old, new))
    try:
        lib = _build(tmp_path, plugin_tree_copy)
    finally:
        kernel.write_text(pristine)
    rng = np.random.default_rng(6)
    caught = []
    for mode, dtype in (("max", np.float32), ("avg", np.float16)):
        x = make_input(rng, (2, 2, 37, 45), mode, dtype, 0)
        if mode == "avg":
            x = x + np.float16(0.25) * rng.integers(0, 4, x.shape).astype(np.float16)  # non-integer means
        for schedule in emu.SCHEDULES:
            try:
                check_against_reference(lib, reflib, x, [8, 4, 2, 1], mode, "adaptive", "channel_major",
                                        schedule=schedule, seed=7)
            except AssertionError as e:
                caught.append(str(e).splitlines()[0])
    assert caught, f"the broken kernel ({name}) passed every comparison"
    assert any(expected in c for c in caught), caught


def test_build_reports_compile_errors(plugin_tree_copy, tmp_path):
    kernel = plugin_tree_copy / "spatialPyramidPoolPlugin" / "spatialPyramidPoolKernel.cu"
    pristine = kernel.read_text()
    kernel.write_text(pristine.replace("bool makePlan(", "bool makePlan(undeclared_type x, ", 1))
    try:
        if emu.unavailable_reason():
            pytest.skip(f"kernel emulator: {emu.unavailable_reason()}")
        with pytest.raises(UserError, match=r"building the kernel emulator failed \(exit \d+\): .*error") as ei:
            emu.build_kernel_emulator(tmp_path, plugin_tree_copy)
        assert "\n" not in str(ei.value)
    finally:
        kernel.write_text(pristine)


# ---- the emulator's own model of CUDA (plugins/simt/simtSelfTest.cu) --------------------------------


def test_emulator_follows_cuda_semantics(selftestlib):
    """Shuffles of every kind and width, votes, 2-D thread numbering, static/dynamic shared memory,
    barriers and shared atomics give what CUDA documents (selftest.selftest_expected), in every schedule.
    benchmarks/gpu_check.py runs the same kernel on a GPU against the same expectation."""
    lib = selftestlib  # skipped with the reason where the emulator cannot be built
    rng = np.random.default_rng(9)
    inputs = [rng.integers(-1000, 1000, selftest.SELFTEST_THREADS), rng.integers(1, 1000, selftest.SELFTEST_THREADS)]
    for inp in inputs:
        expected = selftest.selftest_expected(inp)
        for schedule in emu.SCHEDULES:
            out, status, fault = selftest.run_selftest_emulated(lib, inp, schedule, seed=3)
            assert status == 0, fault
            bad = np.argwhere(out != expected)
            assert not bad.size, f"{schedule}: {len(bad)} fields differ, first (thread, field) {tuple(bad[0])}"
    assert (selftest.selftest_expected(inputs[1])[:, 8] == 1).all() and (selftest.selftest_expected(inputs[0])[:, 8] == 0).all()


@pytest.mark.skipif(native_build.find_nvcc() is None, reason="nvcc not available")
def test_selftest_kernel_compiles_with_nvcc(tmp_path):
    """gpu_check.py builds it on a GPU machine: it must stay valid CUDA, warning-free."""
    import subprocess

    src = native_lib.plugin_source_dir() / "simt" / "simtSelfTest.cu"
    proc = subprocess.run([native_build.find_nvcc(), "-std=c++17", "-c", "-arch=sm_75", "-Xcompiler=-fPIC",
                           "-Werror=all-warnings", str(src), "-o", str(tmp_path / "t.o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
