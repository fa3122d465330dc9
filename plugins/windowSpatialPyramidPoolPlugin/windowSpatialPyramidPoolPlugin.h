/*
 * TensorRT plugin "WindowSpatialPyramidPool" (version "1", namespace ""): SPP-net window pooling,
 * IPluginV3 with IPluginV3OneCore / IPluginV3OneBuild / IPluginV3OneRuntime, and its creator.
 * Name, version and namespace equal the exporter's node (spp_deploy.contract WINDOW_OP,
 * WINDOW_PLUGIN_VERSION, WINDOW_PLUGIN_NAMESPACE; a test compares them).
 *
 * Inputs  X    [S, C, H, W] fp32 or fp16, linear
 *         ROIS [R, 5] fp32 only (map index, x1, y1, x2, y2: 1-based inclusive image pixels), linear
 * Output  [R, C * sum(n^2)], X's type; levels in order, each channel-major (c, yy, xx).
 * Fields: levels (kINT32 list), projection (kFLOAT32 list: stride, offset0, offset).
 * Workspace: the maps at their profile's largest, transposed to [S, H, W, C] (windowWorkspaceSize).
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
    //! Inputs: maps (0, FP32 or FP16), windows (1, FP32 only); the output has one row per window.
    static constexpr PluginTraits kTRAITS{kWINDOW_SPP_PLUGIN_NAME, kWINDOW_SPP_PLUGIN_VERSION,
        kWINDOW_SPP_PLUGIN_NAMESPACE, kWINDOW_FIELDS, kWFIELD_BLOB, 2, 1, "two inputs (maps, windows)",
        "maps must be FP32 or FP16 and windows FP32", 1U << 1};
    static constexpr PluginLogger kLOG{"[WindowSpatialPyramidPool] "};

    using PluginV3Base::PluginV3Base;

    //! Maps 4-D, windows [R, 5] (the width once known); at runtime no negative extent.
    bool checkInputs(InputDims const& in) const;
    //! The maps transposed to [S, H, W, C] at their largest (windowWorkspaceSize).
    size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    int32_t launchWithWorkspace(PluginTensorDesc const* inputDesc, void const* const* inputs, void* output,
        void* workspace, cudaStream_t stream, cudaError_t& cudaErr) const;
};

using WindowSpatialPyramidPoolPluginCreator = PluginCreatorV3<WindowSpatialPyramidPoolPlugin>;

} // namespace plugin
} // namespace spp

#endif // SPP_WINDOW_SPATIAL_PYRAMID_POOL_PLUGIN_H
