/*
 * Hand-written kernels with known shared-memory bank conflicts, run by the SIMT emulator: they check
 * its bank counters (simt::SharedCounters) against answers that follow from the access pattern alone
 * (32 banks of 4 bytes: float stride 1 has no conflict, stride 2 is 2-way, stride 32 is 32-way, all
 * lanes reading one word is a broadcast). They also use the accessor the way kernels do (views,
 * const views, read-modify-write, atomics on an element's address, the plain pointer), so a change
 * that breaks a kernel's use of SIMT_DYNAMIC_SHARED fails to compile here first.
 * A C ABI library for tests/native/test_bank_conflicts.py (spp_deploy.native.traffic builds it).
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1
#endif
#include "simt.h"

#include "simtDriver.h"

namespace
{

enum Kind : int32_t
{
    kSTRIDED = 0,   //!< s[t * stride] = in[i]; then out[i] = s[t * stride]
    kBROADCAST = 1, //!< thread 0 writes s[0]; every lane reads it
    kVIEW = 2,      //!< kSTRIDED through a view one element in and a const view of it
    kATOMIC = 3,    //!< s[t * stride] = 0, atomicAdd(&s[t * stride], in[i]), s[t * stride] += 0, read back
};

template <typename T>
T zero()
{
    return static_cast<T>(0.0F);
}

template <>
__half zero<__half>()
{
    return __float2half(0.0F);
}

template <typename T>
__global__ void bankKernel(T const* in, T* out, int64_t n, int64_t stride, int32_t kind)
{
    SIMT_DYNAMIC_SHARED(T, s);
    int64_t const t = threadIdx.x;
    int64_t const i = static_cast<int64_t>(blockIdx.x) * blockDim.x + t;
    bool const live = i < n;
    if (kind == kBROADCAST)
    {
        if (t == 0)
        {
            *s = __ldg(in + blockIdx.x * static_cast<int64_t>(blockDim.x));
        }
        __syncthreads();
        if (live)
        {
            simt::store(out + i, s[0]);
        }
        return;
    }
    auto const view = kind == kVIEW ? s + 1 : s;
    if (live)
    {
        view[t * stride] = __ldg(in + i);
    }
    __syncthreads();
    if (kind == kATOMIC && live)
    {
        T* const plain = view; // the plain pointer: not counted
        T const v = plain[t * stride];
        view[t * stride] = zero<T>();
        atomicAdd(&view[t * stride], v);
        view[t * stride] += zero<T>();
    }
    __syncthreads();
    simt::Shared<T const> const readOnly = view;
    if (live)
    {
        simt::store(out + i, readOnly[t * stride]);
    }
}

template <typename T>
cudaError_t launchBank(void const* in, void* out, int64_t n, int64_t stride, int32_t threads, int32_t kind)
{
    dim3 const grid(static_cast<uint32_t>((n + threads - 1) / threads));
    size_t const shared = (static_cast<size_t>(threads) * static_cast<size_t>(stride > 0 ? stride : 1) + 1) * sizeof(T);
    auto* const k = bankKernel<T>;
    return SIMT_LAUNCH(k, grid, dim3(threads), shared, nullptr)(
        static_cast<T const*>(in), static_cast<T*>(out), n, stride, kind);
}

} // namespace

SIMT_DRIVER_API int32_t simt_bank_probe_abi_version()
{
    return 1;
}

/* kind: Kind above; dtype 0 float32, 1 float16, 2 int32, 3 float64. n threads in blocks of `threads`;
 * `in` holds n elements (tracked), out receives them back through shared memory. */
SIMT_DRIVER_API int32_t simt_bank_probe_forward(void const* in, int32_t kind, int32_t dtype, int64_t n,
    int64_t stride, int32_t threads, void* out, int32_t schedule, uint64_t seed, uint32_t clampGridX,
    simt::DriverLaunch* launch, char* err, int32_t errLen)
{
    static size_t const itemBytes[] = {sizeof(float), sizeof(__half), sizeof(int32_t), sizeof(double)};
    if (dtype < 0 || dtype > 3 || kind < kSTRIDED || kind > kATOMIC || (kind == kATOMIC && dtype == 1))
    {
        return 2;
    }
    simt::beginRun(schedule, seed, clampGridX);
    simt::trackGlobal(in, static_cast<size_t>(n) * itemBytes[dtype]);
    cudaError_t e;
    switch (dtype)
    {
    case 1: e = launchBank<__half>(in, out, n, stride, threads, kind); break;
    case 2: e = launchBank<int32_t>(in, out, n, stride, threads, kind); break;
    case 3: e = launchBank<double>(in, out, n, stride, threads, kind); break;
    default: e = launchBank<float>(in, out, n, stride, threads, kind); break;
    }
    return simt::finishRun(e == cudaSuccess ? 0 : 1, 0, e, launch, err, errLen);
}
