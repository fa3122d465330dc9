#include "sppConfig.h"

#include <cstring>
#include <sstream>

namespace spp
{

namespace
{

constexpr char kMAGIC[4] = {'S', 'P', 'P', 'C'};

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

//! String value of a kCHAR field: up to the first NUL inside `length`; anything after it is an error.
bool fieldString(Field const& f, std::string& out, std::string& err)
{
    if (f.type != FieldType::kCHAR)
    {
        err = std::string("field '") + f.name + "' must be a string (kCHAR), got type "
            + std::to_string(static_cast<int32_t>(f.type));
        return false;
    }
    if (f.length < 0 || (f.length > 0 && f.data == nullptr) || f.length > 256)
    {
        err = std::string("field '") + f.name + "' has an invalid length " + std::to_string(f.length);
        return false;
    }
    char const* s = static_cast<char const*>(f.data);
    int32_t n = 0;
    while (n < f.length && s[n] != '\0')
    {
        ++n;
    }
    for (int32_t i = n; i < f.length; ++i)
    {
        if (s[i] != '\0')
        {
            err = std::string("field '") + f.name + "' has data after its terminating NUL";
            return false;
        }
    }
    out.assign(s, static_cast<size_t>(n));
    return true;
}

} // namespace

uint32_t fnv1a(uint8_t const* p, size_t n)
{
    uint32_t h = 2166136261U;
    for (size_t i = 0; i < n; ++i)
    {
        h ^= p[i];
        h *= 16777619U;
    }
    return h;
}

int64_t SppConfig::binsPerChannel() const
{
    return featureCount(1, levels, nbLevels);
}

char const* modeName(PoolMode m)
{
    switch (m)
    {
    case PoolMode::kMAX: return "max";
    case PoolMode::kAVG: return "avg";
    }
    return "?";
}

char const* ruleName(BinRule r)
{
    switch (r)
    {
    case BinRule::kADAPTIVE: return "adaptive";
    case BinRule::kCEIL_PAD: return "ceil_pad";
    case BinRule::kFLOOR_KERNEL: return "floor_kernel";
    case BinRule::kROUNDED: return "rounded";
    }
    return "?";
}

char const* orderName(FlattenOrder o)
{
    switch (o)
    {
    case FlattenOrder::kCHANNEL_MAJOR: return "channel_major";
    case FlattenOrder::kBIN_MAJOR: return "bin_major";
    }
    return "?";
}

bool parseMode(std::string const& s, PoolMode& out)
{
    for (PoolMode m : {PoolMode::kMAX, PoolMode::kAVG})
    {
        if (s == modeName(m))
        {
            out = m;
            return true;
        }
    }
    return false;
}

bool parseRule(std::string const& s, BinRule& out)
{
    for (BinRule r : {BinRule::kADAPTIVE, BinRule::kCEIL_PAD, BinRule::kFLOOR_KERNEL, BinRule::kROUNDED})
    {
        if (s == ruleName(r))
        {
            out = r;
            return true;
        }
    }
    return false;
}

bool parseOrder(std::string const& s, FlattenOrder& out)
{
    for (FlattenOrder o : {FlattenOrder::kCHANNEL_MAJOR, FlattenOrder::kBIN_MAJOR})
    {
        if (s == orderName(o))
        {
            out = o;
            return true;
        }
    }
    return false;
}

bool validateConfig(SppConfig const& cfg, std::string& err)
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
        if (cfg.levels[l] < 1 || cfg.levels[l] > kMAX_LEVEL)
        {
            err = "pyramid level " + std::to_string(cfg.levels[l]) + " out of range 1.."
                + std::to_string(kMAX_LEVEL);
            return false;
        }
    }
    int32_t const m = static_cast<int32_t>(cfg.mode);
    int32_t const r = static_cast<int32_t>(cfg.bins);
    int32_t const o = static_cast<int32_t>(cfg.order);
    if (m < 0 || m > 1)
    {
        err = "invalid mode " + std::to_string(m);
        return false;
    }
    if (r < 0 || r > 3)
    {
        err = "invalid bin rule " + std::to_string(r);
        return false;
    }
    if (o < 0 || o > 1)
    {
        err = "invalid order " + std::to_string(o);
        return false;
    }
    return true;
}

bool parseFields(
    Field const* fields, int32_t nbFields, SppConfig& out, std::string& err, std::vector<std::string>* warnings)
{
    if (nbFields < 0 || (nbFields > 0 && fields == nullptr))
    {
        err = "invalid field collection";
        return false;
    }
    SppConfig cfg;
    bool haveLevels = false, haveMode = false, haveBins = false, haveOrder = false, haveBlob = false;
    SppConfig blobCfg;
    for (int32_t i = 0; i < nbFields; ++i)
    {
        Field const& f = fields[i];
        if (f.name == nullptr)
        {
            err = "field " + std::to_string(i) + " has no name";
            return false;
        }
        std::string const name(f.name);
        auto dup = [&](bool& seen) {
            if (seen)
            {
                err = "duplicate field '" + name + "'";
                return false;
            }
            seen = true;
            return true;
        };
        if (name == kFIELD_LEVELS)
        {
            if (!dup(haveLevels))
            {
                return false;
            }
            if (f.type != FieldType::kINT32 && f.type != FieldType::kINT64)
            {
                err = "field 'levels' must be an int list (kINT32), got type "
                    + std::to_string(static_cast<int32_t>(f.type));
                return false;
            }
            if (f.length < 1)
            {
                err = "pyramid levels must not be empty";
                return false;
            }
            if (f.length > kMAX_NB_LEVELS)
            {
                err = "too many pyramid levels: " + std::to_string(f.length) + " (at most "
                    + std::to_string(kMAX_NB_LEVELS) + ")";
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
                if (v < 1 || v > kMAX_LEVEL)
                {
                    err = "pyramid level " + std::to_string(v) + " out of range 1.." + std::to_string(kMAX_LEVEL);
                    return false;
                }
                cfg.levels[l] = static_cast<int32_t>(v);
            }
        }
        else if (name == kFIELD_MODE || name == kFIELD_BINS || name == kFIELD_ORDER)
        {
            bool& seen = name == kFIELD_MODE ? haveMode : (name == kFIELD_BINS ? haveBins : haveOrder);
            if (!dup(seen))
            {
                return false;
            }
            std::string s;
            if (!fieldString(f, s, err))
            {
                return false;
            }
            bool ok = name == kFIELD_MODE ? parseMode(s, cfg.mode)
                                          : (name == kFIELD_BINS ? parseRule(s, cfg.bins) : parseOrder(s, cfg.order));
            if (!ok)
            {
                char const* known = name == kFIELD_MODE ? "max, avg"
                    : name == kFIELD_BINS               ? "adaptive, ceil_pad, floor_kernel, rounded"
                                                        : "channel_major, bin_major";
                err = "unknown " + name + " '" + s + "' (known: " + known + ")";
                return false;
            }
        }
        else if (name == kFIELD_BLOB)
        {
            if (!dup(haveBlob))
            {
                return false;
            }
            if (f.type != FieldType::kUNKNOWN && f.type != FieldType::kINT8)
            {
                err = "field 'spp_config' must be a byte blob (kUNKNOWN)";
                return false;
            }
            if (f.length < 0 || f.data == nullptr)
            {
                err = "field 'spp_config' has no data";
                return false;
            }
            if (!deserialize(f.data, static_cast<size_t>(f.length), blobCfg, err))
            {
                return false;
            }
        }
        else if (warnings)
        {
            warnings->push_back("ignoring unknown field '" + name + "'");
        }
    }
    if (haveBlob)
    {
        if (haveLevels || haveMode || haveBins || haveOrder)
        {
            err = "field 'spp_config' cannot be combined with levels/mode/bins/order";
            return false;
        }
        out = blobCfg;
        return true;
    }
    char const* missing = !haveLevels ? kFIELD_LEVELS : !haveMode ? kFIELD_MODE : !haveBins ? kFIELD_BINS
        : !haveOrder                                                                       ? kFIELD_ORDER
                                                                                           : nullptr;
    if (missing)
    {
        err = std::string("missing required field '") + missing + "'";
        return false;
    }
    if (!validateConfig(cfg, err))
    {
        return false;
    }
    out = cfg;
    return true;
}

size_t serializedSize(SppConfig const& cfg)
{
    int32_t const nb = cfg.nbLevels < 0 ? 0 : cfg.nbLevels;
    return 4 + 4 + 4 + 4 * static_cast<size_t>(nb) + 12 + 4;
}

std::vector<uint8_t> serialize(SppConfig const& cfg)
{
    std::vector<uint8_t> buf;
    buf.reserve(serializedSize(cfg));
    buf.insert(buf.end(), kMAGIC, kMAGIC + 4);
    put<uint32_t>(buf, kBLOB_VERSION);
    put<int32_t>(buf, cfg.nbLevels);
    for (int32_t l = 0; l < cfg.nbLevels; ++l)
    {
        put<int32_t>(buf, cfg.levels[l]);
    }
    put<int32_t>(buf, static_cast<int32_t>(cfg.mode));
    put<int32_t>(buf, static_cast<int32_t>(cfg.bins));
    put<int32_t>(buf, static_cast<int32_t>(cfg.order));
    put<uint32_t>(buf, fnv1a(buf.data(), buf.size()));
    return buf;
}

bool deserialize(void const* data, size_t length, SppConfig& out, std::string& err)
{
    uint8_t const* p = static_cast<uint8_t const*>(data);
    if (p == nullptr || length < 12)
    {
        err = "serialized SPP config is too short";
        return false;
    }
    if (std::memcmp(p, kMAGIC, 4) != 0)
    {
        err = "serialized SPP config has a bad magic";
        return false;
    }
    size_t off = 4;
    uint32_t const version = get<uint32_t>(p, off);
    if (version != kBLOB_VERSION)
    {
        err = "unsupported serialized SPP config version " + std::to_string(version);
        return false;
    }
    int32_t const nb = get<int32_t>(p, off);
    if (nb < 1 || nb > kMAX_NB_LEVELS)
    {
        err = "serialized SPP config has an invalid level count " + std::to_string(nb);
        return false;
    }
    SppConfig cfg;
    cfg.nbLevels = nb;
    if (length != serializedSize(cfg))
    {
        err = "serialized SPP config has length " + std::to_string(length) + ", expected "
            + std::to_string(serializedSize(cfg));
        return false;
    }
    for (int32_t l = 0; l < nb; ++l)
    {
        cfg.levels[l] = get<int32_t>(p, off);
    }
    cfg.mode = static_cast<PoolMode>(get<int32_t>(p, off));
    cfg.bins = static_cast<BinRule>(get<int32_t>(p, off));
    cfg.order = static_cast<FlattenOrder>(get<int32_t>(p, off));
    size_t const bodyLen = off;
    uint32_t const sum = get<uint32_t>(p, off);
    if (sum != fnv1a(p, bodyLen))
    {
        err = "serialized SPP config checksum mismatch (corrupted)";
        return false;
    }
    if (!validateConfig(cfg, err))
    {
        err = "serialized SPP config is invalid: " + err;
        return false;
    }
    out = cfg;
    return true;
}

std::string sizeErrorMessage(SppConfig const& cfg, int64_t H, int64_t W)
{
    int32_t axis = 0;
    int32_t const bad = sizeError(cfg.bins, H, W, cfg.levels, cfg.nbLevels, &axis);
    if (bad == 0)
    {
        return std::string();
    }
    std::ostringstream os;
    os << "bin rule '" << ruleName(cfg.bins) << "' is not defined (or not fixed-length) at "
       << (axis == 0 ? "H=" : "W=") << (axis == 0 ? H : W) << " (input " << H << "x" << W
       << ") for pyramid level " << cfg.levels[bad - 1];
    return os.str();
}

} // namespace spp
