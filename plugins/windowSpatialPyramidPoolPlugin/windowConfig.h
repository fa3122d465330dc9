/*
 * Window SPP plugin configuration: TensorRT-free field parsing, validation and (de)serialization.
 *
 * Fields (the ONNX node's attributes, as the parser passes them to createPlugin):
 *   levels      kINT32 list (kINT64 accepted), 1..kMAX_NB_LEVELS (16) entries, each in kWINDOW_LEVELS (windowSpp.h)
 *   projection  kFLOAT32 list of 3 (kFLOAT64 accepted): stride > 0, offset0, offset; all finite
 * Both are required. Unknown field names (plugin_version, plugin_namespace, ...) are ignored
 * (reported in `warnings`). A serialized engine stores the config as one field
 * "window_spp_config" (kUNKNOWN): a versioned, checksummed blob.
 */
#ifndef SPP_WINDOW_CONFIG_H
#define SPP_WINDOW_CONFIG_H

#include "../spatialPyramidPoolPlugin/sppConfig.h"
#include "windowSpp.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spp
{

struct WindowConfig
{
    int32_t nbLevels{0};
    int32_t levels[kMAX_NB_LEVELS]{};
    WindowProjection projection{1.0, 1.0, 0.0};

    int64_t binsPerChannel() const; //!< sum(n^2)
};

constexpr char const* kWFIELD_LEVELS = "levels";
constexpr char const* kWFIELD_PROJECTION = "projection";
constexpr char const* kWFIELD_BLOB = "window_spp_config";

//! The named fields, in this order (parseConfig's field indices); both required.
inline constexpr FieldSpec kWINDOW_FIELDS[]
    = {{kWFIELD_LEVELS, FieldType::kINT32, 0}, {kWFIELD_PROJECTION, FieldType::kFLOAT32, 3}};

//! Ranges, level set, finite projection with stride > 0; false with `err` set when invalid.
bool validateConfig(WindowConfig const& cfg, std::string& err);

//! (Overloads of sppConfig.h's SppConfig functions, one name per job: common/configBlob.h's templates
//! and the plugin base call them by config type.)

//! Build a config from fields; "window_spp_config" (a blob from serializeConfig) alone is
//! also accepted (the runtime path); otherwise levels and projection are required.
bool parseConfig(Field const* fields, int32_t nbFields, WindowConfig& out, std::string& err,
    std::vector<std::string>* warnings = nullptr);

//! Blob: "WSPC", u32 version, i32 nbLevels, i32 levels[], f64 stride, offset0, offset, u32 FNV-1a of
//! everything before it. Little-endian host layout.
constexpr uint32_t kWINDOW_BLOB_VERSION = 1;
std::vector<uint8_t> serializeConfig(WindowConfig const& cfg);
//! Exact size, magic, version, checksum and validateConfig are all checked.
bool deserializeConfig(void const* data, size_t length, WindowConfig& out, std::string& err);

//! "levels=[1,2,3,6] projection=[16,21,6.5]".
std::string describeConfig(WindowConfig const& cfg);

} // namespace spp

#endif // SPP_WINDOW_CONFIG_H
