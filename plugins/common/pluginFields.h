/*
 * TensorRT-free plugin fields, shared by both plugins' config parsers (sppConfig, windowConfig), the
 * reference library's C ABI and the plugins' creators (pluginV3Base.h converts PluginField to Field).
 */
#ifndef SPP_PLUGIN_FIELDS_H
#define SPP_PLUGIN_FIELDS_H

#include <cstdint>

namespace spp
{

//! Same numeric values as nvinfer1::PluginFieldType (checked with static_assert in pluginV3Base.h).
enum class FieldType : int32_t
{
    kFLOAT16 = 0,
    kFLOAT32 = 1,
    kFLOAT64 = 2,
    kINT8 = 3,
    kINT16 = 4,
    kINT32 = 5,
    kCHAR = 6,
    kDIMS = 7,
    kUNKNOWN = 8,
    kBF16 = 9,
    kINT64 = 10,
};

//! A TensorRT-free view of nvinfer1::PluginField.
struct Field
{
    char const* name;
    void const* data;
    FieldType type;
    int32_t length;
};

//! A field a plugin's creator announces (IPluginCreatorV3One::getFieldNames) and its config parser
//! reads: name, type, length (0: any). Each config header lists its fields once (kSPP_FIELDS,
//! kWINDOW_FIELDS); the serialized-blob field is not among them.
struct FieldSpec
{
    char const* name;
    FieldType type;
    int32_t length;
};

//! A FieldSpec table seen as pointer and count.
struct FieldSpecs
{
    FieldSpec const* data;
    int32_t size;

    template <int32_t N>
    constexpr FieldSpecs(FieldSpec const (&specs)[N]) // NOLINT: implicit on purpose, from a table
        : data(specs)
        , size(N)
    {
    }
};

} // namespace spp

#endif // SPP_PLUGIN_FIELDS_H
