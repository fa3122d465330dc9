/*
 * CUDA launcher of the SPP pyramid: one launch computes every level of every (b, c) plane.
 * TensorRT-free; include from host C++ (needs cuda_runtime_api.h for cudaStream_t).
 */
#ifndef SPP_KERNEL_H
#define SPP_KERNEL_H

#include "../common/sppBins.h"
#include "../common/sppTypes.h" // DType, SppStatus

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace spp
{

//! Kernel parameters (passed by value).
struct SppParams
{
    int32_t nbLevels;
    int32_t levels[kMAX_NB_LEVELS];
    PoolMode mode;
    BinRule bins;
    FlattenOrder order;
};

//! Whole pyramid of an NCHW tensor `input` [B, C, H, W] into `output` [B, C * sum(n^2)] (same dtype).
//! Checks the configuration and sizes on the host before launching: an illegal H x W for the rule
//! returns kSPP_ILLEGAL_SIZE and launches nothing. A launch failure returns kSPP_CUDA_ERROR
//! (the cudaError_t is stored in *cudaErr when non-null). Asynchronous on `stream`.
int32_t launchSpatialPyramidPool(void const* input, void* output, DType dtype, int64_t B, int64_t C, int64_t H,
    int64_t W, SppParams const& params, cudaStream_t stream, cudaError_t* cudaErr = nullptr);

} // namespace spp

#endif // SPP_KERNEL_H
