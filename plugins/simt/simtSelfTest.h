/*
 * A CUDA kernel exercising the primitives the SIMT emulator models (2-D blocks, every shuffle kind
 * and width, votes, static/dynamic shared memory, barriers, shared atomics). Its expected output
 * follows CUDA's documented semantics (spp_deploy/native/emulator_selftest.py selftest_expected): the tests run it
 * emulated, benchmarks/gpu_check.py runs it on a GPU, so the emulator's model is checked against
 * the hardware too.
 */
#ifndef SIMT_SELF_TEST_H
#define SIMT_SELF_TEST_H

#include <cuda_runtime_api.h>
#include <stdint.h>

namespace simt_selftest
{

constexpr int32_t kBLOCK_X = 16;
constexpr int32_t kBLOCK_Y = 4;
constexpr int32_t kBLOCKS = 3;
constexpr int32_t kTHREADS = kBLOCK_X * kBLOCK_Y * kBLOCKS; //!< input: one int32 per thread
constexpr int32_t kFIELDS = 16;                             //!< output: kFIELDS int32 per thread

//! Launch on `stream`; returns the cudaGetLastError() after the launch.
cudaError_t launch(int32_t const* input, int32_t* output, cudaStream_t stream);

} // namespace simt_selftest

#endif // SIMT_SELF_TEST_H
