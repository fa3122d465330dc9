/*
 * TensorRT plugin "WindowSpatialPyramidPool" (version "1", namespace ""): SPP-net window pooling,
 * IPluginV3 with IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime, and its creator.
 * Name, version and namespace equal the exporter's node (spp_deploy.export.graph WINDOW_OP,
 * WINDOW_PLUGIN_VERSION, WINDOW_PLUGIN_NAMESPACE; a test compares them).
 *
 * Inputs  X    [S, C, H, W] fp32 or fp16, linear
 *         ROIS [R, 5] fp32 or fp16 (map index, x1, y1, x2, y2: 1-based inclusive image pixels), linear
 * Output  [R, C * sum(n^2)], X's type; levels in order, each channel-major (c, yy, xx).
 * Fields: levels (kINT32 list), projection (kFLOAT32 list: stride, offset0, offset).
 * Written against TensorRT 10.x and 11.x headers (NV_TENSORRT_MAJOR >= 10).
 */
#ifndef SPP_WINDOW_SPATIAL_PYRAMID_POOL_PLUGIN_H
#define SPP_WINDOW_SPATIAL_PYRAMID_POOL_PLUGIN_H

#include "../common/pluginV3Base.h"
#include "windowConfig.h"

#include <string>
#include <vector>

namespace spp
{
namespace plugin
{

constexpr char const* kWINDOW_SPP_PLUGIN_NAME = "WindowSpatialPyramidPool";
constexpr char const* kWINDOW_SPP_PLUGIN_VERSION = "1";
constexpr char const* kWINDOW_SPP_PLUGIN_NAMESPACE = "";

class WindowSpatialPyramidPoolPlugin : public PluginV3Base<WindowSpatialPyramidPoolPlugin, WindowConfig>
{
public:
    static constexpr char const* kNAME = kWINDOW_SPP_PLUGIN_NAME;
    static constexpr char const* kVERSION = kWINDOW_SPP_PLUGIN_VERSION;
    static constexpr char const* kNAMESPACE = kWINDOW_SPP_PLUGIN_NAMESPACE;
    static constexpr char const* kBLOB_FIELD = kWFIELD_BLOB;
    static constexpr int32_t kNB_INPUTS = 2;
    static constexpr char const* kTYPES_ERROR = "maps and windows must be FP32 or FP16";
    static constexpr PluginLogger kLOG{"[WindowSpatialPyramidPool] "};

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

using WindowSpatialPyramidPoolPluginCreator = PluginCreatorV3<WindowSpatialPyramidPoolPlugin>;

} // namespace plugin
} // namespace spp

#endif // SPP_WINDOW_SPATIAL_PYRAMID_POOL_PLUGIN_H
