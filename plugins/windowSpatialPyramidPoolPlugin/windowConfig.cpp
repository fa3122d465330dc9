#include "windowConfig.h"

#include <cstring>
#include <sstream>

namespace spp
{

namespace
{

constexpr char kMAGIC[4] = {'W', 'S', 'P', 'C'};

template <typename T>
void put(std::vector<uint8_t>& buf, T v)
{
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    buf.insert(buf.end(), b, b + sizeof(T));
}

template <typename T>
T get(uint8_t const* p, size_t& off)
{
    T v;
    std::memcpy(&v, p + off, sizeof(T));
    off += sizeof(T);
    return v;
}

size_t blobSize(int32_t nbLevels)
{
    return 4 + 4 + 4 + 4 * static_cast<size_t>(nbLevels) + 3 * 8 + 4;
}

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
    if (f.type != FieldType::kINT32 && f.type != FieldType::kINT64)
    {
        err = "field 'levels' must be an int list (kINT32), got type " + std::to_string(static_cast<int32_t>(f.type));
        return false;
    }
    if (f.length < 1)
    {
        err = "pyramid levels must not be empty";
        return false;
    }
    if (f.length > kMAX_NB_LEVELS)
    {
        err = "too many pyramid levels: " + std::to_string(f.length) + " (at most " + std::to_string(kMAX_NB_LEVELS)
            + ")";
        return false;
    }
    if (f.data == nullptr)
    {
        err = "field 'levels' has no data";
        return false;
    }
    cfg.nbLevels = f.length;
    for (int32_t l = 0; l < f.length; ++l)
    {
        int64_t v = 0;
        if (f.type == FieldType::kINT32)
        {
            int32_t t;
            std::memcpy(&t, static_cast<uint8_t const*>(f.data) + 4 * l, 4);
            v = t;
        }
        else
        {
            std::memcpy(&v, static_cast<uint8_t const*>(f.data) + 8 * l, 8);
        }
        if (!isWindowLevel(v))
        {
            err = "window pyramid level " + std::to_string(v) + " is not supported (supported: " + levelList() + ")";
            return false;
        }
        cfg.levels[l] = static_cast<int32_t>(v);
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

bool validateWindowConfig(WindowConfig const& cfg, std::string& err)
{
    if (cfg.nbLevels < 1)
    {
        err = "pyramid levels must not be empty";
        return false;
    }
    if (cfg.nbLevels > kMAX_NB_LEVELS)
    {
        err = "too many pyramid levels: " + std::to_string(cfg.nbLevels) + " (at most "
            + std::to_string(kMAX_NB_LEVELS) + ")";
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
    if (nbFields < 0 || (nbFields > 0 && fields == nullptr))
    {
        err = "invalid field collection";
        return false;
    }
    WindowConfig cfg;
    WindowConfig blobCfg;
    bool haveLevels = false, haveProjection = false, haveBlob = false;
    for (int32_t i = 0; i < nbFields; ++i)
    {
        Field const& f = fields[i];
        if (f.name == nullptr)
        {
            err = "field " + std::to_string(i) + " has no name";
            return false;
        }
        std::string const name(f.name);
        bool* seen = name == kWFIELD_LEVELS ? &haveLevels
            : name == kWFIELD_PROJECTION    ? &haveProjection
            : name == kWFIELD_BLOB          ? &haveBlob
                                            : nullptr;
        if (seen == nullptr)
        {
            if (warnings)
            {
                warnings->push_back("ignoring unknown field '" + name + "'");
            }
            continue;
        }
        if (*seen)
        {
            err = "duplicate field '" + name + "'";
            return false;
        }
        *seen = true;
        if (seen == &haveLevels && !parseLevels(f, cfg, err))
        {
            return false;
        }
        if (seen == &haveProjection && !parseProjection(f, cfg, err))
        {
            return false;
        }
        if (seen == &haveBlob)
        {
            if (f.type != FieldType::kUNKNOWN && f.type != FieldType::kINT8)
            {
                err = "field 'window_spp_config' must be a byte blob (kUNKNOWN)";
                return false;
            }
            if (f.length < 0 || f.data == nullptr)
            {
                err = "field 'window_spp_config' has no data";
                return false;
            }
            if (!deserializeWindowConfig(f.data, static_cast<size_t>(f.length), blobCfg, err))
            {
                return false;
            }
        }
    }
    if (haveBlob)
    {
        if (haveLevels || haveProjection)
        {
            err = "field 'window_spp_config' cannot be combined with levels/projection";
            return false;
        }
        out = blobCfg;
        return true;
    }
    if (!haveLevels || !haveProjection)
    {
        err = std::string("missing required field '") + (!haveLevels ? kWFIELD_LEVELS : kWFIELD_PROJECTION) + "'";
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
    std::vector<uint8_t> buf;
    buf.reserve(blobSize(cfg.nbLevels < 0 ? 0 : cfg.nbLevels));
    buf.insert(buf.end(), kMAGIC, kMAGIC + 4);
    put<uint32_t>(buf, kWINDOW_BLOB_VERSION);
    put<int32_t>(buf, cfg.nbLevels);
    for (int32_t l = 0; l < cfg.nbLevels; ++l)
    {
        put<int32_t>(buf, cfg.levels[l]);
    }
    put<double>(buf, cfg.projection.stride);
    put<double>(buf, cfg.projection.offset0);
    put<double>(buf, cfg.projection.offset);
    put<uint32_t>(buf, fnv1a(buf.data(), buf.size()));
    return buf;
}

bool deserializeWindowConfig(void const* data, size_t length, WindowConfig& out, std::string& err)
{
    uint8_t const* p = static_cast<uint8_t const*>(data);
    if (p == nullptr || length < 12)
    {
        err = "serialized window SPP config is too short";
        return false;
    }
    if (std::memcmp(p, kMAGIC, 4) != 0)
    {
        err = "serialized window SPP config has a bad magic";
        return false;
    }
    size_t off = 4;
    uint32_t const version = get<uint32_t>(p, off);
    if (version != kWINDOW_BLOB_VERSION)
    {
        err = "unsupported serialized window SPP config version " + std::to_string(version);
        return false;
    }
    int32_t const nb = get<int32_t>(p, off);
    if (nb < 1 || nb > kMAX_NB_LEVELS)
    {
        err = "serialized window SPP config has an invalid level count " + std::to_string(nb);
        return false;
    }
    if (length != blobSize(nb))
    {
        err = "serialized window SPP config has length " + std::to_string(length) + ", expected "
            + std::to_string(blobSize(nb));
        return false;
    }
    WindowConfig cfg;
    cfg.nbLevels = nb;
    for (int32_t l = 0; l < nb; ++l)
    {
        cfg.levels[l] = get<int32_t>(p, off);
    }
    cfg.projection.stride = get<double>(p, off);
    cfg.projection.offset0 = get<double>(p, off);
    cfg.projection.offset = get<double>(p, off);
    size_t const bodyLen = off;
    if (get<uint32_t>(p, off) != fnv1a(p, bodyLen))
    {
        err = "serialized window SPP config checksum mismatch (corrupted)";
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
    os << "levels=[";
    for (int32_t l = 0; l < cfg.nbLevels; ++l)
    {
        os << (l ? "," : "") << cfg.levels[l];
    }
    os << "] projection=[" << cfg.projection.stride << "," << cfg.projection.offset0 << ","
       << cfg.projection.offset << "]";
    return os.str();
}

} // namespace spp
