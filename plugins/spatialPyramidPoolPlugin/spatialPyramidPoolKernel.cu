/*
 * SPP CUDA kernel: one launch computes all pyramid levels.
 *
 * Layout: one thread block per (b, c) plane (grid-stride over B*C planes, 64-bit indices).
 * Inside a block each warp reduces whole bins (lanes tile the bin's rows/columns so that narrow
 * bins still keep the warp busy), then a shuffle reduction; lane 0 writes the bin.
 * Max with a nesting rule (adaptive): only the finest level reads the input; every coarser level
 * m that divides it is the exact max over r x r fine bins (r = n_fine / m), taken from shared
 * memory. Every other level reads its bins from global memory (one pass over the plane per level,
 * L2-resident for typical planes).
 * Max propagates NaN like PyTorch (a NaN anywhere in a bin makes the bin NaN).
 * avg accumulates in fp32 (fp16 input too) and divides by the rule's divisor (sppBins.h span).
 * Bin edges come from sppBins.h; the host launcher refuses illegal sizes before launching, and the
 * rule validity includes an in-bounds check of every bin, so no read can leave the plane.
 */
#include "spatialPyramidPoolKernel.h"
#include "../common/kernelCommon.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../simt/simt.h" // launch / dynamic shared memory spelled so the host SIMT emulator can run it

namespace spp
{
namespace
{

using namespace kernel;

constexpr int32_t kWARP = 32;

//! The level plan (levelPlan.h) and how to pool and flatten.
struct KernelPlan : LevelPlan
{
    PoolMode mode;
    BinRule bins;
    FlattenOrder order;
};

__device__ __forceinline__ void storeF(float* p, int64_t i, float v)
{
    ::simt::store(p + i, v);
}

__device__ __forceinline__ void storeF(__half* p, int64_t i, float v)
{
    ::simt::store(p + i, __float2half_rn(v));
}

//! PyTorch-style NaN-propagating max.
__device__ __forceinline__ float maxNan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

__device__ __forceinline__ int64_t outIndex(
    KernelPlan const& p, int64_t b, int64_t c, int64_t C, int64_t F, int32_t l, int64_t n, int64_t jy, int64_t ix)
{
    int64_t const base = b * F + C * static_cast<int64_t>(p.binOffset[l]);
    return p.order == FlattenOrder::kCHANNEL_MAJOR ? base + c * n * n + jy * n + ix : base + (jy * n + ix) * C + c;
}

template <typename T>
__global__ void __launch_bounds__(kTHREADS) sppKernel(
    T const* __restrict__ input, T* __restrict__ output, int64_t B, int64_t C, int64_t H, int64_t W, KernelPlan p)
{
    SIMT_DYNAMIC_SHARED(float, sFine);
    int32_t const lane = threadIdx.x % kWARP;
    int32_t const warp = threadIdx.x / kWARP;
    int32_t const nbWarps = blockDim.x / kWARP;
    int64_t const planes = B * C;
    int64_t const F = C * static_cast<int64_t>(p.binsPerChannel);
    bool const isMax = p.mode == PoolMode::kMAX;

    for (int64_t plane = blockIdx.x; plane < planes; plane += gridDim.x)
    {
        int64_t const b = plane / C;
        int64_t const c = plane - b * C;
        T const* x = input + plane * H * W;

        // 1) Levels read from the input: one warp per bin.
        for (int32_t t = warp; t < p.directBins; t += nbWarps)
        {
            LevelBin const bin = levelBin(p, false, t);
            int64_t const n = bin.n;
            AxisBin const rb = axisBins(p.bins, H, n, bin.row, H);
            AxisBin const cb = axisBins(p.bins, W, n, bin.col, H);
            int64_t const bw = cb.end - cb.start;
            // Lane tiling: wide bins stride columns by 32; narrow bins put 32/bw rows side by side.
            int64_t rowsPerStep, rowOff, colOff, colStep;
            if (bw >= kWARP)
            {
                rowsPerStep = 1;
                rowOff = 0;
                colOff = lane;
                colStep = kWARP;
            }
            else
            {
                rowsPerStep = kWARP / bw;
                rowOff = lane / bw;
                colOff = lane - rowOff * bw;
                colStep = bw;
            }
            float acc = isMax ? -INFINITY : 0.0F;
            if (rowOff < rowsPerStep)
            {
                for (int64_t y = rb.start + rowOff; y < rb.end; y += rowsPerStep)
                {
                    T const* row = x + y * W;
                    for (int64_t xx = cb.start + colOff; xx < cb.end; xx += colStep)
                    {
                        float const v = loadF(row, xx);
                        acc = isMax ? maxNan(acc, v) : acc + v;
                    }
                }
            }
#pragma unroll
            for (int32_t off = kWARP / 2; off > 0; off /= 2)
            {
                float const o = __shfl_xor_sync(0xFFFFFFFFU, acc, off);
                acc = isMax ? maxNan(acc, o) : acc + o;
            }
            if (lane == 0)
            {
                float const v = isMax ? acc : __fdiv_rn(acc, static_cast<float>(rb.span * cb.span));
                storeF(output, outIndex(p, b, c, C, F, bin.level, n, bin.row, bin.col), v);
                if (bin.level == p.fineLevel)
                {
                    sFine[bin.index] = v;
                }
            }
        }

        // 2) Coarser levels of a nesting rule (max only): exact max over r x r fine bins.
        if (p.fineLevel >= 0)
        {
            __syncthreads();
            int32_t const nf = p.levels[p.fineLevel];
            for (int32_t t = threadIdx.x; t < p.derivedBins; t += blockDim.x)
            {
                LevelBin const bin = levelBin(p, true, t);
                int32_t const r = nf / bin.n;
                float acc = -INFINITY;
                for (int32_t fy = bin.row * r; fy < bin.row * r + r; ++fy)
                {
                    for (int32_t fx = bin.col * r; fx < bin.col * r + r; ++fx)
                    {
                        acc = maxNan(acc, sFine[fy * nf + fx]);
                    }
                }
                storeF(output, outIndex(p, b, c, C, F, bin.level, bin.n, bin.row, bin.col), acc);
            }
            __syncthreads(); // sFine is reused by the next plane
        }
    }
}

bool makePlan(SppParams const& s, KernelPlan& p)
{
    if (s.nbLevels < 1 || s.nbLevels > kMAX_NB_LEVELS)
    {
        return false;
    }
    int32_t const mode = static_cast<int32_t>(s.mode);
    int32_t const rule = static_cast<int32_t>(s.bins);
    int32_t const order = static_cast<int32_t>(s.order);
    if (mode < 0 || mode > 1 || rule < 0 || rule > 3 || order < 0 || order > 1)
    {
        return false;
    }
    for (int32_t l = 0; l < s.nbLevels; ++l)
    {
        if (s.levels[l] < 1 || s.levels[l] > kMAX_LEVEL)
        {
            return false;
        }
    }
    p = KernelPlan{};
    p.mode = s.mode;
    p.bins = s.bins;
    p.order = s.order;
    planLevels(s.levels, s.nbLevels, s.mode == PoolMode::kMAX && ruleNests(s.bins), p);
    return true;
}

} // namespace

int32_t launchSpatialPyramidPool(void const* input, void* output, DType dtype, int64_t B, int64_t C, int64_t H,
    int64_t W, SppParams const& params, cudaStream_t stream, cudaError_t* cudaErr)
{
    if (cudaErr)
    {
        *cudaErr = cudaSuccess;
    }
    KernelPlan plan;
    if (!makePlan(params, plan))
    {
        return kSPP_BAD_CONFIG;
    }
    if (B < 0 || C < 0 || H < 1 || W < 1 || (dtype != DType::kFLOAT32 && dtype != DType::kFLOAT16))
    {
        return kSPP_BAD_ARGUMENT;
    }
    if (sizeError(params.bins, H, W, plan.levels, plan.nbLevels) != 0)
    {
        return kSPP_ILLEGAL_SIZE;
    }
    int64_t const planes = B * C;
    if (planes == 0)
    {
        return kSPP_OK;
    }
    if (input == nullptr || output == nullptr)
    {
        return kSPP_BAD_ARGUMENT;
    }
    dim3 const grid(static_cast<uint32_t>(planes < kMAX_GRID ? planes : kMAX_GRID));
    dim3 const block(kTHREADS);
    size_t const smem = plan.fineLevel >= 0
        ? sizeof(float) * static_cast<size_t>(plan.levels[plan.fineLevel]) * plan.levels[plan.fineLevel]
        : 0;
    cudaError_t launched;
    if (dtype == DType::kFLOAT32)
    {
        launched = SIMT_LAUNCH(sppKernel<float>, grid, block, smem, stream)(
            static_cast<float const*>(input), static_cast<float*>(output), B, C, H, W, plan);
    }
    else
    {
        launched = SIMT_LAUNCH(sppKernel<__half>, grid, block, smem, stream)(
            static_cast<__half const*>(input), static_cast<__half*>(output), B, C, H, W, plan);
    }
    return kernel::launchStatus(launched, cudaErr);
}

} // namespace spp
