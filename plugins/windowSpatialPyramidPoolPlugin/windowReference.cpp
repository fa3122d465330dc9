/*
 * CPU reference of the window pyramid (the window plugin's ground truth in tests), plus its C ABI.
 * Projection from windowSpp.h, bin edges from sppBins.h (through windowAxisBin) only.
 */
#include "windowReference.h"
#include "../common/levelPlan.h"
#include "../common/referenceAbi.h"
#include "windowConfig.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace
{

using namespace spp;
using spp::cabi::copyErr;
using spp::cabi::LoadF16;
using spp::cabi::LoadF32;

bool toConfig(int32_t const* levels, int32_t nbLevels, double const* projection, WindowConfig& cfg)
{
    if (levels == nullptr || projection == nullptr || nbLevels < 1 || nbLevels > kMAX_NB_LEVELS)
    {
        return false;
    }
    cfg.nbLevels = nbLevels;
    std::copy(levels, levels + nbLevels, cfg.levels);
    cfg.projection = WindowProjection{projection[0], projection[1], projection[2]};
    std::string err;
    return validateConfig(cfg, err);
}

template <typename Load>
int32_t forward(Load load, int64_t S, int64_t C, int64_t H, int64_t W, double const* windows, int64_t R,
    int32_t const* levels, int32_t nbLevels, double const* projection, float* out, int64_t outCount)
{
    if (load.x == nullptr && S * C * H * W > 0)
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    WindowConfig cfg;
    if (!toConfig(levels, nbLevels, projection, cfg))
    {
        return SPP_STATUS_BAD_CONFIG;
    }
    if (S < 0 || C < 0 || H < 0 || W < 0 || R < 0 || (R > 0 && (windows == nullptr || out == nullptr)))
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    int64_t const F = featureCount(C, cfg.levels, cfg.nbLevels);
    if (outCount < R * F)
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    for (int64_t r = 0; r < R; ++r)
    {
        double const* w = windows + 5 * r;
        WindowCells const cells = projectWindow(w[0], w[1], w[2], w[3], w[4], S, H, W, cfg.projection);
        float* row = out + r * F;
        if (!cells.valid)
        {
            std::fill(row, row + F, std::numeric_limits<float>::quiet_NaN());
            continue;
        }
        int64_t levelOffset = 0;
        for (int32_t l = 0; l < cfg.nbLevels; ++l)
        {
            int64_t const n = cfg.levels[l];
            for (int64_t c = 0; c < C; ++c)
            {
                int64_t const plane = (cells.map * C + c) * H * W;
                for (int64_t yy = 0; yy < n; ++yy)
                {
                    AxisBin const rb = windowAxisBin(cells.top, cells.bottom, n, yy);
                    for (int64_t xx = 0; xx < n; ++xx)
                    {
                        AxisBin const cb = windowAxisBin(cells.left, cells.right, n, xx);
                        // The released code: acc = 0; if (v > acc) acc = v  (NaN and -0.0 never win).
                        float acc = 0.0F;
                        for (int64_t y = rb.start; y < rb.end; ++y)
                        {
                            for (int64_t x = cb.start; x < cb.end; ++x)
                            {
                                float const v = load(plane + y * W + x);
                                if (v > acc)
                                {
                                    acc = v;
                                }
                            }
                        }
                        row[levelOffset + c * n * n + yy * n + xx] = acc;
                    }
                }
            }
            levelOffset += C * n * n;
        }
    }
    return SPP_STATUS_OK;
}

void toC(WindowConfig const& cfg, SppCWindowConfig* out)
{
    std::memset(out, 0, sizeof(*out));
    copyLevels(cfg, *out);
    out->projection[0] = cfg.projection.stride;
    out->projection[1] = cfg.projection.offset0;
    out->projection[2] = cfg.projection.offset;
}

} // namespace

extern "C" {

SPP_API int32_t spp_window_level_supported(int32_t n)
{
    return isWindowLevel(n) ? 1 : 0;
}

SPP_API int32_t spp_window_project(const double* windows, int64_t R, int64_t S, int64_t H, int64_t W,
    const double* projection, int64_t* cells, int32_t* valid)
{
    if (R < 0 || projection == nullptr || (R > 0 && (windows == nullptr || cells == nullptr || valid == nullptr)))
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    WindowProjection const p{projection[0], projection[1], projection[2]};
    for (int64_t r = 0; r < R; ++r)
    {
        double const* w = windows + 5 * r;
        WindowCells const c = projectWindow(w[0], w[1], w[2], w[3], w[4], S, H, W, p);
        int64_t* o = cells + 5 * r;
        o[0] = c.map;
        o[1] = c.left;
        o[2] = c.top;
        o[3] = c.right;
        o[4] = c.bottom;
        valid[r] = c.valid ? 1 : 0;
    }
    return SPP_STATUS_OK;
}

SPP_API int32_t spp_window_reference_forward_f32(const float* x, int64_t S, int64_t C, int64_t H, int64_t W,
    const double* windows, int64_t R, const int32_t* levels, int32_t nbLevels, const double* projection, float* out,
    int64_t outCount)
{
    return forward(LoadF32{x}, S, C, H, W, windows, R, levels, nbLevels, projection, out, outCount);
}

SPP_API int32_t spp_window_reference_forward_f16(const uint16_t* x, int64_t S, int64_t C, int64_t H, int64_t W,
    const double* windows, int64_t R, const int32_t* levels, int32_t nbLevels, const double* projection, float* out,
    int64_t outCount)
{
    return forward(LoadF16{x}, S, C, H, W, windows, R, levels, nbLevels, projection, out, outCount);
}

SPP_API int32_t spp_window_config_parse(
    const SppCField* fields, int32_t nbFields, SppCWindowConfig* out, char* err, int32_t errLen)
{
    return cabi::parseConfigC<WindowConfig>(toC, fields, nbFields, out, err, errLen);
}

SPP_API int64_t spp_window_config_serialize(const SppCWindowConfig* cfg, uint8_t* buf, int64_t bufLen)
{
    WindowConfig c;
    if (cfg == nullptr || !toConfig(cfg->levels, cfg->nbLevels, cfg->projection, c))
    {
        return -1;
    }
    return cabi::copyBlob(serializeConfig(c), buf, bufLen);
}

SPP_API int32_t spp_window_config_deserialize(
    const uint8_t* buf, int64_t len, SppCWindowConfig* out, char* err, int32_t errLen)
{
    return cabi::deserializeConfigC<WindowConfig>(toC, buf, len, out, err, errLen);
}

} // extern "C"
