/*
 * SPP plugin configuration: TensorRT-free field parsing, validation and (de)serialization.
 *
 * Fields (as the ONNX parser passes node attributes to IPluginCreatorV3One::createPlugin):
 *   levels  kINT32 list (kINT64 accepted), 1..kMAX_NB_LEVELS (16) entries, each 1..kMAX_LEVEL (64)
 *   mode    kCHAR string "max" | "avg"
 *   bins    kCHAR string "adaptive" | "ceil_pad" | "floor_kernel" | "rounded"
 *   order   kCHAR string "channel_major" | "bin_major"
 * Strings may carry a trailing NUL inside `length` (the parser does) or not.
 * All four are required. Unknown field names are ignored (reported in `warnings`).
 * A serialized engine stores the config as one field "spp_config" (kUNKNOWN): a versioned blob.
 */
#ifndef SPP_CONFIG_H
#define SPP_CONFIG_H

#include "../common/pluginFields.h"
#include "../common/sppBins.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spp
{

struct SppConfig
{
    int32_t nbLevels{0};
    int32_t levels[kMAX_NB_LEVELS]{};
    PoolMode mode{PoolMode::kMAX};
    BinRule bins{BinRule::kADAPTIVE};
    FlattenOrder order{FlattenOrder::kCHANNEL_MAJOR};

    int64_t binsPerChannel() const; //!< sum(n^2)
};

constexpr char const* kFIELD_LEVELS = "levels";
constexpr char const* kFIELD_MODE = "mode";
constexpr char const* kFIELD_BINS = "bins";
constexpr char const* kFIELD_ORDER = "order";
constexpr char const* kFIELD_BLOB = "spp_config";

//! The named fields, in this order (parseConfig's field indices); all four required.
inline constexpr FieldSpec kSPP_FIELDS[] = {{kFIELD_LEVELS, FieldType::kINT32, 0}, {kFIELD_MODE, FieldType::kCHAR, 0},
    {kFIELD_BINS, FieldType::kCHAR, 0}, {kFIELD_ORDER, FieldType::kCHAR, 0}};

char const* modeName(PoolMode m);
char const* ruleName(BinRule r);
char const* orderName(FlattenOrder o);
bool parseMode(std::string const& s, PoolMode& out);
bool parseRule(std::string const& s, BinRule& out);
bool parseOrder(std::string const& s, FlattenOrder& out);

//! Check ranges and enum values; false with `err` set when invalid.
bool validateConfig(SppConfig const& cfg, std::string& err);

//! Build a config from fields. A field named "spp_config" (kUNKNOWN/kINT8, a blob from serializeConfig())
//! alone is also accepted (the runtime path); otherwise the four named fields are required.
//! (windowConfig.h overloads parseConfig, validateConfig, serializeConfig, deserializeConfig and
//! describeConfig for WindowConfig: common/ templates call them by config type.)
bool parseConfig(Field const* fields, int32_t nbFields, SppConfig& out, std::string& err,
    std::vector<std::string>* warnings = nullptr);

//! Versioned blob: "SPPC" magic, u32 version, i32 nbLevels, i32 levels[], i32 mode, bins, order,
//! u32 FNV-1a checksum of everything before it (frame: common/configBlob.h). Little-endian host layout.
constexpr uint32_t kBLOB_VERSION = 1;
std::vector<uint8_t> serializeConfig(SppConfig const& cfg);
size_t serializedSize(SppConfig const& cfg);
//! Exact size, magic, version, checksum and validateConfig are all checked.
bool deserializeConfig(void const* data, size_t length, SppConfig& out, std::string& err);

//! "levels=[1,2,4] mode=max bins=adaptive order=channel_major" (the plugin's metadata string).
std::string describeConfig(SppConfig const& cfg);

//! Human-readable size error (empty when legal at H x W).
std::string sizeErrorMessage(SppConfig const& cfg, int64_t H, int64_t W);

} // namespace spp

#endif // SPP_CONFIG_H
