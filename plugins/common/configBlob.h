/*
 * What the two plugins' TensorRT-free config code (sppConfig.cpp, windowConfig.cpp) shares: the
 * `levels` field and level-count checks, the parser skeleton (parseConfigFields: named fields or the
 * blob field alone), and the serialized blob (blob::write / blob::read): magic[4], u32 version,
 * i32 nbLevels, i32 levels[], <the plugin's own values>, u32 FNV-1a of everything before it
 * (little-endian host layout). Header-only. The templates call validateConfig / deserializeConfig,
 * which sppConfig.h and windowConfig.h overload for their config types.
 */
#ifndef SPP_CONFIG_BLOB_H
#define SPP_CONFIG_BLOB_H

#include "sppBins.h" // kMAX_NB_LEVELS
#include "pluginFields.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

namespace spp
{

//! FNV-1a of n bytes: the checksum of the serialized blobs.
inline uint32_t fnv1a(uint8_t const* p, size_t n)
{
    uint32_t h = 2166136261U;
    for (size_t i = 0; i < n; ++i)
    {
        h ^= p[i];
        h *= 16777619U;
    }
    return h;
}

namespace blob
{

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

//! Bytes of a blob with nbLevels levels and `ownBytes` of the plugin's own values.
inline size_t size(int32_t nbLevels, size_t ownBytes)
{
    return 4 + 4 + 4 + 4 * static_cast<size_t>(nbLevels < 0 ? 0 : nbLevels) + ownBytes + 4;
}

//! A new blob: magic, version, nbLevels, levels[] (room reserved for all of it).
inline std::vector<uint8_t> begin(
    char const (&magic)[4], uint32_t version, int32_t nbLevels, int32_t const* levels, size_t ownBytes)
{
    std::vector<uint8_t> buf;
    buf.reserve(size(nbLevels, ownBytes));
    buf.insert(buf.end(), magic, magic + 4);
    put<uint32_t>(buf, version);
    put<int32_t>(buf, nbLevels);
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        put<int32_t>(buf, levels[l]);
    }
    return buf;
}

//! Appends the checksum of everything so far.
inline void finish(std::vector<uint8_t>& buf)
{
    put<uint32_t>(buf, fnv1a(buf.data(), buf.size()));
}

//! Reads a blob's frame up to its own values: length >= 12, magic, version, a level count in
//! 1..kMAX_NB_LEVELS, the exact length size(nb, ownBytes), then levels[]; `off` ends at the own values.
//! Messages name the blob as "serialized <what>".
inline bool readFrame(uint8_t const* p, size_t length, char const (&magic)[4], uint32_t version, size_t ownBytes,
    char const* what, int32_t& nbLevels, int32_t* levels, size_t& off, std::string& err)
{
    std::string const name = std::string("serialized ") + what;
    if (p == nullptr || length < 12)
    {
        err = name + " is too short";
        return false;
    }
    if (std::memcmp(p, magic, 4) != 0)
    {
        err = name + " has a bad magic";
        return false;
    }
    off = 4;
    uint32_t const v = get<uint32_t>(p, off);
    if (v != version)
    {
        err = "unsupported " + name + " version " + std::to_string(v);
        return false;
    }
    int32_t const nb = get<int32_t>(p, off);
    if (nb < 1 || nb > kMAX_NB_LEVELS)
    {
        err = name + " has an invalid level count " + std::to_string(nb);
        return false;
    }
    if (length != size(nb, ownBytes))
    {
        err = name + " has length " + std::to_string(length) + ", expected " + std::to_string(size(nb, ownBytes));
        return false;
    }
    nbLevels = nb;
    for (int32_t l = 0; l < nb; ++l)
    {
        levels[l] = get<int32_t>(p, off);
    }
    return true;
}

//! The checksum at `off` (just after the own values) against everything before it.
inline bool checkSum(uint8_t const* p, size_t off, char const* what, std::string& err)
{
    size_t const bodyLen = off;
    if (get<uint32_t>(p, off) != fnv1a(p, bodyLen))
    {
        err = std::string("serialized ") + what + " checksum mismatch (corrupted)";
        return false;
    }
    return true;
}

//! One plugin's blob: its magic and version, the bytes of its own values, and its name in messages.
struct Format
{
    char magic[4];
    uint32_t version;
    size_t ownBytes;
    char const* what; //!< "SPP config": messages say "serialized SPP config ..."
};

//! The whole blob of cfg: the frame, writeOwn(buf, cfg) appending the plugin's own values, the checksum.
template <typename Config, typename WriteOwn>
std::vector<uint8_t> write(Format const& fmt, Config const& cfg, WriteOwn writeOwn)
{
    std::vector<uint8_t> buf = begin(fmt.magic, fmt.version, cfg.nbLevels, cfg.levels, fmt.ownBytes);
    writeOwn(buf, cfg);
    finish(buf);
    return buf;
}

//! A blob back into *out: the frame, readOwn(p, off, cfg) reading the plugin's own values, the
//! checksum, then validateConfig(cfg) (the config type's overload). *out is untouched on failure.
template <typename Config, typename ReadOwn>
bool read(Format const& fmt, void const* data, size_t length, Config& out, std::string& err, ReadOwn readOwn)
{
    uint8_t const* p = static_cast<uint8_t const*>(data);
    Config cfg;
    size_t off = 0;
    if (!readFrame(p, length, fmt.magic, fmt.version, fmt.ownBytes, fmt.what, cfg.nbLevels, cfg.levels, off, err))
    {
        return false;
    }
    readOwn(p, off, cfg);
    if (!checkSum(p, off, fmt.what, err))
    {
        return false;
    }
    if (!validateConfig(cfg, err))
    {
        err = std::string("serialized ") + fmt.what + " is invalid: " + err;
        return false;
    }
    out = cfg;
    return true;
}

} // namespace blob

//! 1..kMAX_NB_LEVELS pyramid levels.
inline bool checkLevelCount(int64_t nbLevels, std::string& err)
{
    if (nbLevels < 1)
    {
        err = "pyramid levels must not be empty";
        return false;
    }
    if (nbLevels > kMAX_NB_LEVELS)
    {
        err = "too many pyramid levels: " + std::to_string(nbLevels) + " (at most " + std::to_string(kMAX_NB_LEVELS)
            + ")";
        return false;
    }
    return true;
}

//! 1..kMAX_NB_LEVELS levels, each passing accept(value, err): a config's level list.
template <typename Accept>
bool checkLevels(int32_t const* levels, int32_t nbLevels, std::string& err, Accept accept)
{
    if (!checkLevelCount(nbLevels, err))
    {
        return false;
    }
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        if (!accept(levels[l], err))
        {
            return false;
        }
    }
    return true;
}

//! The `levels` field (kINT32, or kINT64) into levels[] / nbLevels; `accept(value, err)` checks each level.
template <typename Accept>
bool parseLevelsField(Field const& f, int32_t* levels, int32_t& nbLevels, std::string& err, Accept accept)
{
    if (f.type != FieldType::kINT32 && f.type != FieldType::kINT64)
    {
        err = "field 'levels' must be an int list (kINT32), got type " + std::to_string(static_cast<int32_t>(f.type));
        return false;
    }
    if (!checkLevelCount(f.length, err))
    {
        return false;
    }
    if (f.data == nullptr)
    {
        err = "field 'levels' has no data";
        return false;
    }
    nbLevels = f.length;
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
        if (!accept(v, err))
        {
            return false;
        }
        levels[l] = static_cast<int32_t>(v);
    }
    return true;
}

//! Walks a field collection: every field needs a name; a name in names[0..N) may come once (seen[k]
//! records it) and goes to handle(k, field); any other name is only reported in `warnings`.
template <size_t N, typename Handle>
bool walkFields(Field const* fields, int32_t nbFields, char const* const* names, bool (&seen)[N], std::string& err,
    std::vector<std::string>* warnings, Handle handle)
{
    if (nbFields < 0 || (nbFields > 0 && fields == nullptr))
    {
        err = "invalid field collection";
        return false;
    }
    for (int32_t i = 0; i < nbFields; ++i)
    {
        Field const& f = fields[i];
        if (f.name == nullptr)
        {
            err = "field " + std::to_string(i) + " has no name";
            return false;
        }
        std::string const name(f.name);
        size_t k = 0;
        while (k < N && name != names[k])
        {
            ++k;
        }
        if (k == N)
        {
            if (warnings)
            {
                warnings->push_back("ignoring unknown field '" + name + "'");
            }
            continue;
        }
        if (seen[k])
        {
            err = "duplicate field '" + name + "'";
            return false;
        }
        seen[k] = true;
        if (!handle(k, f))
        {
            return false;
        }
    }
    return true;
}

//! A serialized-config field (kUNKNOWN, or kINT8) with data.
inline bool checkBlobField(Field const& f, std::string& err)
{
    if (f.type != FieldType::kUNKNOWN && f.type != FieldType::kINT8)
    {
        err = std::string("field '") + f.name + "' must be a byte blob (kUNKNOWN)";
        return false;
    }
    if (f.length < 0 || f.data == nullptr)
    {
        err = std::string("field '") + f.name + "' has no data";
        return false;
    }
    return true;
}

//! Both plugins' field parsers: the field named blobName alone is the whole config (deserializeConfig,
//! the config type's overload); otherwise every field of specs[] is required, handle(k, field, cfg)
//! reads specs[k] into cfg, and the result must pass validateConfig. *out is untouched on failure.
template <typename Config, size_t NSpecs, typename Handle>
bool parseConfigFields(Field const* fields, int32_t nbFields, FieldSpec const (&specs)[NSpecs], char const* blobName,
    Config& out, std::string& err, std::vector<std::string>* warnings, Handle handle)
{
    size_t const kBlob = NSpecs;
    char const* names[NSpecs + 1];
    for (size_t k = 0; k < NSpecs; ++k)
    {
        names[k] = specs[k].name;
    }
    names[kBlob] = blobName;
    bool have[NSpecs + 1] = {};
    Config cfg;
    Config blobCfg;
    bool const walked = walkFields(fields, nbFields, names, have, err, warnings, [&](size_t k, Field const& f) {
        if (k == kBlob)
        {
            return checkBlobField(f, err) && deserializeConfig(f.data, static_cast<size_t>(f.length), blobCfg, err);
        }
        return handle(k, f, cfg);
    });
    if (!walked)
    {
        return false;
    }
    if (have[kBlob])
    {
        std::string named;
        bool combined = false;
        for (size_t k = 0; k < kBlob; ++k)
        {
            named += (k == 0 ? "" : "/") + std::string(names[k]);
            combined = combined || have[k];
        }
        if (combined)
        {
            err = std::string("field '") + names[kBlob] + "' cannot be combined with " + named;
            return false;
        }
        out = blobCfg;
        return true;
    }
    for (size_t k = 0; k < kBlob; ++k)
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

//! "levels=[1,2,4]" (the start of both plugins' metadata strings).
inline void writeLevels(std::ostream& os, int32_t const* levels, int32_t nbLevels)
{
    os << "levels=[";
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        os << (l ? "," : "") << levels[l];
    }
    os << "]";
}

} // namespace spp

#endif // SPP_CONFIG_BLOB_H
