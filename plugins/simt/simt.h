/*
 * The one header a CUDA kernel source includes to be runnable both on a GPU (nvcc) and in the
 * host SIMT emulator (g++ with -DSIMT_EMULATION, see simtEmu.h and plugins/simt/README.md).
 *
 * It only replaces the two pieces of CUDA syntax a host compiler cannot parse:
 *   SIMT_LAUNCH(kernel, grid, block, smem, stream)(args...)   the launch, returning its own cudaError_t
 *   SIMT_DYNAMIC_SHARED(T, name);                             extern __shared__ T name[];
 *                                                             (emulated: simt::Shared<T>, which counts bank conflicts)
 *   simt::store(p, v)                                         *p = v (the emulator counts global stores)
 *   simt::f64                                                 double (the emulator counts its operations)
 * Under nvcc the launch is cudaLaunchKernelEx (CUDA >= 11.8), which returns this launch's error
 * without the cudaGetLastError a <<<>>> launch needs (that call would also clear, and so swallow,
 * an error TensorRT or the application left pending); the device code is unchanged token for token.
 */
#ifndef SIMT_H
#define SIMT_H

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#include <utility>

namespace simt
{
//! SIMT_LAUNCH(kernel, grid, block, smem, stream)(args...) -> cudaLaunchKernelEx's error.
template <typename... Params>
struct Launch
{
    void (*kernel)(Params...);
    cudaLaunchConfig_t config;

    template <typename... Args>
    cudaError_t operator()(Args&&... args) const
    {
        return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
    }
};

template <typename... Params>
Launch<Params...> launcher(void (*kernel)(Params...), dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream)
{
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = sharedBytes;
    config.stream = stream;
    return Launch<Params...>{kernel, config};
}

//! A global store: plain under nvcc; the emulator counts it (memory-traffic counters).
template <typename T>
__device__ __forceinline__ void store(T* p, T const& v)
{
    *p = v;
}

//! A float64 value: plain double on the GPU; the emulator's counting class (simtEmu.h) counts its operations.
using f64 = double;
} // namespace simt

#define SIMT_LAUNCH(kernel, grid, block, smem, stream) ::simt::launcher(kernel, grid, block, smem, stream)
#define SIMT_DYNAMIC_SHARED(T, name) extern __shared__ T name[]

#elif defined(SIMT_EMULATION)

#include "simtEmu.h"
#define SIMT_LAUNCH(kernel, grid, block, smem, stream) ::simt::launcher(kernel, grid, block, smem, stream)
#define SIMT_DYNAMIC_SHARED(T, name) ::simt::Shared<T> const name(::simt::dynamicShared<T>())

#else
#error "a CUDA kernel source: compile it with nvcc, or with a host compiler and -DSIMT_EMULATION (plugins/simt)"
#endif

#endif // SIMT_H
