/*
 * A hand-written kernel whose float64 operation count follows from its code alone, run by the SIMT
 * emulator: it checks the FP64 counter (simt::f64, TrafficCounters::fp64Ops) the way the traffic
 * probe checks the sector counters. A C ABI library for tests/native/test_fp64_counter.py
 * (spp_deploy.native.traffic.build_fp64_probe builds it).
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1
#endif
#include "simt.h"

#include "simtDriver.h"

namespace
{

//! Per thread: 1 cvt (float -> f64); `iterations` x (add, div); 1 compare; where x > 0 also floor and
//! sub; the store as double is free. So 2 + 2 * iterations operations, plus 2 per positive input.
__global__ void fp64Kernel(float const* in, double* out, int64_t n, int32_t iterations)
{
    int64_t const i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n)
    {
        simt::f64 const x = __ldg(in + i);
        simt::f64 acc = 0.0;
        for (int32_t k = 0; k < iterations; ++k)
        {
            acc = (acc + x) / 3.0;
        }
        if (x > 0.0)
        {
            acc = floor(acc) - 1.0;
        }
        simt::store(out + i, static_cast<double>(acc));
    }
}

} // namespace

SIMT_DRIVER_API int32_t simt_fp64_probe_abi_version()
{
    return 1;
}

/* out[i] (float64) for in[0..n) (float32), one thread per element in blocks of `threads`. */
SIMT_DRIVER_API int32_t simt_fp64_probe_forward(void const* in, int64_t n, int32_t iterations, int32_t threads,
    void* out, int32_t schedule, uint64_t seed, uint32_t clampGridX, simt::DriverLaunch* launch, char* err,
    int32_t errLen)
{
    simt::beginRun(schedule, seed, clampGridX);
    simt::trackGlobal(in, static_cast<size_t>(n) * sizeof(float));
    dim3 const grid(static_cast<uint32_t>((n + threads - 1) / threads));
    cudaError_t const e = SIMT_LAUNCH(fp64Kernel, grid, dim3(threads), 0, nullptr)(
        static_cast<float const*>(in), static_cast<double*>(out), n, iterations);
    return simt::finishRun(e == cudaSuccess ? 0 : 1, 0, e, launch, err, errLen);
}
