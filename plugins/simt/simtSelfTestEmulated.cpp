/*
 * The emulator self-test kernel run by the emulator: C ABI for tests/test_kernel_emulation.py.
 */
#include "simtEmu.h"

#include "simtSelfTest.cu"

#include <algorithm>
#include <cstring>

/* input: kTHREADS int32, output: kTHREADS * kFIELDS int32. schedule: simt::Schedule. Returns 0, the
 * cudaError_t of a refused launch, or 100 when the kernel faulted (reason in err). */
extern "C" __attribute__((visibility("default"))) int32_t simt_selftest_run(
    int32_t const* input, int32_t* output, int32_t schedule, uint64_t seed, char* err, int32_t errLen)
{
    simt::resetState();
    simt::Options o;
    o.schedule = static_cast<simt::Schedule>(schedule);
    o.seed = seed;
    simt::setOptions(o);
    simt::trackGlobal(input, sizeof(int32_t) * simt_selftest::kTHREADS);
    cudaError_t const e = simt_selftest::launch(input, output, nullptr);
    std::string const& fault = simt::fault();
    if (err != nullptr && errLen > 0)
    {
        size_t const n = std::min(fault.size(), static_cast<size_t>(errLen - 1));
        std::memcpy(err, fault.data(), n);
        err[n] = '\0';
    }
    simt::clearTracked();
    return e != cudaSuccess ? static_cast<int32_t>(e) : (fault.empty() ? 0 : 100);
}
