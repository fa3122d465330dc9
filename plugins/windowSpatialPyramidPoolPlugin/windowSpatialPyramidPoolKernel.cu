/*
 * Window SPP CUDA kernel: one launch pools every window at every level.
 *
 * Layout: one thread block per (window, chunk of channels) (grid-stride, 64-bit indices). Every
 * thread projects its block's window itself (windowSpp.h, float64: a few operations, no barrier
 * needed). A chunk holds as many channels as fit one bin per thread: cpb = 256 / (bins read from
 * the maps per channel), at least 1. Each thread reduces whole bins of one channel serially (bins
 * of neighbouring threads are neighbouring ranges of the same rows, which the caches share).
 * Max starts at 0 and takes v only when v > acc (the released code): NaN and -0.0 never win.
 * Coarser levels that divide the finest level are the max over r x r fine bins (adaptive bins of
 * the window nest exactly), read from shared memory. A refused window writes NaN everywhere.
 * Bin edges: sppBins.h's adaptive rule on the window (windowAxisBin); every bin lies inside the
 * clamped window, so no read can leave the map.
 */
#include "windowSpatialPyramidPoolKernel.h"
#include "../common/kernelCommon.cuh"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../simt/simt.h" // launch / dynamic shared memory spelled so the host SIMT emulator can run it

namespace spp
{
namespace
{

using namespace kernel;

//! The level plan (levelPlan.h), the channel chunking and the projection.
struct WindowPlan : LevelPlan
{
    int32_t channelsPerBlock; //!< channels of one window per block
    int64_t chunks;           //!< blocks per window: ceil(C / channelsPerBlock)
    WindowProjection projection;
};

__device__ __forceinline__ simt::f64 loadD(float const* p, int64_t i)
{
    return simt::f64(__ldg(p + i));
}

__device__ __forceinline__ simt::f64 loadD(__half const* p, int64_t i)
{
    return simt::f64(__half2float(__ldg(p + i)));
}

__device__ __forceinline__ void storeF(float* p, int64_t i, float v)
{
    ::simt::store(p + i, v);
}

__device__ __forceinline__ void storeF(__half* p, int64_t i, float v)
{
    ::simt::store(p + i, __float2half_rn(v)); // exact: v is a half (or NaN)
}

//! The released code's max over rows [y0, y1) x columns [x0, x1) of at(y, x), from acc: a value
//! replaces acc only when v > acc (NaN and -0.0 never win).
template <typename I, typename At>
__device__ __forceinline__ float maxAbove(float acc, I y0, I y1, I x0, I x1, At at)
{
    for (I y = y0; y < y1; ++y)
    {
        for (I x = x0; x < x1; ++x)
        {
            float const v = at(y, x);
            if (v > acc)
            {
                acc = v;
            }
        }
    }
    return acc;
}

template <typename T, typename TW>
__global__ void __launch_bounds__(kTHREADS) windowSppKernel(T const* __restrict__ maps, TW const* __restrict__ windows,
    T* __restrict__ output, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowPlan p)
{
    SIMT_DYNAMIC_SHARED(float, sFine);
    int64_t const F = C * static_cast<int64_t>(p.binsPerChannel);
    int64_t const blocks = R * p.chunks;
    int32_t const nf = p.fineLevel >= 0 ? p.levels[p.fineLevel] : 0;
    float const nan = __int_as_float(0x7FC00000);

    for (int64_t blk = blockIdx.x; blk < blocks; blk += gridDim.x)
    {
        int64_t const r = blk / p.chunks;
        int64_t const c0 = (blk - r * p.chunks) * p.channelsPerBlock;
        int32_t const nc = static_cast<int32_t>(C - c0 < p.channelsPerBlock ? C - c0 : p.channelsPerBlock);
        WindowCells const cells = projectWindow(loadD(windows, 5 * r), loadD(windows, 5 * r + 1),
            loadD(windows, 5 * r + 2), loadD(windows, 5 * r + 3), loadD(windows, 5 * r + 4), S, H, W, p.projection);
        T* row = output + r * F;

        // 1) Levels read from the maps: one bin per thread.
        for (int32_t t = threadIdx.x; t < nc * p.directBins; t += blockDim.x)
        {
            int32_t const cl = t / p.directBins;
            LevelBin const bin = levelBin(p, false, t - cl * p.directBins);
            int64_t const n = bin.n;
            int64_t const c = c0 + cl;
            float acc = nan;
            if (cells.valid)
            {
                AxisBin const rb = windowAxisBin(cells.top, cells.bottom, n, bin.row);
                AxisBin const cb = windowAxisBin(cells.left, cells.right, n, bin.col);
                T const* plane = maps + (cells.map * C + c) * H * W;
                acc = 0.0F;
                acc = maxAbove(acc, rb.start, rb.end, cb.start, cb.end,
                    [&](int64_t y, int64_t x) { return loadF(plane, y * W + x); });
            }
            storeF(row, C * p.binOffset[bin.level] + c * n * n + bin.index, acc);
            if (bin.level == p.fineLevel)
            {
                sFine[cl * nf * nf + bin.index] = acc;
            }
        }

        // 2) Levels dividing the finest one: the max over r x r fine bins, from shared memory.
        if (p.fineLevel >= 0)
        {
            __syncthreads();
            for (int32_t t = threadIdx.x; t < nc * p.derivedBins; t += blockDim.x)
            {
                int32_t const cl = t / p.derivedBins;
                LevelBin const bin = levelBin(p, true, t - cl * p.derivedBins);
                int32_t const k = nf / bin.n;
                float const* fine = sFine + cl * nf * nf;
                float const acc = maxAbove(0.0F, bin.row * k, bin.row * k + k, bin.col * k, bin.col * k + k,
                    [&](int32_t fy, int32_t fx) { return fine[fy * nf + fx]; });
                int64_t const c = c0 + cl;
                int64_t const m = bin.n;
                storeF(row, C * p.binOffset[bin.level] + c * m * m + bin.index, cells.valid ? acc : nan);
            }
            __syncthreads(); // sFine is reused by the block's next (window, chunk)
        }
    }
}

bool makePlan(WindowParams const& s, int64_t C, WindowPlan& p)
{
    if (s.nbLevels < 1 || s.nbLevels > kMAX_NB_LEVELS)
    {
        return false;
    }
    WindowProjection const& q = s.projection;
    if (!finiteD(q.stride) || !finiteD(q.offset0) || !finiteD(q.offset) || !(q.stride > 0.0))
    {
        return false;
    }
    for (int32_t l = 0; l < s.nbLevels; ++l)
    {
        if (!isWindowLevel(s.levels[l]))
        {
            return false;
        }
    }
    p = WindowPlan{};
    p.projection = q;
    planLevels(s.levels, s.nbLevels, true, p);
    p.channelsPerBlock = p.directBins >= kTHREADS ? 1 : kTHREADS / p.directBins;
    p.chunks = (C + p.channelsPerBlock - 1) / p.channelsPerBlock;
    return true;
}

template <typename T, typename TW>
cudaError_t launchTyped(dim3 grid, size_t smem, cudaStream_t stream, void const* maps, void const* windows,
    void* output, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowPlan const& plan)
{
    dim3 const block(kTHREADS);
    auto* const kernel = windowSppKernel<T, TW>; // one name: a template-id's comma would split the macro
    return SIMT_LAUNCH(kernel, grid, block, smem, stream)(
        static_cast<T const*>(maps), static_cast<TW const*>(windows), static_cast<T*>(output), S, C, H, W, R, plan);
}

template <typename T>
cudaError_t launch(dim3 grid, size_t smem, cudaStream_t stream, void const* maps, void const* windows, void* output,
    DType windowType, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowPlan const& plan)
{
    if (windowType == DType::kFLOAT32)
    {
        return launchTyped<T, float>(grid, smem, stream, maps, windows, output, S, C, H, W, R, plan);
    }
    else
    {
        return launchTyped<T, __half>(grid, smem, stream, maps, windows, output, S, C, H, W, R, plan);
    }
}

bool isType(DType t)
{
    return t == DType::kFLOAT32 || t == DType::kFLOAT16;
}

} // namespace

int32_t launchWindowSpatialPyramidPool(void const* maps, void const* windows, void* output, DType mapType,
    DType windowType, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowParams const& params,
    cudaStream_t stream, cudaError_t* cudaErr)
{
    if (cudaErr)
    {
        *cudaErr = cudaSuccess;
    }
    if (S < 0 || C < 0 || H < 0 || W < 0 || R < 0 || !isType(mapType) || !isType(windowType))
    {
        return kSPP_BAD_ARGUMENT;
    }
    WindowPlan plan;
    if (!makePlan(params, C, plan))
    {
        return kSPP_BAD_CONFIG;
    }
    if (R == 0 || C == 0)
    {
        return kSPP_OK;
    }
    if (windows == nullptr || output == nullptr || (maps == nullptr && S * H * W > 0))
    {
        return kSPP_BAD_ARGUMENT;
    }
    int64_t const blocks = R * plan.chunks;
    dim3 const grid(static_cast<uint32_t>(blocks < kMAX_GRID ? blocks : kMAX_GRID));
    int32_t const nf = plan.fineLevel >= 0 ? plan.levels[plan.fineLevel] : 0;
    size_t const smem = sizeof(float) * static_cast<size_t>(plan.channelsPerBlock) * nf * nf;
    cudaError_t launched;
    if (mapType == DType::kFLOAT32)
    {
        launched = launch<float>(grid, smem, stream, maps, windows, output, windowType, S, C, H, W, R, plan);
    }
    else
    {
        launched = launch<__half>(grid, smem, stream, maps, windows, output, windowType, S, C, H, W, R, plan);
    }
    return kernel::launchStatus(launched, cudaErr);
}

} // namespace spp
