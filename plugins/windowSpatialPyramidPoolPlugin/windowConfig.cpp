#include "windowConfig.h"
#include "../common/configBlob.h"

#include <cstring>
#include <sstream>

namespace spp
{

namespace
{

//! The blob: "WSPC", its version; this plugin's own values are stride, offset0, offset (3 x f64).
constexpr blob::Format kFORMAT{{'W', 'S', 'P', 'C'}, kWINDOW_BLOB_VERSION, 3 * 8, "window SPP config"};

std::string levelList()
{
    std::string s;
    for (int32_t v : kWINDOW_LEVELS)
    {
        s += (s.empty() ? "" : ", ") + std::to_string(v);
    }
    return s;
}

//! A level the window kernel supports (kWINDOW_LEVELS).
bool supportedLevel(int64_t v, std::string& err)
{
    if (!isWindowLevel(v))
    {
        err = "window pyramid level " + std::to_string(v) + " is not supported (supported: " + levelList() + ")";
        return false;
    }
    return true;
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

bool validateConfig(WindowConfig const& cfg, std::string& err)
{
    if (!checkLevels(cfg.levels, cfg.nbLevels, err, supportedLevel))
    {
        return false;
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

bool parseConfig(
    Field const* fields, int32_t nbFields, WindowConfig& out, std::string& err, std::vector<std::string>* warnings)
{
    return parseConfigFields(fields, nbFields, kWINDOW_FIELDS, kWFIELD_BLOB, out, err, warnings,
        [&](size_t k, Field const& f, WindowConfig& cfg) {
            return k == 0 ? parseLevelsField(f, cfg.levels, cfg.nbLevels, err, supportedLevel)
                          : parseProjection(f, cfg, err);
        });
}

std::vector<uint8_t> serializeConfig(WindowConfig const& cfg)
{
    return blob::write(kFORMAT, cfg, [](std::vector<uint8_t>& buf, WindowConfig const& c) {
        blob::put<double>(buf, c.projection.stride);
        blob::put<double>(buf, c.projection.offset0);
        blob::put<double>(buf, c.projection.offset);
    });
}

bool deserializeConfig(void const* data, size_t length, WindowConfig& out, std::string& err)
{
    return blob::read(kFORMAT, data, length, out, err, [](uint8_t const* p, size_t& off, WindowConfig& c) {
        c.projection.stride = blob::get<double>(p, off);
        c.projection.offset0 = blob::get<double>(p, off);
        c.projection.offset = blob::get<double>(p, off);
    });
}

std::string describeConfig(WindowConfig const& cfg)
{
    std::ostringstream os;
    writeLevels(os, cfg.levels, cfg.nbLevels);
    os << " projection=[" << cfg.projection.stride << "," << cfg.projection.offset0 << ","
       << cfg.projection.offset << "]";
    return os.str();
}

} // namespace spp
