/*
 * The emulator self-test kernel run by the emulator: C ABI for tests/native/test_kernel_emulation.py.
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1 // a host build of a .cu file (simt.h): any plain g++ check compiles it
#endif
#include "simtEmu.h"

#include "simtSelfTest.cu"

#include "simtDriver.h"

/* input: kTHREADS int32, output: kTHREADS * kFIELDS int32. schedule: simt::Schedule. Returns 0, the
 * cudaError_t of a refused launch, or 100 when the kernel faulted (reason in err). */
SIMT_DRIVER_API int32_t simt_selftest_run(
    int32_t const* input, int32_t* output, int32_t schedule, uint64_t seed, char* err, int32_t errLen)
{
    simt::beginRun(schedule, seed);
    simt::trackGlobal(input, sizeof(int32_t) * simt_selftest::kTHREADS);
    cudaError_t const e = simt_selftest::launch(input, output, nullptr);
    return simt::finishRun(static_cast<int32_t>(e), static_cast<int32_t>(cudaSuccess), e, nullptr, err, errLen);
}
