/*
 * What the two CPU references' C ABIs (sppReference.cpp, windowReference.cpp; loaded with ctypes
 * by spp_deploy.native.reference and .window_reference) share: input loaders, the error-message
 * copy, C fields to spp::Field, and the config parse / serialize / deserialize entry points' common shape.
 * Header-only, TensorRT-free.
 */
#ifndef SPP_REFERENCE_ABI_H
#define SPP_REFERENCE_ABI_H

#include "sppCAbi.h" // SppCField, SPP_STATUS_*
#include "sppHalf.h"
#include "pluginFields.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace spp
{
namespace cabi
{

//! fp32 input element i as float.
struct LoadF32
{
    float const* x;
    float operator()(int64_t i) const
    {
        return x[i];
    }
};

//! fp16 input element i (IEEE half bits) as float.
struct LoadF16
{
    uint16_t const* x;
    float operator()(int64_t i) const
    {
        return halfToFloat(x[i]);
    }
};

//! msg into err[errLen], truncated and NUL-terminated (nothing when err is null).
inline void copyErr(std::string const& msg, char* err, int32_t errLen)
{
    if (err != nullptr && errLen > 0)
    {
        size_t const n = std::min(msg.size(), static_cast<size_t>(errLen - 1));
        std::memcpy(err, msg.data(), n);
        err[n] = '\0';
    }
}

//! The *_config_parse entry points: C fields through parseConfig (the Config type's overload) into
//! *out via `toC`. A null `fields` with nbFields != 0 reaches the parser as an invalid collection.
template <typename Config, typename CConfig, typename ToC>
int32_t parseConfigC(ToC toC, SppCField const* fields, int32_t nbFields, CConfig* out, char* err, int32_t errLen)
{
    if (out == nullptr)
    {
        copyErr("null output config", err, errLen);
        return SPP_STATUS_BAD_ARGUMENT;
    }
    std::vector<Field> fs;
    for (int32_t i = 0; fields != nullptr && i < nbFields; ++i)
    {
        fs.push_back(Field{fields[i].name, fields[i].data, static_cast<FieldType>(fields[i].type), fields[i].length});
    }
    Config cfg;
    std::string msg;
    if (!parseConfig(fs.data(), fields == nullptr ? (nbFields == 0 ? 0 : -1) : nbFields, cfg, msg, nullptr))
    {
        copyErr(msg, err, errLen);
        return SPP_STATUS_BAD_CONFIG;
    }
    toC(cfg, out);
    copyErr("", err, errLen);
    return SPP_STATUS_OK;
}

//! The *_config_deserialize entry points: a blob through deserializeConfig (the Config type's overload)
//! into *out via `toC`.
template <typename Config, typename CConfig, typename ToC>
int32_t deserializeConfigC(ToC toC, uint8_t const* buf, int64_t len, CConfig* out, char* err, int32_t errLen)
{
    if (out == nullptr || len < 0)
    {
        copyErr("invalid argument", err, errLen);
        return SPP_STATUS_BAD_ARGUMENT;
    }
    Config cfg;
    std::string msg;
    if (!deserializeConfig(buf, static_cast<size_t>(len), cfg, msg))
    {
        copyErr(msg, err, errLen);
        return SPP_STATUS_BAD_CONFIG;
    }
    toC(cfg, out);
    copyErr("", err, errLen);
    return SPP_STATUS_OK;
}

//! The *_config_serialize entry points' tail: the blob's size when buf is null, else the blob copied
//! into buf[bufLen] and its size; -1 when it does not fit.
inline int64_t copyBlob(std::vector<uint8_t> const& blob, uint8_t* buf, int64_t bufLen)
{
    int64_t const n = static_cast<int64_t>(blob.size());
    if (buf == nullptr)
    {
        return n;
    }
    if (bufLen < n)
    {
        return -1;
    }
    std::memcpy(buf, blob.data(), blob.size());
    return n;
}

} // namespace cabi
} // namespace spp

#endif // SPP_REFERENCE_ABI_H
