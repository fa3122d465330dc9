/*
 * Hand-written kernels with known memory traffic, run by the SIMT emulator: they check its traffic
 * counters (simt::TrafficCounters) against answers that follow from the access pattern alone, e.g.
 * a coalesced copy of 32 floats per warp is 4 sectors per request, a stride-32 float gather 32.
 * A C ABI library for tests/native/test_traffic_counters.py (spp_deploy.native.traffic builds it).
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1
#endif
#include "simt.h"

#include "simtDriver.h"

namespace
{

//! out[i] = in[i * stride] for i < n: a copy (stride 1) or a gather; stores are always coalesced.
template <typename T>
__global__ void gatherKernel(T const* in, T* out, int64_t n, int64_t stride)
{
    int64_t const i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n)
    {
        simt::store(out + i, __ldg(in + i * stride));
    }
}

//! Every lane reads in[0] (a broadcast: one sector, 4 bytes requested) and writes out[lane * stride].
__global__ void broadcastKernel(float const* in, float* out, int64_t n, int64_t stride)
{
    int64_t const i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n)
    {
        simt::store(out + i * stride, __ldg(in));
    }
}

template <typename T>
cudaError_t launchGather(void const* in, void* out, int64_t n, int64_t stride, int32_t threads)
{
    dim3 const grid(static_cast<uint32_t>((n + threads - 1) / threads));
    auto* const k = gatherKernel<T>;
    return SIMT_LAUNCH(k, grid, dim3(threads), 0, nullptr)(
        static_cast<T const*>(in), static_cast<T*>(out), n, stride);
}

} // namespace

SIMT_DRIVER_API int32_t simt_probe_abi_version()
{
    return 1;
}

/* kind 0: out[i] = in[i * stride] (float32), 1: the same in float16, 2: out[i * stride] = in[0].
 * n threads in blocks of `threads`; `in` holds inElems elements (tracked: a read outside faults). */
SIMT_DRIVER_API int32_t simt_probe_forward(void const* in, int64_t inElems, int32_t kind, int64_t n, int64_t stride,
    int32_t threads, void* out, int32_t schedule, uint64_t seed, uint32_t clampGridX, simt::DriverLaunch* launch,
    char* err, int32_t errLen)
{
    simt::beginRun(schedule, seed, clampGridX);
    simt::trackGlobal(in, static_cast<size_t>(inElems) * (kind == 1 ? sizeof(__half) : sizeof(float)));
    cudaError_t e;
    if (kind == 2)
    {
        dim3 const grid(static_cast<uint32_t>((n + threads - 1) / threads));
        e = SIMT_LAUNCH(broadcastKernel, grid, dim3(threads), 0, nullptr)(
            static_cast<float const*>(in), static_cast<float*>(out), n, stride);
    }
    else if (kind == 1)
    {
        e = launchGather<__half>(in, out, n, stride, threads);
    }
    else
    {
        e = launchGather<float>(in, out, n, stride, threads);
    }
    return simt::finishRun(e == cudaSuccess ? 0 : 1, 0, e, launch, err, errLen);
}
