/*
 * The emulator self-test kernel (see simtSelfTest.h). Field f of thread t is output[t * kFIELDS + f].
 */
#include "simtSelfTest.h"

#include <cuda_runtime.h>

#include "simt.h"

namespace simt_selftest
{
namespace
{

__global__ void selfTestKernel(int32_t const* __restrict__ input, int32_t* __restrict__ output)
{
    SIMT_DYNAMIC_SHARED(int32_t, reversed);
    __shared__ int32_t neighbours[kBLOCK_X * kBLOCK_Y];
    __shared__ int32_t total;
    int32_t const tid = static_cast<int32_t>(threadIdx.y * blockDim.x + threadIdx.x);
    int32_t const n = static_cast<int32_t>(blockDim.x * blockDim.y);
    int32_t const g = static_cast<int32_t>(blockIdx.x) * n + tid;
    int32_t const lane = tid % warpSize;
    int32_t const v = __ldg(input + g);
    int32_t* o = output + static_cast<int64_t>(g) * kFIELDS;

    o[0] = __shfl_sync(0xFFFFFFFFU, v, (lane * 7 + 3) % 32);
    o[1] = __shfl_sync(0xFFFFFFFFU, v, lane + 5, 8);
    o[2] = __shfl_up_sync(0xFFFFFFFFU, v, 3, 16);
    o[3] = __shfl_down_sync(0xFFFFFFFFU, v, 5, 16);
    o[4] = __shfl_xor_sync(0xFFFFFFFFU, v, 9);
    o[5] = __shfl_xor_sync(0xFFFFFFFFU, v, 4, 8);
    o[6] = static_cast<int32_t>(__ballot_sync(0xFFFFFFFFU, v % 3 == 0));
    o[7] = __any_sync(0xFFFFFFFFU, v % 97 == 0);
    o[8] = __all_sync(0xFFFFFFFFU, v > 0);
    o[9] = lane < 16 ? __shfl_xor_sync(0x0000FFFFU, v, 1) : -1; // half-warp mask

    neighbours[tid] = v;
    __syncthreads();
    o[10] = neighbours[(tid + 1) % n];

    reversed[n - 1 - tid] = 2 * v;
    if (tid == 0)
    {
        total = 0;
    }
    __syncthreads();
    o[11] = reversed[tid];
    atomicAdd(&total, v);
    __syncthreads();
    o[12] = total;
    o[13] = static_cast<int32_t>(gridDim.x * 100 + blockDim.x * 10 + blockDim.y);
    o[14] = static_cast<int32_t>(blockIdx.x);
    o[15] = lane;
}

} // namespace

cudaError_t launch(int32_t const* input, int32_t* output, cudaStream_t stream)
{
    dim3 const grid(kBLOCKS);
    dim3 const block(kBLOCK_X, kBLOCK_Y);
    size_t const smem = sizeof(int32_t) * kBLOCK_X * kBLOCK_Y;
    SIMT_LAUNCH(selfTestKernel, grid, block, smem, stream)(input, output);
    return cudaGetLastError();
}

} // namespace simt_selftest
