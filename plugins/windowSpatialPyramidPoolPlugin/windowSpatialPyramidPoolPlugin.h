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

#include "NvInferRuntime.h"
#include "NvInferVersion.h"
#include "windowConfig.h"

#include <string>
#include <vector>

#if !defined(NV_TENSORRT_MAJOR) || NV_TENSORRT_MAJOR < 10
#error "WindowSpatialPyramidPool needs TensorRT >= 10 headers (IPluginV3)"
#endif

namespace nvinfer1
{
namespace plugin
{

constexpr char const* kWINDOW_SPP_PLUGIN_NAME = "WindowSpatialPyramidPool";
constexpr char const* kWINDOW_SPP_PLUGIN_VERSION = "1";
constexpr char const* kWINDOW_SPP_PLUGIN_NAMESPACE = "";

class WindowSpatialPyramidPoolPlugin : public IPluginV3,
                                       public IPluginV3OneCore,
                                       public IPluginV3OneBuild,
                                       public IPluginV3OneRuntime
{
public:
    WindowSpatialPyramidPoolPlugin(spp::WindowConfig const& config, std::string const& ns);
    ~WindowSpatialPyramidPoolPlugin() override = default;

    // IPluginV3
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override;
    IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    AsciiChar const* getPluginName() const noexcept override;
    AsciiChar const* getPluginVersion() const noexcept override;
    AsciiChar const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    char const* getMetadataString() noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    IPluginV3* attachToContext(IPluginResourceContext* context) noexcept override;
    PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    spp::WindowConfig const& config() const noexcept
    {
        return mConfig;
    }

private:
    spp::WindowConfig mConfig;
    std::string mNamespace;
    std::string mMetadata;
    std::vector<uint8_t> mSerialBlob;
    std::vector<PluginField> mDataToSerialize;
    PluginFieldCollection mFCToSerialize{};
};

class WindowSpatialPyramidPoolPluginCreator : public IPluginCreatorV3One
{
public:
    WindowSpatialPyramidPoolPluginCreator();
    ~WindowSpatialPyramidPoolPluginCreator() override = default;

    IPluginV3* createPlugin(AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase phase) noexcept override;
    PluginFieldCollection const* getFieldNames() noexcept override;
    AsciiChar const* getPluginName() const noexcept override;
    AsciiChar const* getPluginVersion() const noexcept override;
    AsciiChar const* getPluginNamespace() const noexcept override;

    void setPluginNamespace(char const* ns) noexcept
    {
        mNamespace = ns ? ns : "";
    }

private:
    std::vector<PluginField> mPluginAttributes;
    PluginFieldCollection mFC{};
    std::string mNamespace{kWINDOW_SPP_PLUGIN_NAMESPACE};
};

} // namespace plugin
} // namespace nvinfer1

#endif // SPP_WINDOW_SPATIAL_PYRAMID_POOL_PLUGIN_H
