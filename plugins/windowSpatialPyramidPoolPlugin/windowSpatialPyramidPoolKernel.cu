/*
 * Window SPP CUDA kernel: every window pooled at every level, laid out for memory bandwidth.
 *
 * Two launches on the stream:
 *  1) toChannelsLast: the maps [S, C, H, W] copied once into the workspace as [S, H, W, C] through
 *     32 x 32 tiles in shared memory (coalesced reads along H*W, coalesced writes along C), so that
 *     the 32 lanes of a warp later read 32 neighbouring channels of one cell in one request.
 *  2) windowSppKernel: one block per window (grid-stride, 64-bit indices). Thread 0 projects the
 *     window once (windowSpp.h, float64: about 70 operations per window instead of one projection
 *     per thread) into shared memory. The channels go in tiles of 32: a warp per bin, a lane per
 *     channel, every distinct level read from the workspace (max over the bin's cells) into shared
 *     memory, bin-major with rows padded to 33 words (no bank conflicts on either access); then
 *     each level's [channels of the tile, n, n] block of the output row, which is contiguous, is
 *     written by consecutive threads (coalesced), levels that divide the finest one reduced from its
 *     k x k bins on the way. A refused window writes its whole row as NaN (contiguous too).
 * Max starts at 0 and takes v only when v > acc (the released code): NaN and -0.0 never win, so
 * the fp16 round trip through the workspace (exact for every other value) changes no result.
 * Bin edges: sppBins.h's adaptive rule on the window (windowAxisBin); every bin lies inside the
 * clamped window, so no read can leave the map. Shared memory only through SIMT_DYNAMIC_SHARED.
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

constexpr int32_t kTILE = 32;           //!< channels per tile (a warp's lanes); positions per transpose tile
constexpr int32_t kPAD = kTILE + 1;     //!< shared rows padded by one word: conflict-free by row and by column
constexpr int32_t kCELL_WORDS = 8;      //!< the projected window at the front of the pool kernel's shared memory
constexpr size_t kWORKSPACE_ALIGN = 256;

//! The level plan (levelPlan.h), the projection, and the distinct levels read from the maps.
struct WindowPlan : LevelPlan
{
    WindowProjection projection;
    int32_t nbStaged;                    //!< distinct n among the levels read from the maps
    int32_t stagedN[kMAX_NB_LEVELS];     //!< those n
    int32_t stagedStart[kMAX_NB_LEVELS]; //!< first shared-memory bin row of each
    int32_t stagedBins;                  //!< sum of stagedN^2: shared-memory bin rows per channel tile
    int32_t levelStaged[kMAX_NB_LEVELS]; //!< per level: the staged entry it reads (derived: the finest)
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

//! maps [S, C, HW] -> nhwc [S, HW, C], one 32 x 32 (channels x positions) tile per block iteration.
template <typename T>
__global__ void __launch_bounds__(kTHREADS)
    toChannelsLast(T const* __restrict__ maps, T* __restrict__ nhwc, int64_t S, int64_t C, int64_t HW)
{
    SIMT_DYNAMIC_SHARED(float, sTile); // [kTILE channels][kPAD]
    int64_t const cTiles = (C + kTILE - 1) / kTILE;
    int64_t const pTiles = (HW + kTILE - 1) / kTILE;
    int64_t const tiles = S * cTiles * pTiles;
    int32_t const lane = static_cast<int32_t>(threadIdx.x) % kTILE;
    int32_t const row0 = static_cast<int32_t>(threadIdx.x) / kTILE;
    int32_t const rows = static_cast<int32_t>(blockDim.x) / kTILE;
    for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x)
    {
        int64_t const s = t / (cTiles * pTiles);
        int64_t const rem = t - s * cTiles * pTiles;
        int64_t const c0 = rem / pTiles * kTILE;
        int64_t const p0 = rem % pTiles * kTILE;
        for (int32_t j = row0; j < kTILE; j += rows) // channel c0 + j, position p0 + lane
        {
            if (c0 + j < C && p0 + lane < HW)
            {
                sTile[j * kPAD + lane] = loadF(maps, (s * C + c0 + j) * HW + p0 + lane);
            }
        }
        __syncthreads();
        for (int32_t j = row0; j < kTILE; j += rows) // position p0 + j, channel c0 + lane
        {
            if (p0 + j < HW && c0 + lane < C)
            {
                storeF(nhwc, (s * HW + p0 + j) * C + c0 + lane, sTile[lane * kPAD + j]);
            }
        }
        __syncthreads(); // the tile is reused by the block's next iteration
    }
}

template <typename T, typename TW>
__global__ void __launch_bounds__(kTHREADS) windowSppKernel(T const* __restrict__ nhwc, TW const* __restrict__ windows,
    T* __restrict__ output, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowPlan p)
{
    SIMT_DYNAMIC_SHARED(float, sShared); // [kCELL_WORDS] the window's cells (int bits), then [stagedBins][kPAD]
    float* const staged = sShared + kCELL_WORDS;
    int64_t const F = C * static_cast<int64_t>(p.binsPerChannel);
    int32_t const lane = static_cast<int32_t>(threadIdx.x) % kTILE;
    int32_t const warp = static_cast<int32_t>(threadIdx.x) / kTILE;
    int32_t const warps = static_cast<int32_t>(blockDim.x) / kTILE;
    float const nan = __int_as_float(0x7FC00000);

    for (int64_t r = blockIdx.x; r < R; r += gridDim.x)
    {
        if (threadIdx.x == 0) // the window's one projection
        {
            WindowCells const w = projectWindow(loadD(windows, 5 * r), loadD(windows, 5 * r + 1),
                loadD(windows, 5 * r + 2), loadD(windows, 5 * r + 3), loadD(windows, 5 * r + 4), S, H, W, p.projection);
            sShared[0] = __int_as_float(w.valid ? 1 : 0);
            sShared[1] = __int_as_float(static_cast<int32_t>(w.map));
            sShared[2] = __int_as_float(static_cast<int32_t>(w.top));
            sShared[3] = __int_as_float(static_cast<int32_t>(w.bottom));
            sShared[4] = __int_as_float(static_cast<int32_t>(w.left));
            sShared[5] = __int_as_float(static_cast<int32_t>(w.right));
        }
        __syncthreads();
        bool const valid = __float_as_int(sShared[0]) != 0;
        int64_t const map = __float_as_int(sShared[1]);
        int64_t const top = __float_as_int(sShared[2]);
        int64_t const bottom = __float_as_int(sShared[3]);
        int64_t const left = __float_as_int(sShared[4]);
        int64_t const right = __float_as_int(sShared[5]);
        T* const row = output + r * F;
        if (!valid)
        {
            for (int64_t i = threadIdx.x; i < F; i += blockDim.x)
            {
                storeF(row, i, nan);
            }
        }
        else
        {
            T const* const cells = nhwc + map * H * W * C;
            for (int64_t c0 = 0; c0 < C; c0 += kTILE)
            {
                int32_t const tc = static_cast<int32_t>(C - c0 < kTILE ? C - c0 : kTILE);
                // 1) Every staged bin for the tile's channels: a warp per bin, a lane per channel.
                for (int32_t b = warp; b < p.stagedBins; b += warps)
                {
                    int32_t e = 0;
                    while (e + 1 < p.nbStaged && b >= p.stagedStart[e + 1])
                    {
                        ++e;
                    }
                    int64_t const n = p.stagedN[e];
                    int64_t const i = b - p.stagedStart[e];
                    AxisBin const rb = windowAxisBin(top, bottom, n, i / n);
                    AxisBin const cb = windowAxisBin(left, right, n, i % n);
                    float acc = 0.0F;
                    if (lane < tc)
                    {
                        acc = maxAbove(acc, rb.start, rb.end, cb.start, cb.end,
                            [&](int64_t y, int64_t x) { return loadF(cells, (y * W + x) * C + c0 + lane); });
                    }
                    staged[b * kPAD + lane] = acc;
                }
                __syncthreads();
                // 2) Each level's [tc, n, n] block of the row (contiguous), written by consecutive threads.
                for (int32_t l = 0; l < p.nbLevels; ++l)
                {
                    int32_t const n = p.levels[l];
                    int32_t const nn = n * n;
                    int32_t const e = p.levelStaged[l];
                    int32_t const ns = p.stagedN[e];
                    int32_t const k = ns / n; // 1: read directly; else the nesting factor of a derived level
                    float const* const src = staged + p.stagedStart[e] * kPAD;
                    T* const dst = row + C * p.binOffset[l] + c0 * nn;
                    for (int32_t t = threadIdx.x; t < tc * nn; t += blockDim.x)
                    {
                        int32_t const cl = t / nn;
                        int32_t const i = t - cl * nn;
                        int32_t const y = i / n;
                        int32_t const x = i - y * n;
                        // Staged bins are +0.0 or above (max from 0), so starting from the first one
                        // is the max from 0: the zero start lives in one place, step 1.
                        auto const at = [&](int32_t fy, int32_t fx) { return src[(fy * ns + fx) * kPAD + cl]; };
                        float const acc = maxAbove(at(y * k, x * k), y * k, y * k + k, x * k, x * k + k, at);
                        storeF(dst, t, acc);
                    }
                }
                __syncthreads(); // the staged bins are reused by the next channel tile
            }
        }
        __syncthreads(); // the cells are rewritten for the block's next window
    }
}

bool makePlan(WindowParams const& s, WindowPlan& p)
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
    for (int32_t l = 0; l < p.nbLevels; ++l) // levels read from the maps, each distinct n once
    {
        if ((p.derivedMask >> l) & 1U)
        {
            continue;
        }
        int32_t e = 0;
        while (e < p.nbStaged && p.stagedN[e] != p.levels[l])
        {
            ++e;
        }
        if (e == p.nbStaged)
        {
            p.stagedN[e] = p.levels[l];
            p.stagedStart[e] = p.stagedBins;
            p.stagedBins += p.levels[l] * p.levels[l];
            ++p.nbStaged;
        }
        p.levelStaged[l] = e;
    }
    for (int32_t l = 0; l < p.nbLevels; ++l)
    {
        if ((p.derivedMask >> l) & 1U)
        {
            p.levelStaged[l] = p.levelStaged[p.fineLevel];
        }
    }
    return true;
}

size_t elementBytes(DType t)
{
    return t == DType::kFLOAT32 ? sizeof(float) : sizeof(__half);
}

template <typename T>
cudaError_t launchTranspose(void const* maps, void* nhwc, int64_t S, int64_t C, int64_t HW, cudaStream_t stream)
{
    int64_t const tiles = S * ((C + kTILE - 1) / kTILE) * ((HW + kTILE - 1) / kTILE);
    dim3 const grid(static_cast<uint32_t>(tiles < kMAX_GRID ? tiles : kMAX_GRID));
    auto* const kernel = toChannelsLast<T>;
    return SIMT_LAUNCH(kernel, grid, dim3(kTHREADS), sizeof(float) * kTILE * kPAD, stream)(
        static_cast<T const*>(maps), static_cast<T*>(nhwc), S, C, HW);
}

template <typename T, typename TW>
cudaError_t launchPool(void const* nhwc, void const* windows, void* output, int64_t S, int64_t C, int64_t H,
    int64_t W, int64_t R, WindowPlan const& plan, cudaStream_t stream)
{
    dim3 const grid(static_cast<uint32_t>(R < kMAX_GRID ? R : kMAX_GRID));
    size_t const smem = sizeof(float) * (kCELL_WORDS + static_cast<size_t>(plan.stagedBins) * kPAD);
    auto* const kernel = windowSppKernel<T, TW>; // one name: a template-id's comma would split the macro
    return SIMT_LAUNCH(kernel, grid, dim3(kTHREADS), smem, stream)(static_cast<T const*>(nhwc),
        static_cast<TW const*>(windows), static_cast<T*>(output), S, C, H, W, R, plan);
}

template <typename T>
cudaError_t launchBoth(void const* maps, void const* windows, void* output, void* workspace, DType windowType,
    int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowPlan const& plan, cudaStream_t stream)
{
    if (S * H * W > 0)
    {
        cudaError_t const e = launchTranspose<T>(maps, workspace, S, C, H * W, stream);
        if (e != cudaSuccess)
        {
            return e;
        }
    }
    if (windowType == DType::kFLOAT32)
    {
        return launchPool<T, float>(workspace, windows, output, S, C, H, W, R, plan, stream);
    }
    return launchPool<T, __half>(workspace, windows, output, S, C, H, W, R, plan, stream);
}

bool isType(DType t)
{
    return t == DType::kFLOAT32 || t == DType::kFLOAT16;
}

} // namespace

size_t windowWorkspaceSize(DType mapType, int64_t S, int64_t C, int64_t H, int64_t W)
{
    if (S <= 0 || C <= 0 || H <= 0 || W <= 0 || !isType(mapType))
    {
        return 0;
    }
    size_t const bytes = static_cast<size_t>(S * C * H * W) * elementBytes(mapType);
    return (bytes + kWORKSPACE_ALIGN - 1) / kWORKSPACE_ALIGN * kWORKSPACE_ALIGN;
}

int32_t launchWindowSpatialPyramidPool(void const* maps, void const* windows, void* output, void* workspace,
    DType mapType, DType windowType, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowParams const& params,
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
    if (!makePlan(params, plan))
    {
        return kSPP_BAD_CONFIG;
    }
    if (R == 0 || C == 0)
    {
        return kSPP_OK;
    }
    int64_t constexpr kCELL_MAX = 0x7FFFFFFF; // cells and map index travel as int32 through shared memory
    if (windows == nullptr || output == nullptr || S > kCELL_MAX || H > kCELL_MAX || W > kCELL_MAX
        || (S * H * W > 0 && (maps == nullptr || workspace == nullptr)))
    {
        return kSPP_BAD_ARGUMENT;
    }
    cudaError_t const launched = mapType == DType::kFLOAT32
        ? launchBoth<float>(maps, windows, output, workspace, windowType, S, C, H, W, R, plan, stream)
        : launchBoth<__half>(maps, windows, output, workspace, windowType, S, C, H, W, R, plan, stream);
    return kernel::launchStatus(launched, cudaErr);
}

} // namespace spp
