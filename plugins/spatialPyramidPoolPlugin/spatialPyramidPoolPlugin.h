/*
 * TensorRT plugin "SpatialPyramidPool" (version "1", namespace ""): IPluginV3 with
 * IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime, and its IPluginCreatorV3One.
 *
 * Input  [N, C, H, W] fp32 or fp16, linear NCHW.
 * Output [N, C * sum(n^2)], same type; per-level flattening channel_major or bin_major.
 * Fields: levels (kINT32 list), mode / bins / order (kCHAR strings, trailing NUL allowed).
 * Written against TensorRT 10.x and 11.x headers (NV_TENSORRT_MAJOR >= 10).
 */
#ifndef SPP_SPATIAL_PYRAMID_POOL_PLUGIN_H
#define SPP_SPATIAL_PYRAMID_POOL_PLUGIN_H

#include "../common/pluginV3Base.h"
#include "sppConfig.h"

#include <string>
#include <vector>

namespace spp
{
namespace plugin
{

constexpr char const* kSPP_PLUGIN_NAME = "SpatialPyramidPool";
constexpr char const* kSPP_PLUGIN_VERSION = "1";

class SpatialPyramidPoolPlugin : public PluginV3Base<SpatialPyramidPoolPlugin, SppConfig>
{
public:
    static constexpr char const* kNAME = kSPP_PLUGIN_NAME;
    static constexpr char const* kVERSION = kSPP_PLUGIN_VERSION;
    static constexpr char const* kNAMESPACE = "";
    static constexpr char const* kBLOB_FIELD = kFIELD_BLOB;
    static constexpr int32_t kNB_INPUTS = 1;
    static constexpr char const* kTYPES_ERROR = "input type must be FP32 or FP16";
    static constexpr PluginLogger kLOG{"[SpatialPyramidPool] "};

    static std::vector<PluginField> creatorFields();

    using PluginV3Base::PluginV3Base;

    // IPluginV3OneBuild (types and formats: PluginV3Base)
    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
};

using SpatialPyramidPoolPluginCreator = PluginCreatorV3<SpatialPyramidPoolPlugin>;

} // namespace plugin
} // namespace spp

#endif // SPP_SPATIAL_PYRAMID_POOL_PLUGIN_H
