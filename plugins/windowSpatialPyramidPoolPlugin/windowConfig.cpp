#include "windowConfig.h"
#include "../common/configBlob.h"

#include <cstring>
#include <sstream>

namespace spp
{

namespace
{

constexpr char kMAGIC[4] = {'W', 'S', 'P', 'C'};

//! Bytes of this plugin's own values in the blob: stride, offset0, offset.
constexpr size_t kOWN_BYTES = 3 * 8;

std::string levelList()
{
    std::string s;
    for (int32_t v : kWINDOW_LEVELS)
    {
        s += (s.empty() ? "" : ", ") + std::to_string(v);
    }
    return s;
}

bool parseLevels(Field const& f, WindowConfig& cfg, std::string& err)
{
    auto const supported = [](int64_t v, std::string& e) {
        if (!isWindowLevel(v))
        {
            e = "window pyramid level " + std::to_string(v) + " is not supported (supported: " + levelList() + ")";
            return false;
        }
        return true;
    };
    return parseLevelsField(f, cfg.levels, cfg.nbLevels, err, supported);
}

bool parseProjection(Field const& f, WindowConfig& cfg, std::string& err)
{
    if (f.type != FieldType::kFLOAT32 && f.type != FieldType::kFLOAT64)
    {
        err = "field 'projection' must be a float list (kFLOAT32), got type "
            + std::to_string(static_cast<int32_t>(f.type));
        return false;
    }
    if (f.length != 3 || f.data == nullptr)
    {
        err = "field 'projection' must hold 3 values (stride, offset0, offset), got " + std::to_string(f.length);
        return false;
    }
    double v[3];
    for (int32_t i = 0; i < 3; ++i)
    {
        if (f.type == FieldType::kFLOAT32)
        {
            float t;
            std::memcpy(&t, static_cast<uint8_t const*>(f.data) + 4 * i, 4);
            v[i] = static_cast<double>(t);
        }
        else
        {
            std::memcpy(&v[i], static_cast<uint8_t const*>(f.data) + 8 * i, 8);
        }
    }
    cfg.projection = WindowProjection{v[0], v[1], v[2]};
    return true;
}

} // namespace

int64_t WindowConfig::binsPerChannel() const
{
    return featureCount(1, levels, nbLevels);
}

bool validateWindowConfig(WindowConfig const& cfg, std::string& err)
{
    if (!checkLevelCount(cfg.nbLevels, err))
    {
        return false;
    }
    for (int32_t l = 0; l < cfg.nbLevels; ++l)
    {
        if (!isWindowLevel(cfg.levels[l]))
        {
            err = "window pyramid level " + std::to_string(cfg.levels[l]) + " is not supported (supported: "
                + levelList() + ")";
            return false;
        }
    }
    WindowProjection const& p = cfg.projection;
    char const* names[3] = {"stride", "offset0", "offset"};
    double const vals[3] = {p.stride, p.offset0, p.offset};
    for (int32_t i = 0; i < 3; ++i)
    {
        if (!finiteD(vals[i]))
        {
            err = std::string("projection ") + names[i] + " must be a finite number";
            return false;
        }
    }
    if (!(p.stride > 0.0))
    {
        std::ostringstream os;
        os << "projection stride must be > 0, got " << p.stride;
        err = os.str();
        return false;
    }
    return true;
}

bool parseWindowFields(
    Field const* fields, int32_t nbFields, WindowConfig& out, std::string& err, std::vector<std::string>* warnings)
{
    enum : size_t
    {
        kLEVELS,
        kPROJECTION,
        kBLOB
    };
    char const* const names[] = {kWFIELD_LEVELS, kWFIELD_PROJECTION, kWFIELD_BLOB};
    bool have[3] = {};
    WindowConfig cfg;
    WindowConfig blobCfg;
    bool const walked = walkFields(fields, nbFields, names, have, err, warnings, [&](size_t k, Field const& f) {
        if (k == kLEVELS)
        {
            return parseLevels(f, cfg, err);
        }
        if (k == kPROJECTION)
        {
            return parseProjection(f, cfg, err);
        }
        return checkBlobField(f, err) && deserializeWindowConfig(f.data, static_cast<size_t>(f.length), blobCfg, err);
    });
    if (!walked)
    {
        return false;
    }
    if (have[kBLOB])
    {
        if (have[kLEVELS] || have[kPROJECTION])
        {
            err = "field 'window_spp_config' cannot be combined with levels/projection";
            return false;
        }
        out = blobCfg;
        return true;
    }
    if (!have[kLEVELS] || !have[kPROJECTION])
    {
        err = std::string("missing required field '") + names[have[kLEVELS] ? kPROJECTION : kLEVELS] + "'";
        return false;
    }
    if (!validateWindowConfig(cfg, err))
    {
        return false;
    }
    out = cfg;
    return true;
}

std::vector<uint8_t> serializeWindowConfig(WindowConfig const& cfg)
{
    std::vector<uint8_t> buf = blob::begin(kMAGIC, kWINDOW_BLOB_VERSION, cfg.nbLevels, cfg.levels, kOWN_BYTES);
    blob::put<double>(buf, cfg.projection.stride);
    blob::put<double>(buf, cfg.projection.offset0);
    blob::put<double>(buf, cfg.projection.offset);
    blob::finish(buf);
    return buf;
}

bool deserializeWindowConfig(void const* data, size_t length, WindowConfig& out, std::string& err)
{
    uint8_t const* p = static_cast<uint8_t const*>(data);
    WindowConfig cfg;
    size_t off = 0;
    if (!blob::readFrame(p, length, kMAGIC, kWINDOW_BLOB_VERSION, kOWN_BYTES, "window SPP config", cfg.nbLevels,
            cfg.levels, off, err))
    {
        return false;
    }
    cfg.projection.stride = blob::get<double>(p, off);
    cfg.projection.offset0 = blob::get<double>(p, off);
    cfg.projection.offset = blob::get<double>(p, off);
    if (!blob::checkSum(p, off, "window SPP config", err))
    {
        return false;
    }
    if (!validateWindowConfig(cfg, err))
    {
        err = "serialized window SPP config is invalid: " + err;
        return false;
    }
    out = cfg;
    return true;
}

std::string describeWindowConfig(WindowConfig const& cfg)
{
    std::ostringstream os;
    writeLevels(os, cfg.levels, cfg.nbLevels);
    os << " projection=[" << cfg.projection.stride << "," << cfg.projection.offset0 << ","
       << cfg.projection.offset << "]";
    return os.str();
}

} // namespace spp
