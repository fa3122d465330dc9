/*
 * SPP-net window pooling: the C++ twin of spp_deploy/ops/projection.py (`project_span`) and of the
 * window checks of spp_deploy/ops/window_pyramid.py (`check_windows`, `validate_levels`).
 *
 * The ONLY C++ copy of the window projection; the CPU reference (windowReference.cpp) and the CUDA
 * kernel (windowSpatialPyramidPoolKernel.cu) both include it. Bin edges inside a projected window
 * are sppBins.h's `adaptive` rule applied to the window's height and width (docs/window-spp.md
 * section 3); nothing here restates them.
 *
 * Arithmetic: float64, in projection.py's order of operations ((lo - offset0 + offset) / stride + 0.5,
 * floor, + 1; the collapse of an inverted span to trunc((first + last) / 2); then the clamp to
 * [1, size]). There is no multiplication, so no compiler can contract anything into an FMA, and CUDA
 * double add/sub/div round to nearest like the host. Windows arrive as fp32/fp16 and are widened to
 * double exactly, as the eager op's `windows.to(torch.float64)` does.
 */
#ifndef SPP_WINDOW_SPP_H
#define SPP_WINDOW_SPP_H

#include "../common/sppBins.h"

#include <math.h>
#include <stdint.h>

namespace spp
{

//! Window levels: window.py EXACT_LEVELS, the n where the released code's float32 bin edges equal
//! the exact adaptive rule (tests/test_window.py re-derives the set; tests compare with this list).
constexpr int32_t kWINDOW_LEVELS[] = {1, 2, 3, 4, 6, 8, 16};
constexpr int32_t kWINDOW_MAX_LEVEL = 16;

//! Host only (the launcher and the config parser check levels; device code never needs to).
inline bool isWindowLevel(int64_t n)
{
    for (int32_t v : kWINDOW_LEVELS)
    {
        if (n == v)
        {
            return true;
        }
    }
    return false;
}

//! projection.py WindowProjection: stride S, offset0, inward shrink offset.
struct WindowProjection
{
    double stride;
    double offset0;
    double offset;
};

//! A projected window: map index and 1-based inclusive cells, clamped to the H x W map.
//! valid = false where the eager op raises (check_windows): a non-finite value, a map index that is
//! not an integer in [0, S), or a map without cells (H or W < 1).
struct WindowCells
{
    int64_t map;
    int64_t left;
    int64_t top;
    int64_t right;
    int64_t bottom;
    bool valid;
};

template <typename D = double>
SPP_HD D clampCell(D v, D size)
{
    // torch clamp(v, 1, size) = min(max(v, 1), size); v is finite here.
    D const lo = v < 1.0 ? D(1.0) : v;
    return lo > size ? size : lo;
}

//! projection.py project_span: pixels [lo, hi] (1-based inclusive, float64) -> cells [first, last]
//! of an axis of `size` cells. Writes the clamped cells as doubles (exact integers in [1, size]).
template <typename D = double>
SPP_HD void projectSpan(D lo, D hi, D size, WindowProjection const& p, D& first, D& last)
{
    D f = floor((lo - p.offset0 + p.offset) / p.stride + 0.5) + 1.0;
    D l = ceil((hi - p.offset0 - p.offset) / p.stride - 0.5) + 1.0;
    D const mid = trunc((f + l) / 2.0); // C integer division of two integers
    if (f > l)
    {
        f = mid;
        l = mid;
    }
    first = clampCell<D>(f, size);
    last = clampCell<D>(l, size);
}

template <typename D = double>
SPP_HD bool finiteD(D v)
{
    return v - v == 0.0; // false for NaN and +-inf, whatever the fast-math flags say about isfinite
}

//! One window row (map index, x1, y1, x2, y2) -> its cells on an S x H x W stack of maps.
//! D: the float64 type (double; the CUDA kernel passes simt::f64, whose operations the SIMT emulator
//! counts and which is double on the GPU).
template <typename D = double>
SPP_HD WindowCells projectWindow(D idx, D x1, D y1, D x2, D y2, int64_t S, int64_t H, int64_t W, WindowProjection const& p)
{
    WindowCells c{0, 0, 0, 0, 0, false};
    if (!finiteD<D>(idx) || !finiteD<D>(x1) || !finiteD<D>(y1) || !finiteD<D>(x2) || !finiteD<D>(y2))
    {
        return c;
    }
    if (floor(idx) != idx || idx < 0.0 || idx >= static_cast<D>(S) || H < 1 || W < 1)
    {
        return c;
    }
    D left, right, top, bottom;
    projectSpan<D>(x1, x2, static_cast<D>(W), p, left, right);
    projectSpan<D>(y1, y2, static_cast<D>(H), p, top, bottom);
    c.map = static_cast<int64_t>(idx);
    c.left = static_cast<int64_t>(left);
    c.top = static_cast<int64_t>(top);
    c.right = static_cast<int64_t>(right);
    c.bottom = static_cast<int64_t>(bottom);
    c.valid = true;
    return c;
}

//! Bin i of level n along a window axis [first, last] (1-based inclusive cells): 0-based half-open
//! map indices, sppBins.h's adaptive rule on the window's extent (window-spp.md section 3).
SPP_HD AxisBin windowAxisBin(int64_t first, int64_t last, int64_t n, int64_t i)
{
    int64_t const extent = last - first + 1;
    AxisBin b = adaptive(extent, n, i, extent);
    b.start += first - 1;
    b.end += first - 1;
    return b;
}

} // namespace spp

#endif // SPP_WINDOW_SPP_H
