/*
 * SPP bin rules: the C++ twin of spp_deploy/ops/bins.py (the Python single source of truth).
 *
 * This header is the ONLY C++ place with the bin formulas. The CPU reference, the CUDA kernel and
 * the TensorRT plugin all include it. Exact definitions: docs/bin-rules.md.
 *
 * Per axis of size S at level n, bin i in [0, n) is the half-open range [start, end); `span` is this
 * axis' factor of the avg divisor; `valid` says whether the source layer is defined and fixed-length
 * on this axis (Python: AxisBins.valid). Names mirror bins.py:
 *   bins.py _adaptive / _ceil_pad / _floor_kernel / _rounded  ->  adaptive / ceilPad / floorKernel / rounded
 *   bins.py axis_bins(rule, size, n, height)                   ->  axisBins(rule, size, n, i, height)
 *   bins.py size_error / is_defined                            ->  sizeError / isDefined
 *   bins.py feature_count                                      ->  featureCount
 *
 * Host/device: functions are __host__ __device__ under nvcc and plain inline under a host compiler.
 * The `rounded` rule does float32 arithmetic with explicitly non-contractible operations
 * (__fmul_rn/__fadd_rn/__fdiv_rn on device, volatile stores on host) and rintf (round half to even
 * under the default rounding mode), so it cannot be turned into an FMA by any compiler flag.
 */
#ifndef SPP_BINS_H
#define SPP_BINS_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define SPP_HD __host__ __device__ __forceinline__
#else
#define SPP_HD inline
#endif

// Device spelling of the float ops: in device code, and in the host SIMT emulator (plugins/simt,
// which defines __fmul_rn & co. on the host), so the emulated kernel runs the device branch.
#if defined(__CUDA_ARCH__) || defined(SIMT_EMULATION)
#define SPP_DEVICE_FLOAT_OPS 1
#endif

namespace spp
{

//! Bin rules (bins.py RULES, same order).
enum class BinRule : int32_t
{
    kADAPTIVE = 0,
    kCEIL_PAD = 1,
    kFLOOR_KERNEL = 2,
    kROUNDED = 3,
};

//! Pooling modes (bins.py MODES, same order).
enum class PoolMode : int32_t
{
    kMAX = 0,
    kAVG = 1,
};

//! Flatten orders (bins.py ORDERS, same order).
enum class FlattenOrder : int32_t
{
    kCHANNEL_MAJOR = 0,
    kBIN_MAJOR = 1,
};

constexpr int32_t kMAX_NB_LEVELS = 16; //!< at most 16 pyramid levels
constexpr int32_t kMAX_LEVEL = 64;     //!< each level n in 1..64 (n x n bins)

//! One bin of one axis, plus the axis' validity (bins.py AxisBins, for a single i).
struct AxisBin
{
    int64_t start; //!< first index (inclusive)
    int64_t end;   //!< last index (exclusive)
    int64_t span;  //!< this axis' factor of the avg divisor
    bool valid;    //!< the source layer is defined and fixed-length on this axis
};

// ---- float32 operations that cannot be contracted into FMA -----------------------------------

// f32Mul, f32Add, f32Div: one definition, three operators. Device (and SIMT emulator): the _rn
// intrinsic; host: the result goes through a volatile float, which forbids contraction.
#if defined(SPP_DEVICE_FLOAT_OPS)
#define SPP_F32_OP(name, op, intrinsic)                                                                      \
    SPP_HD float name(float a, float b)                                                                       \
    {                                                                                                         \
        return intrinsic(a, b);                                                                               \
    }
#else
#define SPP_F32_OP(name, op, intrinsic)                                                                      \
    SPP_HD float name(float a, float b)                                                                       \
    {                                                                                                         \
        volatile float r = a op b;                                                                            \
        return r;                                                                                             \
    }
#endif
SPP_F32_OP(f32Mul, *, __fmul_rn)
SPP_F32_OP(f32Add, +, __fadd_rn)
SPP_F32_OP(f32Div, /, __fdiv_rn)
#undef SPP_F32_OP

//! float32(v) with round-to-nearest (numpy astype(float32)).
SPP_HD float f32FromI64(int64_t v)
{
#if defined(SPP_DEVICE_FLOAT_OPS)
    return __ll2float_rn(static_cast<long long>(v));
#else
    volatile float r = static_cast<float>(v);
    return r;
#endif
}

//! rint half-to-even to int64 (numpy rint(...).astype(int64)).
SPP_HD int64_t rintToI64(float x)
{
    return static_cast<int64_t>(rintf(x));
}

SPP_HD int64_t floorDiv(int64_t a, int64_t b)
{
    // Operands are non-negative in every rule (bins.py NumpyOps.floordiv).
    return a / b;
}

SPP_HD int64_t i64Min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

SPP_HD int64_t i64Max(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

// ---- the rules (bins.py _adaptive, _ceil_pad, _floor_kernel, _rounded) ------------------------

//! adaptive: start = floor(i*S/n), end = ceil((i+1)*S/n); defined for S >= 1.
SPP_HD AxisBin adaptive(int64_t S, int64_t n, int64_t i, int64_t /*H*/)
{
    AxisBin b;
    b.start = floorDiv(i * S, n);
    b.end = floorDiv((i + 1) * S + (n - 1), n);
    b.span = b.end - b.start;
    b.valid = S >= 1;
    return b;
}

//! ceil_pad: k = ceil(S/n), p = floor((k*n - S + 1)/2), start = max(0, i*k - p), end = min(S, i*k - p + k);
//! defined where p <= floor(k/2) (PyTorch max_pool2d padding limit). avg divisor factor: k.
SPP_HD AxisBin ceilPad(int64_t S, int64_t n, int64_t i, int64_t /*H*/)
{
    int64_t const k = floorDiv(S + (n - 1), n);
    int64_t const p = floorDiv(k * n - S + 1, 2);
    int64_t const lo = i * k - p;
    AxisBin b;
    b.start = i64Max(lo, 0);
    b.end = i64Min(lo + k, S);
    b.span = k;
    b.valid = S >= 1 && p <= floorDiv(k, 2);
    return b;
}

//! floor_kernel: one square kernel k = H // n from the height; start = i*k, end = start + k;
//! fixed-length only where k >= 1 and S // k == n on this axis.
SPP_HD AxisBin floorKernel(int64_t S, int64_t n, int64_t i, int64_t H)
{
    int64_t const k = floorDiv(H, n);
    int64_t const safeK = i64Max(k, 1);
    AxisBin b;
    b.start = i * k;
    b.end = b.start + k;
    b.span = b.end - b.start;
    b.valid = k >= 1 && floorDiv(S, safeK) == n;
    return b;
}

//! rounded: L = float32(S) / float32(n); start = rint(float32(i) * L); end = rint(float32(i) * L + L)
//! (i*L + L, as the Keras layer computes it); defined for S >= n.
SPP_HD AxisBin rounded(int64_t S, int64_t n, int64_t i, int64_t /*H*/)
{
    float const length = f32Div(f32FromI64(S), f32FromI64(n));
    float const lo = f32Mul(f32FromI64(i), length);
    AxisBin b;
    b.start = rintToI64(lo);
    b.end = rintToI64(f32Add(lo, length));
    b.span = b.end - b.start;
    b.valid = S >= n;
    return b;
}

//! Bin i of an axis of `size` at level n; `height` is H (floor_kernel's kernel source).
//! Callers guarantee n >= 1 and 0 <= i < n.
SPP_HD AxisBin axisBins(BinRule rule, int64_t size, int64_t n, int64_t i, int64_t height)
{
    switch (rule)
    {
    case BinRule::kADAPTIVE: return adaptive(size, n, i, height);
    case BinRule::kCEIL_PAD: return ceilPad(size, n, i, height);
    case BinRule::kFLOOR_KERNEL: return floorKernel(size, n, i, height);
    case BinRule::kROUNDED: return rounded(size, n, i, height);
    }
    AxisBin bad{0, 0, 0, false};
    return bad;
}

//! Whether an axis of `size` is legal at level n: the rule's validity (bins.py AxisBins.valid) AND,
//! defensively, every bin is a non-empty in-bounds range with a positive divisor (true whenever
//! the rule is valid for sizes that fit in float32 exactly; this guard is what makes out-of-bounds
//! reads impossible whatever the size).
SPP_HD bool axisValid(BinRule rule, int64_t size, int64_t n, int64_t height)
{
    if (n < 1 || n > kMAX_LEVEL || size < 1 || height < 1)
    {
        return false;
    }
    if (!axisBins(rule, size, n, 0, height).valid)
    {
        return false;
    }
    for (int64_t i = 0; i < n; ++i)
    {
        AxisBin const b = axisBins(rule, size, n, i, height);
        if (b.start < 0 || b.end > size || b.start >= b.end || b.span < 1)
        {
            return false;
        }
    }
    return true;
}

//! bins.py size_error: 0 when `rule` is legal at H x W for every level, else 1 + the index of the
//! first failing level (axis: *badAxis = 0 for H, 1 for W when non-null).
SPP_HD int32_t sizeError(BinRule rule, int64_t H, int64_t W, int32_t const* levels, int32_t nbLevels,
    int32_t* badAxis = nullptr)
{
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        int64_t const n = levels[l];
        if (!axisValid(rule, H, n, H))
        {
            if (badAxis)
            {
                *badAxis = 0;
            }
            return l + 1;
        }
        if (!axisValid(rule, W, n, H))
        {
            if (badAxis)
            {
                *badAxis = 1;
            }
            return l + 1;
        }
    }
    return 0;
}

//! bins.py is_defined.
SPP_HD bool isDefined(BinRule rule, int64_t H, int64_t W, int32_t const* levels, int32_t nbLevels)
{
    return sizeError(rule, H, W, levels, nbLevels) == 0;
}

//! bins.py feature_count: C * sum(n^2).
SPP_HD int64_t featureCount(int64_t channels, int32_t const* levels, int32_t nbLevels)
{
    int64_t s = 0;
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        s += static_cast<int64_t>(levels[l]) * levels[l];
    }
    return channels * s;
}

//! Whether bin rule `rule` nests: a coarser level m is the exact union of the finer level n's bins
//! (bins.py BinRule.nests) when m divides n. Only exact for max (overlapping pixels).
SPP_HD bool ruleNests(BinRule rule)
{
    return rule == BinRule::kADAPTIVE;
}

} // namespace spp

#endif // SPP_BINS_H
