/*
 * Host SIMT emulator: runs a CUDA kernel's source, compiled by a host C++ compiler, over the grid
 * and block it is launched with, so its thread mapping, shuffles, shared-memory indexing, barriers
 * and fp16 conversions can be checked against a CPU reference on a machine without a GPU.
 *
 * Kernels include "simt.h" (not this file); a driver translation unit compiles the .cu file with
 * -DSIMT_EMULATION, the CUDA toolkit's include directory (host side of cuda_runtime.h and
 * cuda_fp16.h) and -ffp-contract=off, and links simtEmu.cpp.
 *
 * Model: every block runs on the calling OS thread, one cooperative fiber per CUDA thread. A fiber
 * runs until it reaches a barrier (__syncthreads, a warp shuffle/vote, __syncwarp) or returns; the
 * scheduler then releases a barrier once every thread it needs has arrived. So:
 *  - __syncthreads is a block barrier; it is a fault when some thread of the block exited instead;
 *  - __shfl_*_sync / __ballot_sync / __syncwarp wait for every lane named in the mask, which must all
 *    be at the same kind of warp operation with the same mask (else a fault), and the exchange is
 *    done by the scheduler at once (values as they were at the call);
 *  - dynamic shared memory is one buffer per block of exactly the launch's size, poisoned with 0xFF
 *    bytes (a NaN as float or half) before the block and followed by a guard checked after it; with
 *    options().countTraffic, each element reached through SIMT_DYNAMIC_SHARED's accessor (Shared) is
 *    counted into bank conflicts per warp request (sharedTraffic(), SharedCounters; every launch of a run);
 *  - static __shared__ variables are per-OS-thread statics, i.e. shared by the block (not poisoned);
 *  - __ldg checks alignment and, when buffers are tracked (trackGlobal), that it reads inside one;
 *  - the order fibers run in is a policy (forward, reverse, seeded shuffle): a kernel whose result
 *    depends on it has a race the emulator can show.
 *  - with options().countTraffic, every __ldg and simt::store is grouped into its warp's request and
 *    counted in 32-byte sectors, and every simt::f64 operation is counted (traffic(), TrafficCounters,
 *    summed over the launches of one run: a launcher's pre-pass is part of the operation);
 * Not modelled: timing, memory races inside one barrier interval (plain loads/stores are not
 * intercepted), real warp scheduling and independent-thread-scheduling interleavings, caches.
 */
#ifndef SIMT_EMU_H
#define SIMT_EMU_H

#if defined(__CUDACC__)
#error "simtEmu.h is the host emulation of CUDA; nvcc compiles the kernel natively"
#endif

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// Static shared memory: one instance per OS thread, and a whole block runs on one OS thread.
#undef __shared__
#define __shared__ static thread_local
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace simt
{

constexpr int kWarpSize = 32;

//! Order in which runnable fibers are resumed (each round).
enum class Schedule : int32_t
{
    kFORWARD = 0,  //!< thread 0, 1, 2, ...
    kREVERSE = 1,  //!< last thread first
    kSHUFFLED = 2, //!< a seeded random permutation per round
};

struct Options
{
    Schedule schedule = Schedule::kFORWARD;
    uint64_t seed = 0;
    //! 0: launch the grid as given. Otherwise at most this many blocks along x (gridDim.x reports
    //! it): a deliberate deviation that makes grid-stride loops take more than one step.
    uint32_t clampGridX = 0;
    //! Count global-memory traffic per launch (traffic()); off: one untaken branch per access.
    bool countTraffic = false;
};

//! What a profiler would count (options().countTraffic), summed over the launches of one run (since
//! resetState: a launcher's pre-pass belongs to the operation). A request is one warp instruction:
//! the accesses of a warp's lanes with the same program-order index since the lanes' last barrier or
//! warp operation (lockstep execution of convergent code). Sectors are 32 bytes.
struct TrafficCounters
{
    uint64_t loadRequests;         //!< global load requests (warp instructions)
    uint64_t loadSectors;          //!< sum over requests of the distinct sectors each touches
    uint64_t loadBytes;            //!< sum over requests of the distinct bytes its lanes asked for
    uint64_t storeRequests;
    uint64_t storeSectors;
    uint64_t storeBytes;
    uint64_t uniqueSectorsRead;    //!< distinct sectors read by the whole run
    uint64_t uniqueSectorsWritten; //!< distinct sectors written by the whole run
    uint64_t fp64Ops;              //!< float64 operations executed (simt::f64: one per PTX instruction)
};

//! One launch as requested, and what was run.
struct LaunchRecord
{
    dim3 grid;
    dim3 block;
    size_t sharedBytes;
    uint32_t gridXRun; //!< blocks run along x (== grid.x unless clampGridX)
};

void setOptions(Options const& o);
Options const& options();
//! __ldg must read inside one tracked buffer (when at least one is tracked).
void trackGlobal(void const* p, size_t bytes);
void clearTracked();
//! First fault of a kernel run since resetState ("" if none): what went wrong, where.
std::string const& fault();
std::vector<LaunchRecord> const& launches();
//! The traffic of every launch since resetState (zero unless options().countTraffic).
TrafficCounters const& traffic();
//! Forget faults, launch records, tracked buffers and the sticky launch error.
void resetState();
//! What cudaGetLastError / cudaPeekAtLastError report next (a driver's test hook: an error an earlier,
//! unrelated call left pending, which a launcher must neither clear nor report as its own).
void setLastError(cudaError_t e);

namespace detail
{

struct ThreadContext
{
    uint3 thread;
    uint3 block;
    dim3 blockDimV;
    dim3 gridDimV;
};

//! The warp-collective a fiber waits in (only compared, never stored or numbered).
enum class WarpOp : int32_t
{
    kSHFL,
    kSHFL_UP,
    kSHFL_DOWN,
    kSHFL_XOR,
    kBALLOT,
    kSYNC,
};

ThreadContext const& current();
void* dynamicSharedBase();
size_t dynamicSharedBytes();
[[noreturn]] void fail(std::string const& what);
void syncThreads();
uint64_t warpOp(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, char const* name);
void checkLoad(void const* p, size_t bytes, size_t align);
extern thread_local bool tCountTraffic; //!< options().countTraffic while a launch runs
extern thread_local uint64_t tFp64Ops;  //!< simt::f64 operations of the run, while counting
//! One lane's global access, grouped into its warp's request (traffic()).
void recordAccess(void const* p, size_t bytes, bool store);
//! Validate the configuration and run every block: cudaErrorInvalidConfiguration (also recorded for
//! cudaGetLastError) for a launch the hardware refuses, else cudaSuccess (kernel faults: fault()).
cudaError_t runGrid(dim3 grid, dim3 block, size_t sharedBytes, std::function<void()> const& threadBody);

template <typename T>
uint64_t toBits(T v)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp exchange of up to 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <typename T>
T fromBits(uint64_t b)
{
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

//! The emulated atomics: *p = update(old), returning old.
template <typename T, typename Update>
T readModifyWrite(T* p, Update update)
{
    T const old = *p;
    *p = update(old);
    return old;
}

} // namespace detail

//! A kernel launch: SIMT_LAUNCH(kernel, grid, block, smem, stream)(args...) -> this launch's error.
template <typename... Params>
struct Launch
{
    void (*kernel)(Params...);
    dim3 grid;
    dim3 block;
    size_t sharedBytes;

    template <typename... Args>
    cudaError_t operator()(Args&&... args) const
    {
        // Arguments are converted to the parameter types once, like nvcc's parameter buffer; every
        // thread then receives its own copy.
        std::tuple<std::decay_t<Params>...> const params(std::forward<Args>(args)...);
        auto const k = kernel;
        return detail::runGrid(grid, block, sharedBytes, [&params, k]() { std::apply(k, params); });
    }
};

template <typename... Params>
Launch<Params...> launcher(void (*kernel)(Params...), dim3 grid, dim3 block, size_t sharedBytes = 0,
    cudaStream_t /*stream*/ = nullptr)
{
    return Launch<Params...>{kernel, grid, block, sharedBytes};
}

//! A global store (simt.h: a plain store under nvcc), counted when options().countTraffic.
template <typename T>
void store(T* p, T const& v)
{
    if (detail::tCountTraffic)
    {
        detail::recordAccess(p, sizeof(T), true);
    }
    *p = v;
}

//! A float64 value whose operations the emulator counts (options().countTraffic), one per PTX
//! instruction they compile to: add, sub, mul, div, neg, compare, floor/ceil/trunc and every
//! conversion to or from another type (cvt). Under nvcc simt.h makes it plain `double`, so a kernel
//! written with it is unchanged on the GPU; a double literal or parameter becomes one for free (an
//! immediate or a register). Counting off costs one untaken branch per operation.
class f64
{
public:
    f64() = default;
    constexpr f64(double v) // NOLINT(google-explicit-constructor): a double is already a double
        : mV(v)
    {
    }
    //! From float, half-as-float or an integer: one cvt.f64.*.
    template <typename U,
        typename std::enable_if<std::is_arithmetic<U>::value && !std::is_same<U, double>::value, int>::type = 0>
    f64(U v) // NOLINT(google-explicit-constructor)
        : mV(static_cast<double>(v))
    {
        count();
    }
    //! To double: free; to an integer or float: one cvt.
    template <typename U, typename std::enable_if<std::is_arithmetic<U>::value, int>::type = 0>
    explicit operator U() const
    {
        if (!std::is_same<U, double>::value)
        {
            count();
        }
        return static_cast<U>(mV);
    }
    double raw() const
    {
        return mV;
    }

    friend f64 operator+(f64 a, f64 b)
    {
        return counted(a.mV + b.mV);
    }
    friend f64 operator-(f64 a, f64 b)
    {
        return counted(a.mV - b.mV);
    }
    friend f64 operator*(f64 a, f64 b)
    {
        return counted(a.mV * b.mV);
    }
    friend f64 operator/(f64 a, f64 b)
    {
        return counted(a.mV / b.mV);
    }
    friend f64 operator-(f64 a)
    {
        return counted(-a.mV);
    }
    f64& operator+=(f64 b)
    {
        return *this = *this + b;
    }
    f64& operator-=(f64 b)
    {
        return *this = *this - b;
    }
    f64& operator*=(f64 b)
    {
        return *this = *this * b;
    }
    f64& operator/=(f64 b)
    {
        return *this = *this / b;
    }
    friend bool operator<(f64 a, f64 b)
    {
        return count(), a.mV < b.mV;
    }
    friend bool operator>(f64 a, f64 b)
    {
        return count(), a.mV > b.mV;
    }
    friend bool operator<=(f64 a, f64 b)
    {
        return count(), a.mV <= b.mV;
    }
    friend bool operator>=(f64 a, f64 b)
    {
        return count(), a.mV >= b.mV;
    }
    friend bool operator==(f64 a, f64 b)
    {
        return count(), a.mV == b.mV;
    }
    friend bool operator!=(f64 a, f64 b)
    {
        return count(), a.mV != b.mV;
    }
    // cvt.rmi / cvt.rpi / cvt.rzi.f64.f64 (found by argument-dependent lookup)
    friend f64 floor(f64 a)
    {
        return counted(std::floor(a.mV));
    }
    friend f64 ceil(f64 a)
    {
        return counted(std::ceil(a.mV));
    }
    friend f64 trunc(f64 a)
    {
        return counted(std::trunc(a.mV));
    }
    friend f64 fabs(f64 a)
    {
        return counted(std::fabs(a.mV));
    }

private:
    static void count()
    {
        if (detail::tCountTraffic)
        {
            ++detail::tFp64Ops;
        }
    }
    static f64 counted(double v)
    {
        count();
        return f64(v);
    }

    double mV;
};

//! The block's dynamic shared memory (extern __shared__ T name[]).
template <typename T>
T* dynamicShared()
{
    return static_cast<T*>(detail::dynamicSharedBase());
}

// ---- shared-memory bank conflicts (options().countTraffic) ---------------------------------------

//! The dynamic shared-memory traffic of every launch since resetState (a driver's run: a launcher's
//! pre-pass included). A request is one warp instruction (grouped as
//! TrafficCounters' requests, with its own program-order index); its wavefronts are the most distinct
//! 4-byte words one of the 32 banks serves (a word read by several lanes is a broadcast, served once).
struct SharedCounters
{
    uint64_t requests;      //!< shared-memory requests (warp instructions; reads and writes alike)
    uint64_t wavefronts;    //!< sum over requests of the bank passes each needs
    uint64_t bankConflicts; //!< extra passes: wavefronts minus ceil(distinct words / 32) per request
    uint64_t bytes;         //!< sum over requests of the distinct bytes its lanes asked for
};

//! The shared-memory counters of every launch since resetState (zero unless options().countTraffic).
SharedCounters const& sharedTraffic();

namespace detail
{
//! One lane's access to the block's dynamic shared memory, grouped into its warp's request.
void recordShared(void const* p, size_t bytes);
} // namespace detail

//! SIMT_DYNAMIC_SHARED's name under emulation: a pointer into the block's dynamic shared memory that
//! records each element it yields when counting (one untaken branch otherwise). Drop-in for the
//! kernel's `extern __shared__ T name[]`: `name[i]` (read, write, `&name[i]`), `*name`, `name + k`
//! (another counted view; `auto` keeps it one), a `Shared<T const>` view; it converts to a plain
//! `T*` for calls that take one (accesses through that pointer are not counted). One request per
//! element yielded: a read-modify-write (`name[i] += v`) counts once; `reinterpret_cast` needs the
//! plain pointer (`reinterpret_cast<U*>(name.get())`).
template <typename T>
class Shared
{
public:
    explicit Shared(T* p)
        : mP(p)
    {
    }

    //! Shared<T> -> Shared<T const>.
    template <typename U, typename = std::enable_if_t<std::is_convertible<U*, T*>::value>>
    Shared(Shared<U> const& o)
        : mP(o.get())
    {
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    T& operator[](I i) const
    {
        return *counted(mP + i);
    }

    T& operator*() const
    {
        return *counted(mP);
    }

    T* operator->() const
    {
        return counted(mP);
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    Shared operator+(I k) const
    {
        return Shared(mP + k);
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    friend Shared operator+(I k, Shared s)
    {
        return Shared(s.mP + k);
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    Shared operator-(I k) const
    {
        return Shared(mP - k);
    }

    std::ptrdiff_t operator-(Shared o) const
    {
        return mP - o.mP;
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    Shared& operator+=(I k)
    {
        mP += k;
        return *this;
    }

    template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
    Shared& operator-=(I k)
    {
        mP -= k;
        return *this;
    }

    Shared& operator++()
    {
        ++mP;
        return *this;
    }

    Shared operator++(int)
    {
        return Shared(mP++);
    }

    Shared& operator--()
    {
        --mP;
        return *this;
    }

    Shared operator--(int)
    {
        return Shared(mP--);
    }

    //! The plain pointer (uncounted accesses), for calls and casts that need one.
    operator T*() const
    {
        return mP;
    }

    T* get() const
    {
        return mP;
    }

private:
    static T* counted(T* q)
    {
        if (detail::tCountTraffic)
        {
            detail::recordShared(q, sizeof(T));
        }
        return q;
    }

    T* mP;
};

// ---- end of shared-memory bank conflicts -------------------------------------------------------

} // namespace simt

// ---- built-in variables ---------------------------------------------------------------------------

#define threadIdx (::simt::detail::current().thread)
#define blockIdx (::simt::detail::current().block)
#define blockDim (::simt::detail::current().blockDimV)
#define gridDim (::simt::detail::current().gridDimV)
constexpr int warpSize = ::simt::kWarpSize;

// ---- synchronisation -------------------------------------------------------------------------------

inline void __syncthreads()
{
    ::simt::detail::syncThreads();
}

inline void __syncwarp(unsigned mask = 0xFFFFFFFFU)
{
    ::simt::detail::warpOp(::simt::detail::WarpOp::kSYNC, mask, 0, 0, ::simt::kWarpSize, "__syncwarp");
}

template <typename T>
T __shfl_sync(unsigned mask, T var, int srcLane, int width = ::simt::kWarpSize)
{
    using namespace ::simt::detail;
    return fromBits<T>(warpOp(WarpOp::kSHFL, mask, toBits(var), srcLane, width, "__shfl_sync"));
}

template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = ::simt::kWarpSize)
{
    using namespace ::simt::detail;
    return fromBits<T>(warpOp(WarpOp::kSHFL_UP, mask, toBits(var), static_cast<int>(delta), width, "__shfl_up_sync"));
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = ::simt::kWarpSize)
{
    using namespace ::simt::detail;
    return fromBits<T>(
        warpOp(WarpOp::kSHFL_DOWN, mask, toBits(var), static_cast<int>(delta), width, "__shfl_down_sync"));
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = ::simt::kWarpSize)
{
    using namespace ::simt::detail;
    return fromBits<T>(warpOp(WarpOp::kSHFL_XOR, mask, toBits(var), laneMask, width, "__shfl_xor_sync"));
}

inline unsigned __ballot_sync(unsigned mask, int predicate)
{
    using namespace ::simt::detail;
    return static_cast<unsigned>(
        warpOp(WarpOp::kBALLOT, mask, predicate != 0 ? 1U : 0U, 0, ::simt::kWarpSize, "__ballot_sync"));
}

inline int __any_sync(unsigned mask, int predicate)
{
    return __ballot_sync(mask, predicate) != 0;
}

inline int __all_sync(unsigned mask, int predicate)
{
    return __ballot_sync(mask, predicate) == mask;
}

// ---- memory ---------------------------------------------------------------------------------------

template <typename T>
T __ldg(T const* p)
{
    ::simt::detail::checkLoad(p, sizeof(T), alignof(T));
    if (::simt::detail::tCountTraffic)
    {
        ::simt::detail::recordAccess(p, sizeof(T), false);
    }
    return *p;
}

// Atomics: fibers are cooperative (no preemption inside a call), so a plain read-modify-write is
// atomic. Each one is *p = update(old), returning old.
template <typename T>
T atomicAdd(T* p, T v)
{
    return ::simt::detail::readModifyWrite(p, [v](T old) { return old + v; });
}

template <typename T>
T atomicMax(T* p, T v)
{
    return ::simt::detail::readModifyWrite(p, [v](T old) { return old < v ? v : old; });
}

template <typename T>
T atomicMin(T* p, T v)
{
    return ::simt::detail::readModifyWrite(p, [v](T old) { return v < old ? v : old; });
}

template <typename T>
T atomicExch(T* p, T v)
{
    return ::simt::detail::readModifyWrite(p, [v](T) { return v; });
}

template <typename T>
T atomicCAS(T* p, T compare, T v)
{
    return ::simt::detail::readModifyWrite(p, [compare, v](T old) { return old == compare ? v : old; });
}

// ---- float intrinsics: IEEE single-precision, round to nearest even (needs -ffp-contract=off) ----

inline float __fadd_rn(float a, float b)
{
    volatile float r = a + b;
    return r;
}

inline float __fsub_rn(float a, float b)
{
    volatile float r = a - b;
    return r;
}

inline float __fmul_rn(float a, float b)
{
    volatile float r = a * b;
    return r;
}

inline float __fdiv_rn(float a, float b)
{
    volatile float r = a / b;
    return r;
}

inline float __frcp_rn(float a)
{
    volatile float r = 1.0F / a;
    return r;
}

inline float __fsqrt_rn(float a)
{
    return std::sqrt(a);
}

inline float __fmaf_rn(float a, float b, float c)
{
    return std::fma(a, b, c);
}

inline float __int2float_rn(int v)
{
    return static_cast<float>(v);
}

inline float __ll2float_rn(long long v)
{
    return static_cast<float>(v);
}

inline int __float2int_rn(float v)
{
    return static_cast<int>(std::nearbyint(v));
}

inline int __float2int_rz(float v)
{
    return static_cast<int>(v);
}

inline int __float_as_int(float v)
{
    return ::simt::detail::fromBits<int>(::simt::detail::toBits(v));
}

inline unsigned __float_as_uint(float v)
{
    return ::simt::detail::fromBits<unsigned>(::simt::detail::toBits(v));
}

inline float __int_as_float(int v)
{
    return ::simt::detail::fromBits<float>(::simt::detail::toBits(v));
}

inline float __uint_as_float(unsigned v)
{
    return ::simt::detail::fromBits<float>(::simt::detail::toBits(v));
}

#endif // SIMT_EMU_H
