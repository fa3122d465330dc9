/*
 * Device-side pieces both CUDA kernels (spatialPyramidPoolKernel.cu, windowSpatialPyramidPoolKernel.cu)
 * share: block size and grid cap, the input load, the bin lookup over a LevelPlan (levelPlan.h; over
 * any subset of its levels: maskedLevelBin), and the launch's final status. Include from a kernel source only (after simt.h's CUDA headers);
 * the host SIMT emulator compiles it as host C++ like the kernels themselves.
 */
#ifndef SPP_KERNEL_COMMON_CUH
#define SPP_KERNEL_COMMON_CUH

#include "sppTypes.h" // SppStatus
#include "levelPlan.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace spp
{
namespace kernel
{

constexpr int32_t kTHREADS = 256;
constexpr int64_t kMAX_GRID = 1 << 20;

//! Element i of an fp32 or fp16 input, as float (read-only cache).
__device__ __forceinline__ float loadF(float const* p, int64_t i)
{
    return __ldg(p + i);
}

__device__ __forceinline__ float loadF(__half const* p, int64_t i)
{
    return __half2float(__ldg(p + i));
}

//! A bin of one pyramid level: the level, the bin's row-major index inside it, n, row and column.
struct LevelBin
{
    int32_t level;
    int32_t index;
    int32_t n;
    int32_t row;
    int32_t col;
};

//! Bin t among the levels whose bit is set in `mask`, counted level by level in order.
__device__ __forceinline__ LevelBin maskedLevelBin(LevelPlan const& p, uint32_t mask, int32_t t)
{
    int32_t l = 0;
    int32_t rem = t;
    for (; l < p.nbLevels; ++l)
    {
        if (((mask >> l) & 1U) == 0U)
        {
            continue;
        }
        int32_t const nn = p.levels[l] * p.levels[l];
        if (rem < nn)
        {
            break;
        }
        rem -= nn;
    }
    int32_t const n = p.levels[l];
    int32_t const row = rem / n;
    return LevelBin{l, rem, n, row, rem - row * n};
}

//! Bin t among the levels selected (derived == true: the levels derived from the finest one, else
//! those read from the input), counted level by level in order.
__device__ __forceinline__ LevelBin levelBin(LevelPlan const& p, bool derived, int32_t t)
{
    uint32_t const all = (1U << p.nbLevels) - 1U; // nbLevels <= kMAX_NB_LEVELS (16)
    return maskedLevelBin(p, derived ? p.derivedMask : all & ~p.derivedMask, t);
}

//! After a launch: kSPP_OK, or kSPP_CUDA_ERROR with the launch's own error (SIMT_LAUNCH's result) in
//! *cudaErr (when non-null). No cudaGetLastError: an error pending from an earlier, unrelated call
//! (TensorRT's, the application's) stays pending for its owner.
inline int32_t launchStatus(cudaError_t e, cudaError_t* cudaErr)
{
    if (e != cudaSuccess)
    {
        if (cudaErr)
        {
            *cudaErr = e;
        }
        return kSPP_CUDA_ERROR;
    }
    return kSPP_OK;
}

} // namespace kernel
} // namespace spp

#endif // SPP_KERNEL_COMMON_CUH
