/*
 * CUDA launcher of the window pyramid (SPP-net detection pooling): every window in one call
 * (a transpose of the maps into a workspace, then one pooling launch).
 * TensorRT-free; include from host C++ (needs cuda_runtime_api.h for cudaStream_t).
 */
#ifndef SPP_WINDOW_KERNEL_H
#define SPP_WINDOW_KERNEL_H

#include "../common/sppTypes.h" // DType, SppStatus
#include "windowSpp.h"

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

namespace spp
{

//! Kernel parameters (passed by value).
struct WindowParams
{
    int32_t nbLevels;
    int32_t levels[kMAX_NB_LEVELS];
    WindowProjection projection;
};

//! Bytes of workspace launchWindowSpatialPyramidPool needs for maps [S, C, H, W] of mapType: the maps
//! transposed to [S, H, W, C] (so a warp reads 32 channels of one cell in one request), rounded up
//! to 256 bytes; 0 when the maps are empty.
size_t windowWorkspaceSize(DType mapType, int64_t S, int64_t C, int64_t H, int64_t W);

//! maps [S, C, H, W] (mapType) and windows [R, 5] (windowType: map index, x1, y1, x2, y2 in pixels,
//! 1-based inclusive) -> output [R, C * sum(n^2)] (mapType), levels in order, channel-major.
//! Each window is projected once in float64 (windowSpp.h) and pooled with the adaptive bins of the
//! window, max with a zero-initialised accumulator. A window the eager op refuses (non-finite
//! value, map index not an integer in [0, S)) gives a NaN row. workspace: windowWorkspaceSize bytes
//! (256-byte aligned, overwritten). Levels/projection are checked on the host (kSPP_BAD_CONFIG,
//! nothing launched); R == 0 or C == 0 launches nothing; a null pointer that is needed, or S, H or
//! W above INT32_MAX, is kSPP_BAD_ARGUMENT. Two launches on `stream` (the transpose, then the
//! pooling; the transpose is skipped when the maps have no cells). A launch failure returns
//! kSPP_CUDA_ERROR (the cudaError_t in *cudaErr when non-null). Asynchronous.
int32_t launchWindowSpatialPyramidPool(void const* maps, void const* windows, void* output, void* workspace,
    DType mapType, DType windowType, int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, WindowParams const& params,
    cudaStream_t stream, cudaError_t* cudaErr = nullptr);

} // namespace spp

#endif // SPP_WINDOW_KERNEL_H
