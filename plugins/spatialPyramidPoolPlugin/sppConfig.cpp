#include "sppConfig.h"
#include "../common/configBlob.h"

#include <sstream>

namespace spp
{

namespace
{

//! The blob: "SPPC", its version; this plugin's own values are mode, bins, order (3 x i32).
constexpr blob::Format kFORMAT{{'S', 'P', 'P', 'C'}, kBLOB_VERSION, 3 * 4, "SPP config"};

//! A level of the whole-image pyramid: 1..kMAX_LEVEL.
bool levelInRange(int64_t v, std::string& err)
{
    if (v < 1 || v > kMAX_LEVEL)
    {
        err = "pyramid level " + std::to_string(v) + " out of range 1.." + std::to_string(kMAX_LEVEL);
        return false;
    }
    return true;
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

int64_t SppConfig::binsPerChannel() const
{
    return featureCount(1, levels, nbLevels);
}

namespace
{

//! One enum's names, in a table that both directions (value -> name, name -> value) read.
template <typename E>
struct EnumName
{
    E value;
    char const* name;
};

constexpr EnumName<PoolMode> kMODE_NAMES[] = {{PoolMode::kMAX, "max"}, {PoolMode::kAVG, "avg"}};
constexpr EnumName<BinRule> kRULE_NAMES[] = {{BinRule::kADAPTIVE, "adaptive"}, {BinRule::kCEIL_PAD, "ceil_pad"},
    {BinRule::kFLOOR_KERNEL, "floor_kernel"}, {BinRule::kROUNDED, "rounded"}};
constexpr EnumName<FlattenOrder> kORDER_NAMES[] = {
    {FlattenOrder::kCHANNEL_MAJOR, "channel_major"}, {FlattenOrder::kBIN_MAJOR, "bin_major"}};

//! The name of v, "?" when v is not in the table.
template <typename E, size_t N>
char const* nameOf(EnumName<E> const (&table)[N], E v)
{
    for (auto const& e : table)
    {
        if (e.value == v)
        {
            return e.name;
        }
    }
    return "?";
}

//! The value named s; false (out unchanged) when no entry has that name.
template <typename E, size_t N>
bool valueOf(EnumName<E> const (&table)[N], std::string const& s, E& out)
{
    for (auto const& e : table)
    {
        if (s == e.name)
        {
            out = e.value;
            return true;
        }
    }
    return false;
}

//! "max, avg": every name of the table, for error messages.
template <typename E, size_t N>
std::string knownNames(EnumName<E> const (&table)[N])
{
    std::string s;
    for (auto const& e : table)
    {
        s += (s.empty() ? "" : ", ") + std::string(e.name);
    }
    return s;
}

//! v is one of the table's values (a config read from a blob or the C ABI may hold anything).
template <typename E, size_t N>
bool isKnown(EnumName<E> const (&table)[N], E v)
{
    return nameOf(table, v)[0] != '?';
}

} // namespace

char const* modeName(PoolMode m)
{
    return nameOf(kMODE_NAMES, m);
}

char const* ruleName(BinRule r)
{
    return nameOf(kRULE_NAMES, r);
}

char const* orderName(FlattenOrder o)
{
    return nameOf(kORDER_NAMES, o);
}

bool parseMode(std::string const& s, PoolMode& out)
{
    return valueOf(kMODE_NAMES, s, out);
}

bool parseRule(std::string const& s, BinRule& out)
{
    return valueOf(kRULE_NAMES, s, out);
}

bool parseOrder(std::string const& s, FlattenOrder& out)
{
    return valueOf(kORDER_NAMES, s, out);
}

bool validateConfig(SppConfig const& cfg, std::string& err)
{
    if (!checkLevels(cfg.levels, cfg.nbLevels, err, levelInRange))
    {
        return false;
    }
    struct
    {
        bool known;
        char const* what;
        int32_t value;
    } const enums[] = {{isKnown(kMODE_NAMES, cfg.mode), "mode", static_cast<int32_t>(cfg.mode)},
        {isKnown(kRULE_NAMES, cfg.bins), "bin rule", static_cast<int32_t>(cfg.bins)},
        {isKnown(kORDER_NAMES, cfg.order), "order", static_cast<int32_t>(cfg.order)}};
    for (auto const& e : enums)
    {
        if (!e.known)
        {
            err = std::string("invalid ") + e.what + " " + std::to_string(e.value);
            return false;
        }
    }
    return true;
}

bool parseConfig(
    Field const* fields, int32_t nbFields, SppConfig& out, std::string& err, std::vector<std::string>* warnings)
{
    enum : size_t // kSPP_FIELDS' order
    {
        kLEVELS,
        kMODE,
        kBINS,
        kORDER
    };
    return parseConfigFields(fields, nbFields, kSPP_FIELDS, kFIELD_BLOB, out, err, warnings,
        [&](size_t k, Field const& f, SppConfig& cfg) {
            if (k == kLEVELS)
            {
                return parseLevelsField(f, cfg.levels, cfg.nbLevels, err, levelInRange);
            }
            std::string s;
            if (!fieldString(f, s, err))
            {
                return false;
            }
            bool const ok = k == kMODE ? valueOf(kMODE_NAMES, s, cfg.mode)
                : k == kBINS           ? valueOf(kRULE_NAMES, s, cfg.bins)
                                       : valueOf(kORDER_NAMES, s, cfg.order);
            if (!ok)
            {
                std::string const known = k == kMODE ? knownNames(kMODE_NAMES)
                    : k == kBINS                     ? knownNames(kRULE_NAMES)
                                                     : knownNames(kORDER_NAMES);
                err = std::string("unknown ") + kSPP_FIELDS[k].name + " '" + s + "' (known: " + known + ")";
            }
            return ok;
        });
}

size_t serializedSize(SppConfig const& cfg)
{
    return blob::size(cfg.nbLevels, kFORMAT.ownBytes);
}

std::vector<uint8_t> serializeConfig(SppConfig const& cfg)
{
    return blob::write(kFORMAT, cfg, [](std::vector<uint8_t>& buf, SppConfig const& c) {
        blob::put<int32_t>(buf, static_cast<int32_t>(c.mode));
        blob::put<int32_t>(buf, static_cast<int32_t>(c.bins));
        blob::put<int32_t>(buf, static_cast<int32_t>(c.order));
    });
}

bool deserializeConfig(void const* data, size_t length, SppConfig& out, std::string& err)
{
    return blob::read(kFORMAT, data, length, out, err, [](uint8_t const* p, size_t& off, SppConfig& c) {
        c.mode = static_cast<PoolMode>(blob::get<int32_t>(p, off));
        c.bins = static_cast<BinRule>(blob::get<int32_t>(p, off));
        c.order = static_cast<FlattenOrder>(blob::get<int32_t>(p, off));
    });
}

std::string describeConfig(SppConfig const& cfg)
{
    std::ostringstream os;
    writeLevels(os, cfg.levels, cfg.nbLevels);
    os << " mode=" << modeName(cfg.mode) << " bins=" << ruleName(cfg.bins) << " order=" << orderName(cfg.order);
    return os.str();
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
