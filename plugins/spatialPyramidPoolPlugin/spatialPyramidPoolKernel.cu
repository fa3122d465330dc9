/*
 * SPP CUDA kernel: one launch computes all pyramid levels of every (b, c) plane.
 *
 * Written for memory bandwidth: each input byte should cross the bus once, in full 32-byte sectors,
 * and each output byte likewise.
 *
 * Staged path (every size where one row, the bin edges and a plane's bins fit in 48 KiB of shared
 * memory):
 *  - A block owns a group of up to 32 consecutive planes (grid-stride over groups). In NCHW those
 *    planes are one contiguous run of memory, so the block streams it into shared memory as float
 *    with consecutive threads on consecutive elements (every warp request is 32 neighbouring
 *    elements, whatever H and W), in pieces: `chunk` whole planes at a time, or, for planes too
 *    large for that, one plane `strip` rows at a time (a bin spanning strips is merged in its slot).
 *  - Bin edges are computed once per block into shared memory (sppBins.h), not per bin and plane.
 *  - Bins are reduced from shared memory: one thread per bin for levels whose bins are small
 *    (<= 32 elements), one warp per bin (lanes tile rows and columns, then a shuffle reduction)
 *    for larger ones. Max with a nesting rule (adaptive): only the finest level is reduced from the
 *    pixels; every coarser level m that divides it is the exact max over r x r fine bins.
 *  - All bins of the group are staged in shared memory and written last, level by level, in the
 *    output's own order: a channel_major level of the group is one contiguous run, a bin_major
 *    level is one run of `group` consecutive channels per bin, so both orders store coalesced.
 * Per-bin path (rows too wide to stage, or H >= 2^24): one block per plane, one warp per bin
 * reading the input directly (a level per pass over the plane), finest level in shared memory.
 *
 * Max propagates NaN like PyTorch (a NaN anywhere in a bin makes the bin NaN).
 * avg accumulates in fp32 (fp16 input too) and divides by the rule's divisor (sppBins.h span).
 * Bin edges come from sppBins.h; the host launcher refuses illegal sizes before launching, and the
 * rule validity includes an in-bounds check of every bin, so no read can leave the plane.
 * Shared memory is one dynamic array (SIMT_DYNAMIC_SHARED, indexed with []); edges are stored in it
 * as floats (exact: H and W are below 2^24 on the staged path).
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
constexpr int32_t kSMEM_WORDS = 12288; //!< 48 KiB of 4-byte words: what a block may use without an opt-in
constexpr int32_t kMAX_GROUP = 32;     //!< planes per block: a bin_major run of 32 channels fills 128 bytes
constexpr int32_t kTHREAD_BIN = 32;    //!< bins of at most this many elements are reduced by one thread

//! The level plan (levelPlan.h), how to pool and flatten, and the staged path's geometry.
struct KernelPlan : LevelPlan
{
    PoolMode mode;
    BinRule bins;
    FlattenOrder order;
    int32_t edgeOff[kMAX_NB_LEVELS]; //!< level l's edges in shared memory: 6 n words (rows, then columns)
    int32_t edgeWords;               //!< 6 * sum(n)
    uint32_t warpMask;               //!< bit l: level l is read from the input and has a bin > kTHREAD_BIN
    int32_t group;                   //!< planes per block (staged path); 0: the per-bin path
    int32_t chunk;                   //!< whole planes staged in shared memory at once (<= group); 0: strips
    int32_t strip;                   //!< rows of one plane staged at once when a plane does not fit (chunk 0)
    int32_t tileWords;               //!< shared memory words for the staged pixels
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

__device__ __forceinline__ float combine(float acc, float v, bool isMax)
{
    return isMax ? maxNan(acc, v) : acc + v;
}

//! A finished bin: the max, or the sum over the rule's divisor.
__device__ __forceinline__ float binValue(float acc, bool isMax, float divisor)
{
    return isMax ? acc : __fdiv_rn(acc, divisor);
}

__device__ __forceinline__ int64_t outIndex(
    KernelPlan const& p, int64_t b, int64_t c, int64_t C, int64_t F, int32_t l, int64_t n, int64_t jy, int64_t ix)
{
    int64_t const base = b * F + C * static_cast<int64_t>(p.binOffset[l]);
    return p.order == FlattenOrder::kCHANNEL_MAJOR ? base + c * n * n + jy * n + ix : base + (jy * n + ix) * C + c;
}

//! One bin [y0, y1) x [x0, x1) reduced by a whole warp: lanes tile it (wide bins stride columns by
//! 32; narrow bins put 32/width rows side by side), then a shuffle reduction; every lane gets the result.
template <typename Get>
__device__ __forceinline__ float warpBin(
    Get get, int64_t y0, int64_t y1, int64_t x0, int64_t x1, int32_t lane, bool isMax)
{
    int64_t const bw = x1 - x0;
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
        for (int64_t y = y0 + rowOff; y < y1; y += rowsPerStep)
        {
            for (int64_t xx = x0 + colOff; xx < x1; xx += colStep)
            {
                acc = combine(acc, get(y, xx), isMax);
            }
        }
    }
#pragma unroll
    for (int32_t off = kWARP / 2; off > 0; off /= 2)
    {
        acc = combine(acc, __shfl_xor_sync(0xFFFFFFFFU, acc, off), isMax);
    }
    return acc;
}

//! A coarser level's bin of a nesting rule: the exact max over its r x r bins of the finest level nf.
template <typename Fine>
__device__ __forceinline__ float nestedMax(Fine fine, LevelBin const& bin, int32_t nf)
{
    int32_t const r = nf / bin.n;
    float acc = -INFINITY;
    for (int32_t fy = bin.row * r; fy < bin.row * r + r; ++fy)
    {
        for (int32_t fx = bin.col * r; fx < bin.col * r + r; ++fx)
        {
            acc = maxNan(acc, fine(fy * nf + fx));
        }
    }
    return acc;
}

// ---- staged path --------------------------------------------------------------------------------

//! A bin's rectangle and avg divisor, read from the block's edge table.
struct BinRect
{
    int32_t y0, y1, x0, x1;
    float divisor;
};

template <typename Smem>
__device__ __forceinline__ BinRect binRect(Smem s, KernelPlan const& p, LevelBin const& bin)
{
    int32_t const e = p.edgeOff[bin.level];
    int32_t const n = bin.n;
    BinRect r;
    r.y0 = static_cast<int32_t>(s[e + bin.row]);
    r.y1 = static_cast<int32_t>(s[e + n + bin.row]);
    r.x0 = static_cast<int32_t>(s[e + 3 * n + bin.col]);
    r.x1 = static_cast<int32_t>(s[e + 4 * n + bin.col]);
    int64_t const rowSpan = static_cast<int64_t>(s[e + 2 * n + bin.row]);
    int64_t const colSpan = static_cast<int64_t>(s[e + 5 * n + bin.col]);
    r.divisor = static_cast<float>(rowSpan * colSpan);
    return r;
}

//! A bin's part from the staged rows [r0, r1) into its stage slot: merged with what earlier strips
//! left there when the bin starts above r0, finished (max, or sum / divisor) when it ends by r1.
template <typename Smem>
__device__ __forceinline__ void mergeBin(
    Smem s, int32_t slot, float part, BinRect const& r, int32_t r0, int32_t r1, bool isMax)
{
    float const acc = r.y0 < r0 ? combine(s[slot], part, isMax) : part;
    s[slot] = r.y1 <= r1 ? binValue(acc, isMax, r.divisor) : acc;
}

template <typename T>
__global__ void __launch_bounds__(kTHREADS) sppStagedKernel(
    T const* __restrict__ input, T* __restrict__ output, int64_t B, int64_t C, int64_t h, int64_t w, KernelPlan p)
{
    SIMT_DYNAMIC_SHARED(float, sMem); // [edgeWords] edges | [tileWords] pixels | [group * bins] bins
    int32_t const lane = threadIdx.x % kWARP;
    int32_t const warp = threadIdx.x / kWARP;
    int32_t const nbWarps = blockDim.x / kWARP;
    bool const isMax = p.mode == PoolMode::kMAX;
    int32_t const H = static_cast<int32_t>(h); // below 2^24 on the staged path
    int32_t const W = static_cast<int32_t>(w);
    int64_t const HW = h * w;
    int32_t const bins = p.binsPerChannel;
    int32_t const tile = p.edgeWords;
    int32_t const stage = tile + p.tileWords;
    int64_t const planes = B * C;
    int64_t const F = C * static_cast<int64_t>(bins);
    uint32_t const all = (1U << p.nbLevels) - 1U;
    uint32_t const threadMask = all & ~p.derivedMask & ~p.warpMask;
    int32_t threadBins = 0;
    int32_t warpBins = 0;
    int32_t sumN = 0;
    for (int32_t l = 0; l < p.nbLevels; ++l)
    {
        int32_t const nn = p.levels[l] * p.levels[l];
        threadBins += ((threadMask >> l) & 1U) ? nn : 0;
        warpBins += ((p.warpMask >> l) & 1U) ? nn : 0;
        sumN += p.levels[l];
    }

    // 1) Bin edges, once per block: item t is bin i of one axis of one level.
    for (int32_t t = threadIdx.x; t < 2 * sumN; t += blockDim.x)
    {
        int32_t l = 0;
        while (t >= p.edgeOff[l] / 3 + 2 * p.levels[l])
        {
            ++l;
        }
        int32_t const n = p.levels[l];
        int32_t const k = t - p.edgeOff[l] / 3;
        int32_t const axis = k / n;
        int32_t const i = k - axis * n;
        AxisBin const ab = axisBins(p.bins, axis == 0 ? H : W, n, i, H);
        int32_t const at = p.edgeOff[l] + 3 * n * axis + i;
        sMem[at] = static_cast<float>(ab.start);
        sMem[at + n] = static_cast<float>(ab.end);
        sMem[at + 2 * n] = static_cast<float>(ab.span);
    }
    __syncthreads();

    for (int64_t first = static_cast<int64_t>(blockIdx.x) * p.group; first < planes;
         first += static_cast<int64_t>(gridDim.x) * p.group)
    {
        int32_t const np = static_cast<int32_t>(planes - first < p.group ? planes - first : p.group);
        // Pieces: `chunk` whole planes at a time, or one plane `strip` rows at a time (chunk 0).
        int32_t const piecePlanes = p.chunk > 0 ? p.chunk : 1;
        int32_t const pieceRows = p.chunk > 0 ? H : p.strip;
        for (int32_t c0 = 0; c0 < np; c0 += piecePlanes)
        {
            for (int32_t r0 = 0; r0 < H; r0 += pieceRows)
            {
                int32_t const nq = np - c0 < piecePlanes ? np - c0 : piecePlanes;
                int32_t const nr = H - r0 < pieceRows ? H - r0 : pieceRows;
                int32_t const r1 = r0 + nr;
                // 2) The piece: one contiguous run, consecutive threads on consecutive elements.
                T const* x = input + (first + c0) * HW + static_cast<int64_t>(r0) * W;
                int32_t const count = nq * nr * W;
#pragma unroll 4
                for (int32_t e = threadIdx.x; e < count; e += blockDim.x)
                {
                    sMem[tile + e] = loadF(x, e);
                }
                __syncthreads();

                // 3) Levels read from the pixels, the bins' rows inside the piece: small bins one per
                // thread, large bins one per warp; a bin spanning strips is merged in its stage slot.
                for (int32_t t = threadIdx.x; t < nq * threadBins; t += blockDim.x)
                {
                    int32_t const q = t / threadBins;
                    LevelBin const bin = maskedLevelBin(p, threadMask, t - q * threadBins);
                    BinRect const r = binRect(sMem, p, bin);
                    if (r.y1 <= r0 || r.y0 >= r1)
                    {
                        continue;
                    }
                    int32_t const px = tile + (q * nr - r0) * W; // pixel (y, x) of plane q at px + y * W + x
                    float acc = isMax ? -INFINITY : 0.0F;
                    for (int32_t y = r.y0 > r0 ? r.y0 : r0; y < (r.y1 < r1 ? r.y1 : r1); ++y)
                    {
                        for (int32_t xx = r.x0; xx < r.x1; ++xx)
                        {
                            acc = combine(acc, sMem[px + y * W + xx], isMax);
                        }
                    }
                    mergeBin(sMem, stage + (c0 + q) * bins + p.binOffset[bin.level] + bin.index, acc, r, r0, r1, isMax);
                }
                for (int32_t t = warp; t < nq * warpBins; t += nbWarps)
                {
                    int32_t const q = t / warpBins;
                    LevelBin const bin = maskedLevelBin(p, p.warpMask, t - q * warpBins);
                    BinRect const r = binRect(sMem, p, bin);
                    if (r.y1 <= r0 || r.y0 >= r1)
                    {
                        continue; // the same for every lane
                    }
                    int32_t const px = tile + (q * nr - r0) * W;
                    float const acc = warpBin(
                        [&](int64_t y, int64_t xx) { return sMem[px + static_cast<int32_t>(y * W + xx)]; },
                        r.y0 > r0 ? r.y0 : r0, r.y1 < r1 ? r.y1 : r1, r.x0, r.x1, lane, isMax);
                    if (lane == 0)
                    {
                        mergeBin(sMem, stage + (c0 + q) * bins + p.binOffset[bin.level] + bin.index, acc, r, r0, r1,
                            isMax);
                    }
                }
                __syncthreads(); // the pixels are replaced by the next chunk; the bins are complete
            }
        }

        // 4) Coarser levels of a nesting rule (max only), from the staged finest level.
        if (p.fineLevel >= 0)
        {
            int32_t const nf = p.levels[p.fineLevel];
            for (int32_t t = threadIdx.x; t < np * p.derivedBins; t += blockDim.x)
            {
                int32_t const q = t / p.derivedBins;
                LevelBin const bin = levelBin(p, true, t - q * p.derivedBins);
                int32_t const planeBins = stage + q * bins;
                float const v = nestedMax(
                    [&](int32_t k) { return sMem[planeBins + p.binOffset[p.fineLevel] + k]; }, bin, nf);
                sMem[planeBins + p.binOffset[bin.level] + bin.index] = v;
            }
            __syncthreads();
        }

        // 5) The group's bins in output order, level by level: coalesced in both orders.
        int64_t const b0 = first / C;
        int64_t const cFirst = first - b0 * C;
        for (int32_t l = 0; l < p.nbLevels; ++l)
        {
            int32_t const n = p.levels[l];
            int32_t const nn = n * n;
            for (int32_t e = threadIdx.x; e < np * nn; e += blockDim.x)
            {
                bool const cm = p.order == FlattenOrder::kCHANNEL_MAJOR;
                int32_t const q = cm ? e / nn : e % np;
                int32_t const k = cm ? e - q * nn : e / np;
                int64_t c = cFirst + q;
                int64_t b = b0;
                if (c >= C)
                {
                    b += c / C;
                    c -= (c / C) * C;
                }
                int32_t const jy = k / n;
                storeF(output, outIndex(p, b, c, C, F, l, n, jy, k - jy * n),
                    sMem[stage + q * bins + p.binOffset[l] + k]);
            }
            __syncwarp(); // one store instruction per level (what the traffic counters group by)
        }
        __syncthreads(); // the stage is reused by the next group
    }
}

// ---- per-bin path (planes too large to stage) ---------------------------------------------------

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
        T const* xp = input + plane * H * W;

        // 1) Levels read from the input: one warp per bin.
        for (int32_t t = warp; t < p.directBins; t += nbWarps)
        {
            LevelBin const bin = levelBin(p, false, t);
            int64_t const n = bin.n;
            AxisBin const rb = axisBins(p.bins, H, n, bin.row, H);
            AxisBin const cb = axisBins(p.bins, W, n, bin.col, H);
            float const acc = warpBin([&](int64_t y, int64_t xx) { return loadF(xp + y * W, xx); }, rb.start, rb.end,
                cb.start, cb.end, lane, isMax);
            if (lane == 0)
            {
                float const v = binValue(acc, isMax, static_cast<float>(rb.span * cb.span));
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
                float const acc = nestedMax([&](int32_t k) { return sFine[k]; }, bin, nf);
                storeF(output, outIndex(p, b, c, C, F, bin.level, bin.n, bin.row, bin.col), acc);
            }
            __syncthreads(); // sFine is reused by the next plane
        }
    }
}

// ---- host ---------------------------------------------------------------------------------------

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

//! The staged path's geometry for a legal H x W: edge table, which levels a warp reduces, the group
//! size, and whole planes (chunk) or rows of one plane (strip) per piece; group 0 (the per-bin path)
//! when not even one row, the edges and a plane's bins fit in the shared memory.
void planStaging(KernelPlan& p, int64_t H, int64_t W, int64_t planes)
{
    int32_t sumN = 0;
    p.warpMask = 0;
    for (int32_t l = 0; l < p.nbLevels; ++l)
    {
        int32_t const n = p.levels[l];
        p.edgeOff[l] = 6 * sumN;
        sumN += n;
        int64_t rows = 0;
        int64_t cols = 0;
        for (int32_t i = 0; i < n; ++i)
        {
            AxisBin const rb = axisBins(p.bins, H, n, i, H);
            AxisBin const cb = axisBins(p.bins, W, n, i, H);
            rows = rows > rb.end - rb.start ? rows : rb.end - rb.start;
            cols = cols > cb.end - cb.start ? cols : cb.end - cb.start;
        }
        if (((p.derivedMask >> l) & 1U) == 0U && rows * cols > kTHREAD_BIN)
        {
            p.warpMask |= 1U << l;
        }
    }
    p.edgeWords = 6 * sumN;
    p.group = 0;
    p.chunk = 0;
    p.strip = 0;
    p.tileWords = 0;
    int64_t const free = kSMEM_WORDS - p.edgeWords;
    int64_t const bins = p.binsPerChannel;
    if (W + bins > free || H >= (1 << 24))
    {
        return; // not even one row fits (or edges would not be exact as floats): the per-bin path
    }
    bool const whole = H * W + bins <= free;
    int64_t group = (free - (whole ? H * W : W)) / bins;
    group = group < kMAX_GROUP ? group : kMAX_GROUP;
    group = group < planes ? group : planes;
    p.group = static_cast<int32_t>(group);
    if (whole)
    {
        int64_t const chunk = (free - group * bins) / (H * W);
        p.chunk = static_cast<int32_t>(chunk < group ? chunk : group);
        p.tileWords = p.chunk * static_cast<int32_t>(H * W);
    }
    else
    {
        p.strip = static_cast<int32_t>((free - group * bins) / W);
        p.tileWords = p.strip * static_cast<int32_t>(W);
    }
}

//! One launch of the path the plan chose, for element type T.
template <typename T>
cudaError_t launchTyped(void const* input, void* output, int64_t B, int64_t C, int64_t H, int64_t W,
    KernelPlan const& plan, dim3 grid, size_t smem, cudaStream_t stream)
{
    auto* const k = plan.group > 0 ? sppStagedKernel<T> : sppKernel<T>;
    return SIMT_LAUNCH(k, grid, dim3(kTHREADS), smem, stream)(
        static_cast<T const*>(input), static_cast<T*>(output), B, C, H, W, plan);
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
    planStaging(plan, H, W, planes);
    int64_t const blocks = plan.group > 0 ? (planes + plan.group - 1) / plan.group : planes;
    dim3 const grid(static_cast<uint32_t>(blocks < kMAX_GRID ? blocks : kMAX_GRID));
    size_t smem = plan.fineLevel >= 0
        ? sizeof(float) * static_cast<size_t>(plan.levels[plan.fineLevel]) * plan.levels[plan.fineLevel]
        : 0;
    if (plan.group > 0)
    {
        smem = sizeof(float)
            * (static_cast<size_t>(plan.edgeWords) + static_cast<size_t>(plan.tileWords)
                + static_cast<size_t>(plan.group) * static_cast<size_t>(plan.binsPerChannel));
    }
    cudaError_t const launched = dtype == DType::kFLOAT32
        ? launchTyped<float>(input, output, B, C, H, W, plan, grid, smem, stream)
        : launchTyped<__half>(input, output, B, C, H, W, plan, grid, smem, stream);
    return kernel::launchStatus(launched, cudaErr);
}

} // namespace spp
