"""One command for a GPU machine: build the plugin CUDA kernels as a torch extension, check them
bit-exact against the eager ops, measure bandwidth, and write one JSON + Markdown report.

    python benchmarks/gpu_check.py [--out gpu_check_report] [--sizes 20] [--iterations 100] [--skip-bench]
                                   [--skip-trt] [--plugin build/libspp_plugin.so] [--plan]
                                   [--traffic-json kernel_traffic.json]

``--plan`` lists what would run (kernels and TensorRT cases) and exits 0; it needs no GPU.

Needs a CUDA GPU, torch with CUDA, nvcc and ninja; otherwise prints one line and exits 2 (nothing
is written). Exit 1 when any check fails, 0 when all pass.

Checks, per kernel (``KERNELS``), for every bin rule x mode x order x dtype on random legal sizes
(plus the launcher refusing illegal sizes):
  - max: normal data with NaN/inf sprinkled in, bit-identical to ``spp_eager`` (NaN in the same places);
  - avg on integer-valued data (sums exact in any order): bit-identical to the float64 op rounded
    once to the dtype; avg on normal data: within 1e-6 (fp32) / 1e-3 (fp16) absolute, since the
    kernel's fp32 summation order is its own.
Bandwidth: GB/s = (input + output bytes) / kernel time, as a fraction of a device-to-device copy
(``dst.copy_(src)``) that reads and writes the same number of bytes in the same run (the roofline
of a one-pass kernel, launch overhead included), for (64,512,64,64) and (1,256,13,13) in fp32/fp16;
CUDA-event medians. Next to it, the emulator's traffic model of the same case (``--traffic-json``,
written by ``benchmarks/kernel_traffic.py --json``): its load/store efficiency and the fraction of
copy bandwidth it predicts for a DRAM-bound kernel without cache reuse (ideal bytes / bytes in
every request's sectors); ``measured_over_model`` above 1 means caches saved traffic, below 1 that
something besides DRAM traffic (latency, FP64, launch) limits the kernel. TensorRT itself:
``spp-deploy bench --backends trt,ort-cuda --plugin build/libspp_plugin.so``.

Also run: the SIMT emulator's self-test kernel (plugins/simt/simtSelfTest.cu), whose expected
output follows CUDA's documented shuffle/vote/shared-memory semantics and which the emulator meets
in CI, so the emulator's model of CUDA is checked against this GPU.

TensorRT (``gpu_check_trt.py``, after the kernels): every zoo model's engine through spp-deploy's
Polygraphy build path, standard and plugin mode, fp32 / fp16 from an fp16 export / (TensorRT 10)
the FP16 builder flag with the `rounded` edges pinned, run at legal sizes against ONNX Runtime CPU
on the same file; the window-SPP head at R = 0 and R = 2000 windows. Cases this machine cannot run
(no TensorRT, no plugin library, no FP16 flag) are listed as skipped with the reason.

Each kernel is one ``Kernel`` entry (sources, wrapper, check, bench). The window-SPP kernel
(``window_spp``): random window sets (every degenerate kind, plus windows the eager op refuses, which
must give NaN rows) over random maps with NaN/inf/-0.0, fp32/fp16 maps x fp32/fp16 windows, for
several level sets and projections: bit-identical to ``WindowSpatialPyramidPool`` (the eager op on
the same windows, on the CPU). Its benchmark: ``WINDOW_BENCH_WINDOWS`` windows on a ZF-5 conv5 map
at the 688 scale (256 x 43 x 57) and on five scales' maps, levels {1,2,3,6}; GB/s counts the output
plus one read of the maps, the baseline is a device copy of the output, and ``torch_ms`` is the
eager op on the CPU (its sparse-table gathers run on the CPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = ROOT / "plugins" / "spatialPyramidPoolPlugin"
WINDOW_KERNEL_DIR = ROOT / "plugins" / "windowSpatialPyramidPoolPlugin"
SIMT_DIR = ROOT / "plugins" / "simt"
BENCH_SHAPES = [(64, 512, 64, 64), (1, 256, 13, 13)]
BENCH_LEVELS = (6, 3, 2, 1)
WINDOW_BENCH_WINDOWS = 2000
WINDOW_BENCH_SHAPES = [(1, 256, 43, 57), (5, 256, 75, 100)]  # ZF-5 conv5: 688 scale; padded 5-scale stack
WINDOW_LEVEL_SETS = [(1, 2, 3, 6), (6, 3, 2, 1), (16, 8, 4), (4, 3), (1,)]

# Shared by the pyramid wrappers, after their kernel header (which defines the params struct).
SET_LEVELS = r"""
// p.nbLevels and p.levels from levels; returns the bins per channel (sum of n^2).
template <typename Params>
int64_t setLevels(Params& p, const std::vector<int64_t>& levels)
{
    p.nbLevels = static_cast<int32_t>(levels.size());
    int64_t per = 0;
    for (size_t i = 0; i < levels.size(); ++i) { p.levels[i] = static_cast<int32_t>(levels[i]); per += levels[i] * levels[i]; }
    return per;
}
"""

SPP_WRAPPER = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include "spatialPyramidPoolKernel.h"
""" + SET_LEVELS + r"""

torch::Tensor spp_forward(torch::Tensor x, std::vector<int64_t> levels, int64_t mode, int64_t rule, int64_t order)
{
    TORCH_CHECK(x.is_cuda() && x.dim() == 4, "x must be a 4-D CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kHalf, "fp32 or fp16 only");
    TORCH_CHECK(!levels.empty() && levels.size() <= spp::kMAX_NB_LEVELS, "1..16 levels");
    x = x.contiguous();
    const c10::cuda::CUDAGuard guard(x.device());
    spp::SppParams p{};
    const int64_t per = setLevels(p, levels);
    p.mode = static_cast<spp::PoolMode>(mode);
    p.bins = static_cast<spp::BinRule>(rule);
    p.order = static_cast<spp::FlattenOrder>(order);
    const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    auto y = torch::empty({B, C * per}, x.options());
    cudaError_t err = cudaSuccess;
    const auto dtype = x.scalar_type() == torch::kHalf ? spp::DType::kFLOAT16 : spp::DType::kFLOAT32;
    const int32_t st = spp::launchSpatialPyramidPool(x.data_ptr(), y.data_ptr(), dtype, B, C, H, W, p,
        at::cuda::getCurrentCUDAStream(), &err);
    TORCH_CHECK(st == spp::kSPP_OK, "launchSpatialPyramidPool returned status ", st,
        st == spp::kSPP_CUDA_ERROR ? cudaGetErrorString(err) : "");
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("spp_forward", &spp_forward); }
"""

SELFTEST_WRAPPER = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include "simtSelfTest.h"

torch::Tensor selftest(torch::Tensor in)
{
    TORCH_CHECK(in.is_cuda() && in.scalar_type() == torch::kInt && in.numel() == simt_selftest::kTHREADS,
        "int32 CUDA tensor of kTHREADS elements");
    in = in.contiguous();
    const c10::cuda::CUDAGuard guard(in.device());
    auto out = torch::full({simt_selftest::kTHREADS, simt_selftest::kFIELDS}, -7, in.options());
    const cudaError_t e = simt_selftest::launch(in.data_ptr<int32_t>(), out.data_ptr<int32_t>(),
        at::cuda::getCurrentCUDAStream());
    TORCH_CHECK(e == cudaSuccess, cudaGetErrorString(e));
    return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("selftest", &selftest); }
"""

WINDOW_WRAPPER = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include "windowSpatialPyramidPoolKernel.h"
""" + SET_LEVELS + r"""

torch::Tensor window_forward(torch::Tensor x, torch::Tensor windows, std::vector<int64_t> levels,
    std::vector<double> projection)
{
    TORCH_CHECK(x.is_cuda() && x.dim() == 4, "maps must be a 4-D CUDA tensor");
    TORCH_CHECK(windows.is_cuda() && windows.dim() == 2 && windows.size(1) == 5, "windows must be [R, 5] on CUDA");
    auto ok = [](torch::Tensor t) { return t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kHalf; };
    TORCH_CHECK(ok(x) && ok(windows), "fp32 or fp16 only");
    TORCH_CHECK(!levels.empty() && levels.size() <= spp::kMAX_NB_LEVELS && projection.size() == 3, "bad config");
    x = x.contiguous();
    windows = windows.contiguous();
    const c10::cuda::CUDAGuard guard(x.device());
    spp::WindowParams p{};
    const int64_t per = setLevels(p, levels);
    p.projection = spp::WindowProjection{projection[0], projection[1], projection[2]};
    const int64_t S = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), R = windows.size(0);
    auto y = torch::empty({R, C * per}, x.options());
    auto dt = [](torch::Tensor t) { return t.scalar_type() == torch::kHalf ? spp::DType::kFLOAT16 : spp::DType::kFLOAT32; };
    // The workspace TensorRT would give the plugin: the maps channels-last (windowWorkspaceSize).
    const int64_t wsBytes = static_cast<int64_t>(spp::windowWorkspaceSize(dt(x), S, C, H, W));
    auto ws = torch::empty({wsBytes}, x.options().dtype(torch::kUInt8));
    cudaError_t err = cudaSuccess;
    const int32_t st = spp::launchWindowSpatialPyramidPool(x.data_ptr(), windows.data_ptr(), y.data_ptr(),
        wsBytes > 0 ? ws.data_ptr() : nullptr, dt(x), dt(windows), S, C, H, W, R, p, at::cuda::getCurrentCUDAStream(),
        &err);
    TORCH_CHECK(st == spp::kSPP_OK, "launchWindowSpatialPyramidPool returned status ", st,
        st == spp::kSPP_CUDA_ERROR ? cudaGetErrorString(err) : "");
    return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("window_forward", &window_forward); }
"""

# forward(x, levels, mode, rule, order) -> y: the kernel under test on x's device; raises on refusal.
# (The window kernel's forward is forward(maps, windows, levels, projection) -> y.)
Forward = Callable[..., Any]


@dataclass
class CheckRow:
    kernel: str
    rule: str
    mode: str
    order: str
    dtype: str
    data: str  # "normal+nan/inf", "integer+nan/inf" (exact), "normal" (tolerance)
    sizes: int
    exact: int
    worst_abs_diff: float
    tolerance: str  # "exact", or "atol + rtol*|ref|"
    refused_illegal: int = 0
    accepted_illegal: int = 0
    ok: bool = True


@dataclass
class BenchRow:
    kernel: str
    case: str
    shape: str
    dtype: str
    kernel_ms: float
    gb_s: float
    copy_ms: float
    copy_gb_s: float
    fraction_of_copy: float
    torch_ms: float
    # The emulator's traffic model of the same case (--traffic-json), empty without one.
    model_case: str = ""
    model_load_efficiency: float | None = None
    model_store_efficiency: float | None = None
    model_fraction_of_copy: float | None = None
    measured_over_model: float | None = None


@dataclass
class Kernel:
    name: str
    sources: tuple[Path, ...] = ()
    wrapper: str = ""
    check: Callable[..., list[CheckRow]] | None = None
    bench: Callable[..., list[BenchRow]] | None = None
    forward_of: Callable[[Any], Forward] | None = None  # the built extension -> Forward
    pending: str = ""  # why it is not run (e.g. its sources are not in this tree yet)


@dataclass
class Report:
    environment: dict = field(default_factory=dict)
    kernels: list[dict] = field(default_factory=list)
    checks: list[CheckRow] = field(default_factory=list)
    bench: list[BenchRow] = field(default_factory=list)
    trt: list = field(default_factory=list)  # gpu_check_trt.TrtRow

    @property
    def failures(self) -> int:
        return (sum(not r.ok for r in self.checks) + sum(bool(k.get("failed")) for k in self.kernels)
                + sum(not r.ok for r in self.trt))


def trt_part():
    """benchmarks/gpu_check_trt.py (imported from its file: this script also runs as a loaded module)."""
    if "gpu_check_trt" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check_trt", Path(__file__).with_name("gpu_check_trt.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check_trt"] = mod  # dataclasses resolve their module
        spec.loader.exec_module(mod)
    return sys.modules["gpu_check_trt"]


# ---- comparisons ----------------------------------------------------------------------------------


def bit_equal(y, ref) -> bool:
    """Same NaN positions and identical bits elsewhere (NaN payloads not compared)."""
    import torch

    y, ref = y.cpu(), ref.cpu()
    if y.dtype != ref.dtype or y.shape != ref.shape:
        return False
    nan_y, nan_r = torch.isnan(y), torch.isnan(ref)
    if not torch.equal(nan_y, nan_r):
        return False
    ity = torch.int32 if y.dtype == torch.float32 else torch.int16
    return bool(((y.view(ity) == ref.view(ity)) | nan_y).all())


def _worst(y, ref) -> float:
    import torch

    d = (y.cpu().double() - ref.cpu().double()).abs()
    d = d[~torch.isnan(d)]
    return float(d.max()) if d.numel() else 0.0


def _random_input(g, shape, data: str, dtype):
    import torch

    if data.startswith("integer"):
        x = torch.randint(-64, 65, shape, generator=g).to(torch.float32)
    else:  # max is exact at any magnitude: spread fp16 values over its range
        x = torch.randn(shape, generator=g) * (100 if dtype == torch.float16 and data != "normal" else 1)
    if data.endswith("nan/inf"):
        flat = x.view(-1)
        for k in range(int(torch.randint(0, 4, (1,), generator=g))):
            flat[int(torch.randint(0, flat.numel(), (1,), generator=g))] = (float("nan"), float("inf"), -float("inf"))[k % 3]
    return x.to(dtype)


def _draw_size(g, rule: str, levels) -> tuple[int, int, int, int]:
    import torch

    B, C = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
    H = int(torch.randint(1, 90, (1,), generator=g))
    # floor_kernel is legal only for W close to H: draw W from [H, 2H) for it.
    W = int(torch.randint(H, 2 * H, (1,), generator=g)) if rule == "floor_kernel" else int(
        torch.randint(1, 90, (1,), generator=g))
    return B, C, H, W


def check_spp(forward: Forward, device: str, n_sizes: int, seed: int = 0, kernel: str = "spp") -> list[CheckRow]:
    """The whole-image SPP kernel vs ``spp_eager`` for every rule x mode x order x dtype."""
    import torch

    from spp_deploy.ops import bins as _bins
    from spp_deploy.ops.pyramid import spp_eager

    g = torch.Generator().manual_seed(seed)
    rows = []
    for rule in _bins.RULES:
        levels = (4, 2, 1) if rule == "floor_kernel" else (6, 3, 2, 1)
        for mode in _bins.MODES:
            datas = ["normal+nan/inf"] if mode == "max" else ["integer+nan/inf", "normal"]
            for order in _bins.ORDERS:
                for dtype in (torch.float32, torch.float16):
                    for data in datas:
                        exact_required = data.endswith("nan/inf")
                        atol, rtol = (1e-5, 1e-6) if dtype == torch.float32 else (1e-4, 2.0**-9)  # fp16: 1 ulp
                        tol = "exact" if exact_required else f"{atol:g} + {rtol:g}*|ref|"
                        row = CheckRow(kernel, rule, mode, order, str(dtype)[6:], data, 0, 0, 0.0, tol)
                        draws = 0
                        while row.sizes < n_sizes and draws < 200 * n_sizes:
                            draws += 1
                            B, C, H, W = _draw_size(g, rule, levels)
                            if not _bins.is_defined(rule, H, W, levels):
                                if row.refused_illegal + row.accepted_illegal < 3:
                                    try:  # the launcher must refuse illegal sizes, not read out of bounds
                                        forward(torch.zeros(1, 1, H, W, dtype=dtype, device=device), levels, mode,
                                                rule, order)
                                        row.accepted_illegal += 1
                                    except (RuntimeError, ValueError):
                                        row.refused_illegal += 1
                                continue
                            row.sizes += 1
                            x = _random_input(g, (B, C, H, W), data, dtype)
                            y = forward(x.to(device), levels, mode, rule, order)
                            if mode == "max":  # exact in float32 for both dtypes
                                ref = spp_eager(x.float(), levels, mode, rule, order).to(dtype)
                            else:  # float64, rounded once (exact quotient rounding for integer data)
                                ref = spp_eager(x.double(), levels, mode, rule, order).to(dtype)
                            same = bit_equal(y, ref)
                            row.exact += same
                            row.worst_abs_diff = max(row.worst_abs_diff, _worst(y, ref))
                            if exact_required and not same:
                                row.ok = False
                            if not exact_required and not torch.allclose(y.cpu().double(), ref.double(), rtol, atol):
                                row.ok = False
                        row.ok = row.ok and row.accepted_illegal == 0 and row.sizes == n_sizes
                        rows.append(row)
    return rows


def check_selftest(forward: Forward, device: str, n_sizes: int, seed: int = 0,
                   kernel: str = "simt_selftest") -> list[CheckRow]:
    """The emulator's model of CUDA (shuffles of every kind/width, votes, shared memory, barriers,
    atomics) on this GPU: the same expectation the emulated self-test meets in CI."""
    import torch

    from spp_deploy.native import emulator_selftest as selftest

    g = torch.Generator().manual_seed(seed)
    row = CheckRow(kernel, "cuda semantics", "-", "-", "int32", "random", 0, 0, 0.0, "exact")
    for i in range(max(2, n_sizes)):
        low = 1 if i == 0 else -1000  # one input where __all_sync(v > 0) holds
        inp = torch.randint(low, 1000, (selftest.SELFTEST_THREADS,), generator=g, dtype=torch.int32)
        out = forward(inp.to(device)).cpu()
        expected = torch.from_numpy(selftest.selftest_expected(inp.numpy()))
        row.sizes += 1
        same = torch.equal(out, expected)
        row.exact += same
        row.worst_abs_diff = max(row.worst_abs_diff, float((out.double() - expected.double()).abs().max()))
        row.ok = row.ok and same
    return [row]


def torch_randint(g, hi: int) -> int:
    import torch

    return int(torch.randint(0, hi, (1,), generator=g))


def _random_window_set(g, S: int, H: int, W: int, R: int, stride: float):
    """[R + 2, 5] float64 windows: every degenerate kind (spp_deploy.window.parity_windows), then one
    with an out-of-range map index and one with a NaN corner (the eager op refuses both: NaN rows)."""
    import numpy as np

    from spp_deploy.ops.window_pyramid import parity_windows

    rng = np.random.default_rng(int(torch_randint(g, 2**31)))
    win = parity_windows(rng, R, S, H, W, stride)
    bad = np.array([[S, 1.0, 1.0, 90.0, 90.0], [0, 1.0, np.nan, 90.0, 90.0]])
    return np.concatenate([win, bad]), np.arange(R + 2) < R


def check_window(forward: Forward, device: str, n_sizes: int, seed: int = 0, kernel: str = "window_spp"
                 ) -> list[CheckRow]:
    """The window kernel vs ``WindowSpatialPyramidPool`` (eager, CPU) on random window sets: every
    valid row bit-identical, every refused row NaN. One row per maps dtype x windows dtype x levels."""
    import torch

    from spp_deploy.ops.projection import ZF5, WindowProjection
    from spp_deploy.ops.window_pyramid import WindowSpatialPyramidPool

    g = torch.Generator().manual_seed(seed)
    projections = [ZF5, WindowProjection.identity(), WindowProjection(3.0, -2.5, 0.75)]
    rows = []
    for levels in WINDOW_LEVEL_SETS:
        for xdt in (torch.float32, torch.float16):
            for wdt in (torch.float32, torch.float16):
                row = CheckRow(kernel, "window adaptive", "max from 0", ",".join(map(str, levels)),
                               f"{str(xdt)[6:]}/{str(wdt)[6:]}", "normal+nan/inf/-0, refused windows", 0, 0, 0.0,
                               "exact")
                for i in range(n_sizes):
                    proj = projections[i % len(projections)]
                    S, C = torch_randint(g, 3) + 1, torch_randint(g, 24) + 1
                    H, W = torch_randint(g, 60) + 1, torch_randint(g, 60) + 1
                    R = (37, 300, 1, 0)[i % 4]
                    x = _random_input(g, (S, C, H, W), "normal+nan/inf", xdt)
                    flat = x.view(-1)
                    flat[torch.randint(0, flat.numel(), (max(1, flat.numel() // 50),), generator=g)] = -0.0
                    win64, valid = _random_window_set(g, S, H, W, R, proj.stride)
                    win = torch.from_numpy(win64).to(wdt)
                    y = forward(x.to(device), win.to(device), levels, proj.as_list()).cpu()
                    keep = torch.from_numpy(valid)
                    ref = WindowSpatialPyramidPool(levels, projection=proj)(x, win[keep])
                    same = bit_equal(y[keep], ref) and bool(torch.isnan(y[~keep]).all())
                    row.sizes += 1
                    row.exact += same
                    row.worst_abs_diff = max(row.worst_abs_diff, _worst(y[keep], ref))
                    row.ok = row.ok and same
                rows.append(row)
    return rows


def bench_window(forward: Forward, iterations: int, kernel: str = "window_spp",
                 traffic: list[dict] | None = None) -> list[BenchRow]:
    import numpy as np
    import torch

    from spp_deploy.ops.window_pyramid import parity_windows
    from spp_deploy.ops.projection import ZF5
    from spp_deploy.runtime.timing import measure_cuda
    from spp_deploy.ops.window_pyramid import SPPNET_LEVELS, WindowSpatialPyramidPool

    rows = []
    op = WindowSpatialPyramidPool(SPPNET_LEVELS)
    for shape in WINDOW_BENCH_SHAPES:
        S, C, H, W = shape
        win64 = parity_windows(np.random.default_rng(0), WINDOW_BENCH_WINDOWS, S, H, W, ZF5.stride)
        for dtype in (torch.float32, torch.float16):
            x = torch.relu(torch.randn(*shape)).to(dtype)
            win = torch.from_numpy(win64).float()
            xd, wd = x.cuda(), win.cuda()

            def run_kernel():
                return forward(xd, wd, SPPNET_LEVELS, ZF5.as_list())

            y = run_kernel()
            t_k = measure_cuda(run_kernel, 10, iterations).median
            cpu = []
            for _ in range(3):
                t0 = time.perf_counter()
                op(x, win)
                cpu.append((time.perf_counter() - t0) * 1e3)
            nbytes = y.numel() * y.element_size() + x.numel() * x.element_size()
            model = model_for(traffic, kernel, str(dtype)[6:], SPPNET_LEVELS)
            rows.append(bandwidth_row(kernel, f"{WINDOW_BENCH_WINDOWS} windows, levels 1,2,3,6 (torch_ms: eager, CPU)",
                                      "x".join(map(str, shape)), str(dtype)[6:], t_k, nbytes,
                                      *time_copy(nbytes, iterations), float(np.median(cpu)), model))
    return rows


def bench_spp(forward: Forward, iterations: int, kernel: str = "spp",
              traffic: list[dict] | None = None) -> list[BenchRow]:
    import torch
    import torch.nn.functional as F

    from spp_deploy.runtime.timing import measure_cuda

    rows = []
    for shape in BENCH_SHAPES:
        for dtype in (torch.float32, torch.float16):
            for mode, pool in (("max", F.adaptive_max_pool2d), ("avg", F.adaptive_avg_pool2d)):
                x = torch.randn(*shape, device="cuda").to(dtype)

                def run_kernel():
                    return forward(x, BENCH_LEVELS, mode, "adaptive", "channel_major")

                def run_torch():
                    return torch.cat([pool(x, n).flatten(1) for n in BENCH_LEVELS], 1)

                y = run_kernel()
                t_k = measure_cuda(run_kernel, 10, iterations).median
                t_t = measure_cuda(run_torch, 10, iterations).median
                nbytes = x.numel() * x.element_size() + y.numel() * y.element_size()
                model = model_for(traffic, kernel, str(dtype)[6:], BENCH_LEVELS, shape, mode)
                rows.append(bandwidth_row(kernel, f"adaptive {mode} levels {','.join(map(str, BENCH_LEVELS))}",
                                          "x".join(map(str, shape)), str(dtype)[6:], t_k, nbytes,
                                          *time_copy(nbytes, iterations), t_t, model))
    return rows


# ---- achieved bandwidth next to the emulator's traffic model ---------------------------------------
# The emulator counts what a profiler would (benchmarks/kernel_traffic.py); a GPU run then says
# whether that model explains the time: the first GPU run confirms or refutes it.

MODEL_KERNELS = {"spp": "whole_image", "window_spp": "window"}  # gpu_check kernel -> kernel_traffic kernel
MODEL_DTYPES = {"float32": "fp32", "float16": "fp16"}


def time_copy(nbytes: int, iterations: int) -> tuple[float, float]:
    """Median ms and GB/s of a device-to-device ``dst.copy_(src)`` reading and writing ``nbytes`` in all."""
    import torch

    from spp_deploy.runtime.timing import measure_cuda

    half = max(1, nbytes // 2)
    src = torch.empty(half, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    t_c = measure_cuda(lambda: dst.copy_(src), 10, iterations).median
    return t_c, 2 * half / t_c / 1e6


def bandwidth_row(kernel: str, case: str, shape: str, dtype: str, kernel_ms: float, nbytes: int, copy_ms: float,
                  copy_gb_s: float, torch_ms: float, model: dict | None = None) -> BenchRow:
    """A kernel that moved ``nbytes`` (input read once, output written once) in ``kernel_ms``: its
    GB/s and fraction of the copy's, and the traffic model's prediction of that fraction."""
    gbs = nbytes / kernel_ms / 1e6
    row = BenchRow(kernel, case, shape, dtype, kernel_ms, gbs, copy_ms, copy_gb_s, gbs / copy_gb_s, torch_ms)
    if model:
        predicted = model["bytes_unique"] / model["bytes_moved"] if model.get("bytes_moved") else None
        row.model_case = model["case"]
        row.model_load_efficiency = model.get("load_efficiency")
        row.model_store_efficiency = model.get("store_efficiency")
        row.model_fraction_of_copy = predicted
        row.measured_over_model = row.fraction_of_copy / predicted if predicted else None
    return row


def load_traffic_model(path: Path) -> list[dict]:
    """The records of ``benchmarks/kernel_traffic.py --json PATH`` that ran; ValueError (one line) if
    the file is not such a report."""
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read it: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON ({e})") from None
    need = {"kernel", "case", "status", "dtype", "levels", "bytes_moved", "bytes_unique"}
    if not isinstance(data, list) or not all(isinstance(r, dict) and {"kernel", "case", "status"} <= r.keys()
                                             for r in data):
        raise ValueError("not a kernel_traffic.py --json report (a list of case records)")
    ran = [r for r in data if r["status"] == "ok"]
    for r in ran:
        if not need <= r.keys():
            raise ValueError(f"case {r['case']!r} lacks {', '.join(sorted(need - r.keys()))} "
                             "(written by an older kernel_traffic.py?)")
    return ran


def model_for(traffic: list[dict] | None, kernel: str, dtype: str, levels: Sequence[int],
              shape: Sequence[int] | None = None, mode: str | None = None) -> dict | None:
    """The model record of a benchmark case: same kernel, dtype and level set; whole image: adaptive,
    same mode and plane size (C, H, W; planes are independent blocks, so the batch does not change
    the ratios), the same batch preferred; window: its only map size, the ratios per request."""
    if not traffic:
        return None
    found = [r for r in traffic if r["kernel"] == MODEL_KERNELS.get(kernel) and r["dtype"] == MODEL_DTYPES.get(dtype)
             and sorted(r["levels"]) == sorted(levels)
             and (shape is None or (r.get("rule") == "adaptive" and r.get("mode") == mode
                                    and list(r.get("size", ()))[1:] == list(shape)[1:]))]
    found.sort(key=lambda r: shape is not None and list(r["size"]) != list(shape))
    return found[0] if found else None


def build_extension(name: str, sources: tuple[Path, ...], wrapper: str, verbose: bool = False):
    from torch.utils.cpp_extension import load

    build = Path(tempfile.mkdtemp(prefix=f"{name}-ext-"))
    (build / f"{name}_ext.cpp").write_text(wrapper)
    return load(
        name=f"{name}_ext",
        sources=[str(build / f"{name}_ext.cpp"), *map(str, sources)],
        extra_include_paths=sorted({str(s.parent) for s in sources}),
        extra_cflags=["-O3", "-std=c++17"],
        extra_cuda_cflags=["-O3", "-std=c++17"],  # no --use_fast_math: the bin rules need exact fp32
        build_directory=str(build),
        verbose=verbose,
    )


def spp_forward_of(ext) -> Forward:
    from spp_deploy.ops import bins as _bins

    def forward(x, levels, mode, rule, order):
        return ext.spp_forward(x, list(levels), _bins.MODES.index(mode), _bins.RULES.index(rule),
                               _bins.ORDERS.index(order))

    return forward


def window_forward_of(ext) -> Forward:
    def forward(x, windows, levels, projection):
        return ext.window_forward(x, windows, list(levels), [float(v) for v in projection])

    return forward


def selftest_forward_of(ext) -> Forward:
    return ext.selftest


KERNELS = [
    Kernel("simt_selftest", (SIMT_DIR / "simtSelfTest.cu",), SELFTEST_WRAPPER, check_selftest, None,
           selftest_forward_of),
    Kernel("spp", (KERNEL_DIR / "spatialPyramidPoolKernel.cu",), SPP_WRAPPER, check_spp, bench_spp, spp_forward_of),
    Kernel("window_spp", (WINDOW_KERNEL_DIR / "windowSpatialPyramidPoolKernel.cu",), WINDOW_WRAPPER, check_window,
           bench_window, window_forward_of),
]


# ---- report -----------------------------------------------------------------------------------------


def _md_table(rows: list, cols: list[str]) -> list[str]:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v)

    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(getattr(r, c)) for c in cols) + " |" for r in rows]
    return out


def to_markdown(rep: Report) -> str:
    env = rep.environment
    lines = ["# GPU check", "", f"{env.get('gpu', '?')}, torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, "
             f"{env.get('date', '')}", "", "## Kernels", ""]
    lines += [f"- `{k['name']}`: {k['status']}" + (f" ({k['detail']})" if k.get("detail") else "") for k in rep.kernels]
    if rep.checks:
        lines += ["", "## Exactness", ""]
        lines += _md_table(rep.checks, ["kernel", "rule", "mode", "order", "dtype", "data", "sizes", "exact",
                                        "worst_abs_diff", "tolerance", "refused_illegal", "ok"])
    if rep.bench:
        lines += ["", "## Bandwidth (CUDA-event medians)", ""]
        lines += _md_table(rep.bench, ["kernel", "case", "shape", "dtype", "kernel_ms", "gb_s", "copy_ms",
                                       "copy_gb_s", "fraction_of_copy", "torch_ms"])
        if any(r.model_case for r in rep.bench):
            lines += ["", "## Measured against the emulator's traffic model (kernel_traffic.py)", ""]
            lines += _md_table(rep.bench, ["kernel", "shape", "dtype", "fraction_of_copy", "model_fraction_of_copy",
                                           "measured_over_model", "model_load_efficiency",
                                           "model_store_efficiency", "model_case"])
    if rep.trt:
        lines += ["", "## TensorRT engines (through Polygraphy) vs ONNX Runtime CPU", ""]
        lines += _md_table(rep.trt, ["case", "shape", "status", "max_abs", "max_rel", "nan_mismatch", "detail"])
    lines += ["", f"**{rep.failures} failure(s)**", ""]
    return "\n".join(lines)


def write_report(rep: Report, out_dir: Path) -> tuple[Path, Path]:
    from spp_deploy.util.fileio import write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": rep.environment, "kernels": rep.kernels, "checks": [asdict(r) for r in rep.checks],
            "bench": [asdict(r) for r in rep.bench], "trt": [asdict(r) for r in rep.trt], "failures": rep.failures}
    j = write_text(out_dir / "gpu_check.json", json.dumps(data, indent=2) + "\n")
    m = write_text(out_dir / "gpu_check.md", to_markdown(rep))
    return j, m


def _environment() -> dict:
    import torch

    env = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "python": platform.python_version(),
           "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0),
           "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    try:
        env["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()
    except OSError:
        pass
    return env


def no_gpu_reason() -> str | None:
    """One line saying why this machine cannot run the check, or None."""
    try:
        import torch
    except ImportError:
        return "gpu_check.py needs torch (with CUDA): not installed. Nothing run."
    if not torch.cuda.is_available():
        return (f"gpu_check.py needs a CUDA GPU: torch {torch.__version__} sees none "
                f"(CPU-only build: {torch.version.cuda is None}). Nothing run.")
    from torch.utils.cpp_extension import CUDA_HOME, is_ninja_available

    if CUDA_HOME is None:
        return "gpu_check.py needs nvcc (a CUDA toolkit; set CUDA_HOME) to build the kernels. Nothing run."
    if not is_ninja_available():
        return "gpu_check.py needs ninja to build the torch extension (pip install ninja). Nothing run."
    return None


DEVICE = "cuda"


def _last_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


def run_kernel_checks(k: Kernel, rep: Report, args) -> dict:
    """Build, check and benchmark one kernel into ``rep``; its entry for the kernel list. A build
    failure or a crash is recorded (and counted as a failure); the other kernels still run."""
    print(f"{k.name}: building ...", flush=True)
    try:
        ext = build_extension(k.name, k.sources, k.wrapper, args.verbose)
    except Exception as e:  # noqa: BLE001
        return {"name": k.name, "status": "build failed", "detail": _last_line(e), "failed": True}
    forward = k.forward_of(ext)
    try:
        checks = k.check(forward, DEVICE, args.sizes, args.seed, kernel=k.name) if k.check else []
        rep.checks += checks
        bad = sum(not r.ok for r in checks)
        print(f"{k.name}: {len(checks) - bad}/{len(checks)} check rows ok", flush=True)
        if k.bench and not args.skip_bench:
            rep.bench += k.bench(forward, args.iterations, kernel=k.name, traffic=args.traffic)
    except Exception as e:  # noqa: BLE001
        return {"name": k.name, "status": "crashed", "detail": _last_line(e), "failed": True}
    return {"name": k.name, "status": "checked" if not bad else f"{bad} check row(s) failed", "failed": False}


def print_plan(args) -> None:
    """What a run with these arguments would do, one line each."""
    for k in KERNELS:
        what = "pending: " + k.pending if k.pending else "build, exactness" + ("" if args.skip_bench or not k.bench
                                                                                else ", bandwidth")
        print(f"kernel {k.name}: {what}")
    if not args.skip_trt:
        for case in trt_part().plan():
            print(f"trt {case.describe()}")
    if args.traffic:
        print(f"traffic model: {len(args.traffic)} case(s) from {args.traffic_json}")
    print(f"report: {args.out / 'gpu_check.json'} {args.out / 'gpu_check.md'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check_report"), help="report directory")
    ap.add_argument("--sizes", type=int, default=20, help="random legal sizes per rule/mode/order/dtype/data")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-bench", action="store_true", help="exactness only")
    ap.add_argument("--verbose", action="store_true", help="show the extension builds")
    ap.add_argument("--skip-trt", action="store_true", help="no TensorRT engines")
    ap.add_argument("--plugin", type=Path, help="libspp_plugin.so for plugin-mode engines (default: found as spp-deploy finds it)")
    ap.add_argument("--plan", action="store_true", help="list what would run and exit (no GPU needed)")
    ap.add_argument("--traffic-json", type=Path,
                    help="benchmarks/kernel_traffic.py --json output: the model shown next to the measured bandwidth")
    args = ap.parse_args(argv)
    args.traffic = None
    if args.traffic_json is not None:
        try:
            args.traffic = load_traffic_model(args.traffic_json)
        except ValueError as e:
            print(f"gpu_check.py: --traffic-json {args.traffic_json}: {e}. Nothing run.", file=sys.stderr)
            return 2
    if args.plan:
        print_plan(args)
        return 0
    reason = no_gpu_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    rep = Report(environment=_environment())
    print(f"{rep.environment['gpu']}, torch {rep.environment['torch']}, CUDA {rep.environment['cuda']}", flush=True)
    for k in KERNELS:
        if k.pending:
            rep.kernels.append({"name": k.name, "status": "pending", "detail": k.pending})
            print(f"{k.name}: pending ({k.pending})", flush=True)
            continue
        rep.kernels.append(run_kernel_checks(k, rep, args))
    if not args.skip_trt:
        rep.trt = trt_part().run(trt_part().plan(), args.plugin, log=lambda m: print(m, flush=True))
    j, m = write_report(rep, args.out)
    print(to_markdown(rep))
    print(f"report: {j} {m}")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
