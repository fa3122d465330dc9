"""The SPP CUDA kernel (plugins/spatialPyramidPoolPlugin) built as a torch CUDA extension:
bit-exactness vs ``spp_deploy.op.spp_eager`` for every bin rule, mode and order on random sizes,
then bandwidth (GB/s) vs a device-to-device copy of the input and latency vs torch's own
adaptive pooling, fp32 and fp16. Needs a CUDA GPU and nvcc; exits with a message otherwise.

    python benchmarks/gpu_kernel.py [--iterations 100] [--sizes 40] [--skip-check]

GB/s = (input bytes + output bytes) / kernel time; the copy's is 2 x input bytes / copy time
(its read + write), the practical roofline of a one-pass kernel. Times: CUDA events.
TensorRT itself: ``spp-deploy bench --backends trt,ort-cuda --plugin build/libspp_plugin.so``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from spp_deploy import bins as _bins
from spp_deploy.op import spp_eager
from spp_deploy.runtime.timing import measure_cuda

ROOT = Path(__file__).resolve().parents[1]
KERNEL_DIR = ROOT / "plugins" / "spatialPyramidPoolPlugin"
BENCH_SHAPES = [(64, 512, 64, 64), (1, 256, 13, 13)]
BENCH_LEVELS = (6, 3, 2, 1)

WRAPPER = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include "spatialPyramidPoolKernel.h"

torch::Tensor spp_forward(torch::Tensor x, std::vector<int64_t> levels, int64_t mode, int64_t rule, int64_t order)
{
    TORCH_CHECK(x.is_cuda() && x.dim() == 4, "x must be a 4-D CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kHalf, "fp32 or fp16 only");
    TORCH_CHECK(!levels.empty() && levels.size() <= spp::kMAX_NB_LEVELS, "1..16 levels");
    x = x.contiguous();
    const c10::cuda::CUDAGuard guard(x.device());
    spp::SppParams p{};
    p.nbLevels = static_cast<int32_t>(levels.size());
    int64_t per = 0;
    for (size_t i = 0; i < levels.size(); ++i) { p.levels[i] = static_cast<int32_t>(levels[i]); per += levels[i] * levels[i]; }
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


def build_extension(verbose: bool = False):
    from torch.utils.cpp_extension import load

    build = Path(tempfile.mkdtemp(prefix="spp-kernel-ext-"))
    wrapper = build / "spp_ext.cpp"
    wrapper.write_text(WRAPPER)
    return load(
        name="spp_kernel_ext",
        sources=[str(wrapper), str(KERNEL_DIR / "spatialPyramidPoolKernel.cu")],
        extra_include_paths=[str(KERNEL_DIR)],
        extra_cflags=["-O3", "-std=c++17"],
        extra_cuda_cflags=["-O3", "-std=c++17"],  # no --use_fast_math: the bin rules need exact fp32
        build_directory=str(build),
        verbose=verbose,
    )


def run_kernel(ext, x, levels, mode, rule, order):
    return ext.spp_forward(x, list(levels), _bins.MODES.index(mode), _bins.RULES.index(rule),
                           _bins.ORDERS.index(order))


def check_exact(ext, n_sizes: int, seed: int = 0) -> int:
    """Kernel vs spp_eager for every rule x mode x order x dtype on random legal sizes, plus the
    launcher refusing illegal sizes; returns the number of failures. max must be bit-exact; avg is
    reported as exact/total with its max error (the kernel's fp32 summation order is its own)."""
    g = torch.Generator().manual_seed(seed)
    failures = 0
    print(f"{'rule':<13} {'mode':<4} {'order':<14} {'dtype':<8} {'sizes':>5} {'exact':>6} {'max |diff|':>11}  result")
    for rule in _bins.RULES:
        levels = (4, 2, 1) if rule == "floor_kernel" else (6, 3, 2, 1)
        for mode in _bins.MODES:
            for order in _bins.ORDERS:
                for dtype in (torch.float32, torch.float16):
                    tried = exact = 0
                    worst = 0.0
                    while tried < n_sizes:
                        B, C = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
                        H, W = (int(v) for v in torch.randint(1, 90, (2,), generator=g))
                        if not _bins.is_defined(rule, H, W, levels):
                            try:  # the launcher must refuse illegal sizes, not read out of bounds
                                run_kernel(ext, torch.zeros(1, 1, H, W, device="cuda", dtype=dtype), levels, mode,
                                           rule, order)
                                print(f"  FAIL {rule} {H}x{W}: illegal size accepted")
                                failures += 1
                            except RuntimeError:
                                pass
                            continue
                        tried += 1
                        x = torch.randn(B, C, H, W, generator=g).to(dtype)
                        ref = spp_eager(x.float(), levels, mode, rule, order)
                        ref = ref.to(dtype) if mode == "max" else ref
                        y = run_kernel(ext, x.cuda(), levels, mode, rule, order).cpu()
                        same = torch.equal(y.to(ref.dtype), ref)
                        exact += same
                        worst = max(worst, float((y.float() - ref.float()).abs().max()))
                    # max: bit-exact required. avg: fp32 accumulation order may differ from torch's;
                    # allow 1 ulp-level error in fp32 and one fp16 rounding step.
                    tol = 0.0 if mode == "max" else (1e-6 if dtype == torch.float32 else 1e-3)
                    ok = worst <= tol
                    failures += not ok
                    print(f"{rule:<13} {mode:<4} {order:<14} {str(dtype)[6:]:<8} {tried:5d} {exact:6d} "
                          f"{worst:11.2e}  {'ok' if ok else 'FAIL'}")
    return failures


def bandwidth(ext, iterations: int) -> None:
    print(f"\n{'shape':<16} {'dtype':<8} {'kernel ms':>10} {'GB/s':>8} {'copy ms':>9} {'copy GB/s':>10} "
          f"{'% of copy':>9} {'torch ms':>9} {'torch/kernel':>12}")
    levels = BENCH_LEVELS
    for shape in BENCH_SHAPES:
        for dtype in (torch.float32, torch.float16):
            x = torch.randn(*shape, device="cuda").to(dtype)
            dst = torch.empty_like(x)
            y = run_kernel(ext, x, levels, "max", "adaptive", "channel_major")
            ref = torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in levels], 1)
            assert torch.equal(y, ref), "kernel differs from torch adaptive_max_pool2d"
            t_k = measure_cuda(lambda: run_kernel(ext, x, levels, "max", "adaptive", "channel_major"), 10,
                               iterations).median
            t_c = measure_cuda(lambda: dst.copy_(x), 10, iterations).median
            t_t = measure_cuda(lambda: torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in levels], 1), 10,
                               iterations).median
            nbytes = x.numel() * x.element_size()
            gbs_k = (nbytes + y.numel() * y.element_size()) / t_k / 1e6
            gbs_c = 2 * nbytes / t_c / 1e6
            print(f"{'x'.join(map(str, shape)):<16} {str(dtype)[6:]:<8} {t_k:10.4f} {gbs_k:8.1f} {t_c:9.4f} "
                  f"{gbs_c:10.1f} {gbs_k / gbs_c:8.0%} {t_t:9.4f} {t_t / t_k:11.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--sizes", type=int, default=40, help="random legal sizes per rule/mode/order/dtype")
    ap.add_argument("--skip-check", action="store_true", help="bandwidth only")
    ap.add_argument("--verbose", action="store_true", help="show the extension build")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu_kernel.py needs a CUDA GPU: torch {torch.__version__} sees none "
              f"(torch.cuda.is_available() is False; CPU-only build: {torch.version.cuda is None}). Nothing run.",
              file=sys.stderr)
        return 2
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None:
        print("gpu_kernel.py needs nvcc (CUDA toolkit; set CUDA_HOME) to build the kernel extension. Nothing run.",
              file=sys.stderr)
        return 2
    print(f"GPU {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"building the kernel extension ...", flush=True)
    ext = build_extension(args.verbose)
    failures = 0 if args.skip_check else check_exact(ext, args.sizes)
    bandwidth(ext, args.iterations)
    print(f"\n{failures} exactness failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
