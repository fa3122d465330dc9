#include "spatialPyramidPoolPlugin.h"
#include "spatialPyramidPoolKernel.h"
#include "../common/configBlob.h"
#include "../common/pluginLogging.h"

#include <exception>

using namespace nvinfer1;
using spp::plugin::SpatialPyramidPoolPlugin;

namespace
{

using spp::plugin::isFloatOrHalf;

spp::SppParams toParams(spp::SppConfig const& c)
{
    spp::SppParams p{};
    p.nbLevels = c.nbLevels;
    for (int32_t l = 0; l < c.nbLevels; ++l)
    {
        p.levels[l] = c.levels[l];
    }
    p.mode = c.mode;
    p.bins = c.bins;
    p.order = c.order;
    return p;
}

} // namespace

// ================================ plugin ========================================================

std::vector<PluginField> SpatialPyramidPoolPlugin::creatorFields()
{
    return {PluginField(spp::kFIELD_LEVELS, nullptr, PluginFieldType::kINT32, 0),
        PluginField(spp::kFIELD_MODE, nullptr, PluginFieldType::kCHAR, 0),
        PluginField(spp::kFIELD_BINS, nullptr, PluginFieldType::kCHAR, 0),
        PluginField(spp::kFIELD_ORDER, nullptr, PluginFieldType::kCHAR, 0)};
}

int32_t SpatialPyramidPoolPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", [&] {
        if (in == nullptr || out == nullptr || nbInputs != 1 || nbOutputs != 1)
        {
            kLOG.error("expects exactly one input and one output");
            return -1;
        }
        if (in[0].desc.dims.nbDims != 4)
        {
            kLOG.error("input must be 4-D [N, C, H, W], got rank " + std::to_string(in[0].desc.dims.nbDims));
            return -1;
        }
        // A fully static H x W that the rule does not define is a build-time error.
        int64_t const h = in[0].desc.dims.d[2];
        int64_t const w = in[0].desc.dims.d[3];
        if (h > 0 && w > 0)
        {
            std::string const err = spp::sizeErrorMessage(mConfig, h, w);
            if (!err.empty())
            {
                kLOG.error(err);
                return -1;
            }
        }
        return 0;
    });
}

int32_t SpatialPyramidPoolPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", [&] {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 1 || nbOutputs != 1)
        {
            kLOG.error("expects exactly one input and one output");
            return -1;
        }
        if (inputs[0].nbDims != 4)
        {
            kLOG.error("input must be 4-D [N, C, H, W], got rank " + std::to_string(inputs[0].nbDims));
            return -1;
        }
        IDimensionExpr const* hExpr = inputs[0].d[2];
        IDimensionExpr const* wExpr = inputs[0].d[3];
        if (hExpr && wExpr && hExpr->isConstant() && wExpr->isConstant())
        {
            std::string const err
                = spp::sizeErrorMessage(mConfig, hExpr->getConstantValue(), wExpr->getConstantValue());
            if (!err.empty())
            {
                kLOG.error(err);
                return -1;
            }
        }
        setPooledShape(outputs[0], inputs[0].d[0], *inputs[0].d[1], exprBuilder);
        return 0;
    });
}

int32_t SpatialPyramidPoolPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != 1 || nbOutputs != 1 || in[0].dims.nbDims != 4)
    {
        kLOG.error("onShapeChange: expects one 4-D input and one output");
        return -1;
    }
    // Sizes are checked again in enqueue (which refuses to launch on an illegal H x W).
    return 0;
}

int32_t SpatialPyramidPoolPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", [&] {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            kLOG.error("enqueue: null descriptors or buffers");
            return -1;
        }
        Dims const& d = inputDesc[0].dims;
        if (d.nbDims != 4 || d.d[0] < 0 || d.d[1] < 0 || d.d[2] < 1 || d.d[3] < 1)
        {
            kLOG.error("enqueue: input must be [N, C, H, W] with H, W >= 1");
            return -1;
        }
        if (!isFloatOrHalf(inputDesc[0].type) || outputDesc[0].type != inputDesc[0].type
            || inputDesc[0].format != TensorFormat::kLINEAR || outputDesc[0].format != TensorFormat::kLINEAR)
        {
            kLOG.error("enqueue: unsupported type/format (FP32/FP16 linear, output same type as input)");
            return -1;
        }
        int64_t const N = d.d[0], C = d.d[1], H = d.d[2], W = d.d[3];
        Dims const& od = outputDesc[0].dims;
        if (od.nbDims != 2 || od.d[0] != N || od.d[1] != C * mConfig.binsPerChannel())
        {
            kLOG.error("enqueue: output shape does not match [N, C * sum(n^2)]");
            return -1;
        }
        // An H x W the rule does not define (dynamic dims, checked on the host before any launch):
        // the whole output is NaN and the call succeeds, like the standard-op graph and ONNX Runtime.
        // Every byte 0xFF is a NaN in both types (fp32 0xFFFFFFFF, fp16 0xFFFF: all-ones exponent,
        // non-zero mantissa; a negative quiet NaN, where the standard graph writes +NaN).
        if (spp::sizeError(mConfig.bins, H, W, mConfig.levels, mConfig.nbLevels) != 0)
        {
            size_t const elemBytes = inputDesc[0].type == DataType::kFLOAT ? sizeof(float) : sizeof(uint16_t);
            size_t const bytes = static_cast<size_t>(N) * static_cast<size_t>(od.d[1]) * elemBytes;
            cudaError_t const fill = bytes > 0 ? cudaMemsetAsync(outputs[0], 0xFF, bytes, stream) : cudaSuccess;
            if (fill != cudaSuccess)
            {
                kLOG.error(std::string("enqueue: NaN fill for an illegal size failed: ") + cudaGetErrorString(fill));
                return static_cast<int32_t>(spp::kSPP_CUDA_ERROR);
            }
            kLOG.message(ILogger::Severity::kVERBOSE, "enqueue: " + spp::sizeErrorMessage(mConfig, H, W) + " (output is NaN)");
            return 0;
        }
        cudaError_t cudaErr = cudaSuccess;
        int32_t const status = spp::launchSpatialPyramidPool(inputs[0], outputs[0],
            inputDesc[0].type == DataType::kFLOAT ? spp::DType::kFLOAT32 : spp::DType::kFLOAT16, N, C, H, W,
            toParams(mConfig), stream, &cudaErr);
        return launchStatus(status, cudaErr);
    });
}
