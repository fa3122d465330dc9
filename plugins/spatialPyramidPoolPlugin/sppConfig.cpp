#include "sppConfig.h"
#include "../common/configBlob.h"

#include <sstream>

namespace spp
{

namespace
{

constexpr char kMAGIC[4] = {'S', 'P', 'P', 'C'};

//! Bytes of this plugin's own values in the blob: mode, bins, order.
constexpr size_t kOWN_BYTES = 3 * 4;

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
    if (!checkLevelCount(cfg.nbLevels, err))
    {
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
    enum : size_t
    {
        kLEVELS,
        kMODE,
        kBINS,
        kORDER,
        kBLOB
    };
    char const* const names[] = {kFIELD_LEVELS, kFIELD_MODE, kFIELD_BINS, kFIELD_ORDER, kFIELD_BLOB};
    bool have[5] = {};
    SppConfig cfg;
    SppConfig blobCfg;
    auto const inRange = [](int64_t v, std::string& e) {
        if (v < 1 || v > kMAX_LEVEL)
        {
            e = "pyramid level " + std::to_string(v) + " out of range 1.." + std::to_string(kMAX_LEVEL);
            return false;
        }
        return true;
    };
    bool const walked = walkFields(fields, nbFields, names, have, err, warnings, [&](size_t k, Field const& f) {
        if (k == kLEVELS)
        {
            return parseLevelsField(f, cfg.levels, cfg.nbLevels, err, inRange);
        }
        if (k == kBLOB)
        {
            return checkBlobField(f, err) && deserialize(f.data, static_cast<size_t>(f.length), blobCfg, err);
        }
        std::string s;
        if (!fieldString(f, s, err))
        {
            return false;
        }
        bool const ok = k == kMODE ? parseMode(s, cfg.mode)
                                   : (k == kBINS ? parseRule(s, cfg.bins) : parseOrder(s, cfg.order));
        if (!ok)
        {
            char const* known = k == kMODE ? "max, avg"
                : k == kBINS               ? "adaptive, ceil_pad, floor_kernel, rounded"
                                           : "channel_major, bin_major";
            err = std::string("unknown ") + names[k] + " '" + s + "' (known: " + known + ")";
        }
        return ok;
    });
    if (!walked)
    {
        return false;
    }
    if (have[kBLOB])
    {
        if (have[kLEVELS] || have[kMODE] || have[kBINS] || have[kORDER])
        {
            err = "field 'spp_config' cannot be combined with levels/mode/bins/order";
            return false;
        }
        out = blobCfg;
        return true;
    }
    for (size_t k = kLEVELS; k <= kORDER; ++k)
    {
        if (!have[k])
        {
            err = std::string("missing required field '") + names[k] + "'";
            return false;
        }
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
    return blob::size(cfg.nbLevels, kOWN_BYTES);
}

std::vector<uint8_t> serialize(SppConfig const& cfg)
{
    std::vector<uint8_t> buf = blob::begin(kMAGIC, kBLOB_VERSION, cfg.nbLevels, cfg.levels, kOWN_BYTES);
    blob::put<int32_t>(buf, static_cast<int32_t>(cfg.mode));
    blob::put<int32_t>(buf, static_cast<int32_t>(cfg.bins));
    blob::put<int32_t>(buf, static_cast<int32_t>(cfg.order));
    blob::finish(buf);
    return buf;
}

bool deserialize(void const* data, size_t length, SppConfig& out, std::string& err)
{
    uint8_t const* p = static_cast<uint8_t const*>(data);
    SppConfig cfg;
    size_t off = 0;
    if (!blob::readFrame(
            p, length, kMAGIC, kBLOB_VERSION, kOWN_BYTES, "SPP config", cfg.nbLevels, cfg.levels, off, err))
    {
        return false;
    }
    cfg.mode = static_cast<PoolMode>(blob::get<int32_t>(p, off));
    cfg.bins = static_cast<BinRule>(blob::get<int32_t>(p, off));
    cfg.order = static_cast<FlattenOrder>(blob::get<int32_t>(p, off));
    if (!blob::checkSum(p, off, "SPP config", err))
    {
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
