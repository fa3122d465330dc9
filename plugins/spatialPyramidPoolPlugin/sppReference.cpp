/*
 * CPU reference of the whole pyramid (the plugin's ground truth in tests), plus the C ABI.
 * Bin edges come from sppBins.h only.
 */
#include "sppReference.h"
#include "../common/sppBins.h"
#include "sppConfig.h"
#include "../common/levelPlan.h"
#include "../common/referenceAbi.h"

#include <algorithm>
#include <cmath>
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

static_assert(SPP_MAX_NB_LEVELS == kMAX_NB_LEVELS, "the C ABI's level array");

bool toConfig(int32_t const* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, SppConfig& cfg)
{
    if (levels == nullptr || nbLevels < 1 || nbLevels > kMAX_NB_LEVELS)
    {
        return false;
    }
    cfg.nbLevels = nbLevels;
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        cfg.levels[l] = levels[l];
    }
    cfg.mode = static_cast<PoolMode>(mode);
    cfg.bins = static_cast<BinRule>(bins);
    cfg.order = static_cast<FlattenOrder>(order);
    std::string err;
    return validateConfig(cfg, err);
}

template <typename Acc, typename Load>
int32_t forward(Load load, int64_t B, int64_t C, int64_t H, int64_t W, int32_t const* levels, int32_t nbLevels,
    int32_t mode, int32_t bins, int32_t order, float* out, int64_t outCount)
{
    if (load.x == nullptr)
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    SppConfig cfg;
    if (!toConfig(levels, nbLevels, mode, bins, order, cfg))
    {
        return SPP_STATUS_BAD_CONFIG;
    }
    if (B < 0 || C < 0 || H < 1 || W < 1 || out == nullptr)
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    if (sizeError(cfg.bins, H, W, cfg.levels, cfg.nbLevels) != 0)
    {
        return SPP_STATUS_ILLEGAL_SIZE;
    }
    int64_t const F = featureCount(C, cfg.levels, cfg.nbLevels);
    if (outCount < B * F)
    {
        return SPP_STATUS_BAD_ARGUMENT;
    }
    std::vector<AxisBin> rows, cols;
    int64_t levelOffset = 0; // sum of C * n^2 of the previous levels
    for (int32_t l = 0; l < cfg.nbLevels; ++l)
    {
        int64_t const n = cfg.levels[l];
        rows.resize(n);
        cols.resize(n);
        for (int64_t i = 0; i < n; ++i)
        {
            rows[i] = axisBins(cfg.bins, H, n, i, H);
            cols[i] = axisBins(cfg.bins, W, n, i, H);
        }
        for (int64_t b = 0; b < B; ++b)
        {
            for (int64_t c = 0; c < C; ++c)
            {
                int64_t const plane = (b * C + c) * H * W;
                for (int64_t jy = 0; jy < n; ++jy)
                {
                    for (int64_t ix = 0; ix < n; ++ix)
                    {
                        AxisBin const& r = rows[jy];
                        AxisBin const& q = cols[ix];
                        float v;
                        if (cfg.mode == PoolMode::kMAX)
                        {
                            float m = -std::numeric_limits<float>::infinity();
                            for (int64_t y = r.start; y < r.end; ++y)
                            {
                                for (int64_t xx = q.start; xx < q.end; ++xx)
                                {
                                    float const t = load(plane + y * W + xx);
                                    if (t > m || t != t)
                                    {
                                        m = t;
                                    }
                                    if (m != m)
                                    {
                                        break;
                                    }
                                }
                                if (m != m)
                                {
                                    break;
                                }
                            }
                            v = m;
                        }
                        else
                        {
                            Acc s = 0;
                            for (int64_t y = r.start; y < r.end; ++y)
                            {
                                for (int64_t xx = q.start; xx < q.end; ++xx)
                                {
                                    s += static_cast<Acc>(load(plane + y * W + xx));
                                }
                            }
                            v = static_cast<float>(s / static_cast<Acc>(r.span * q.span));
                        }
                        int64_t const idx = cfg.order == FlattenOrder::kCHANNEL_MAJOR
                            ? b * F + levelOffset + c * n * n + jy * n + ix
                            : b * F + levelOffset + (jy * n + ix) * C + c;
                        out[idx] = v;
                    }
                }
            }
        }
        levelOffset += C * n * n;
    }
    return SPP_STATUS_OK;
}

void toC(SppConfig const& cfg, SppCConfig* out)
{
    std::memset(out, 0, sizeof(*out));
    copyLevels(cfg, *out);
    out->mode = static_cast<int32_t>(cfg.mode);
    out->bins = static_cast<int32_t>(cfg.bins);
    out->order = static_cast<int32_t>(cfg.order);
}

} // namespace

extern "C" {

SPP_API int32_t spp_abi_version(void)
{
    return SPP_ABI_VERSION;
}

SPP_API const char* spp_status_string(int32_t status)
{
    switch (status)
    {
    case SPP_STATUS_OK: return "ok";
    case SPP_STATUS_ILLEGAL_SIZE: return "bin rule undefined or not fixed-length at this input size";
    case SPP_STATUS_BAD_CONFIG: return "invalid SPP configuration";
    case SPP_STATUS_BAD_ARGUMENT: return "invalid argument";
    case SPP_STATUS_CUDA_ERROR: return "CUDA error";
    default: return "unknown status";
    }
}

SPP_API int64_t spp_feature_count(int64_t channels, const int32_t* levels, int32_t nbLevels)
{
    if (channels < 0 || levels == nullptr || nbLevels < 0)
    {
        return -1;
    }
    return featureCount(channels, levels, nbLevels);
}

SPP_API int32_t spp_axis_bins(
    int32_t bins, int64_t size, int32_t n, int64_t height, int64_t* start, int64_t* end, int64_t* span)
{
    if (bins < 0 || bins > 3 || n < 1 || n > kMAX_LEVEL || start == nullptr || end == nullptr || span == nullptr)
    {
        return -1;
    }
    BinRule const rule = static_cast<BinRule>(bins);
    for (int32_t i = 0; i < n; ++i)
    {
        AxisBin const b = axisBins(rule, size, n, i, height);
        start[i] = b.start;
        end[i] = b.end;
        span[i] = b.span;
    }
    return axisValid(rule, size, n, height) ? 1 : 0;
}

SPP_API int32_t spp_size_error(int32_t bins, int64_t H, int64_t W, const int32_t* levels, int32_t nbLevels)
{
    if (bins < 0 || bins > 3 || levels == nullptr || nbLevels < 1 || nbLevels > kMAX_NB_LEVELS)
    {
        return -1;
    }
    return sizeError(static_cast<BinRule>(bins), H, W, levels, nbLevels);
}

SPP_API int32_t spp_reference_forward_f32(const float* x, int64_t B, int64_t C, int64_t H, int64_t W,
    const int32_t* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, float* out,
    int64_t outCount)
{
    return forward<double>(LoadF32{x}, B, C, H, W, levels, nbLevels, mode, bins, order, out, outCount);
}

SPP_API int32_t spp_reference_forward_f16(const uint16_t* x, int64_t B, int64_t C, int64_t H, int64_t W,
    const int32_t* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, float* out,
    int64_t outCount)
{
    return forward<float>(LoadF16{x}, B, C, H, W, levels, nbLevels, mode, bins, order, out, outCount);
}

SPP_API int32_t spp_config_parse(
    const SppCField* fields, int32_t nbFields, SppCConfig* out, char* err, int32_t errLen)
{
    return cabi::parseConfigC<SppConfig>(toC, fields, nbFields, out, err, errLen);
}

SPP_API int64_t spp_config_serialize(const SppCConfig* cfg, uint8_t* buf, int64_t bufLen)
{
    SppConfig c;
    if (cfg == nullptr || !toConfig(cfg->levels, cfg->nbLevels, cfg->mode, cfg->bins, cfg->order, c))
    {
        return -1;
    }
    return cabi::copyBlob(serializeConfig(c), buf, bufLen);
}

SPP_API int32_t spp_config_deserialize(const uint8_t* buf, int64_t len, SppCConfig* out, char* err, int32_t errLen)
{
    return cabi::deserializeConfigC<SppConfig>(toC, buf, len, out, err, errLen);
}

} // extern "C"
