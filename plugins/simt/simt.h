/*
 * The one header a CUDA kernel source includes to be runnable both on a GPU (nvcc) and in the
 * host SIMT emulator (g++ with -DSIMT_EMULATION, see simtEmu.h and plugins/simt/README.md).
 *
 * It only replaces the two pieces of CUDA syntax a host compiler cannot parse:
 *   SIMT_LAUNCH(kernel, grid, block, smem, stream)(args...)   kernel<<<grid, block, smem, stream>>>(args...)
 *   SIMT_DYNAMIC_SHARED(T, name);                             extern __shared__ T name[];
 * Under nvcc both expand to exactly that CUDA text, so the device code is unchanged token for token.
 */
#ifndef SIMT_H
#define SIMT_H

#if defined(__CUDACC__)

#define SIMT_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#define SIMT_DYNAMIC_SHARED(T, name) extern __shared__ T name[]

#elif defined(SIMT_EMULATION)

#include "simtEmu.h"
#define SIMT_LAUNCH(kernel, grid, block, smem, stream) ::simt::launcher(kernel, grid, block, smem, stream)
#define SIMT_DYNAMIC_SHARED(T, name) T* const name = ::simt::dynamicShared<T>()

#else
#error "a CUDA kernel source: compile it with nvcc, or with a host compiler and -DSIMT_EMULATION (plugins/simt)"
#endif

#endif // SIMT_H
