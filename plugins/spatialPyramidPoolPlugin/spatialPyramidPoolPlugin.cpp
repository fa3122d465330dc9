#include "spatialPyramidPoolPlugin.h"
#include "spatialPyramidPoolKernel.h"
#include "../common/levelPlan.h"
#include "../common/pluginLogging.h"

#include <exception>

using namespace nvinfer1;
using spp::plugin::SpatialPyramidPoolPlugin;

namespace
{

spp::SppParams toParams(spp::SppConfig const& c)
{
    spp::SppParams p{};
    spp::copyLevels(c, p);
    p.mode = c.mode;
    p.bins = c.bins;
    p.order = c.order;
    return p;
}

} // namespace

// ================================ plugin ========================================================

bool SpatialPyramidPoolPlugin::checkInputs(spp::plugin::InputDims const& in) const
{
    Dims const& d = in.dims[0];
    if (d.nbDims != 4)
    {
        kLOG.error(std::string(in.where) + ": input must be 4-D [N, C, H, W], got rank " + std::to_string(d.nbDims));
        return false;
    }
    int64_t const h = d.d[2];
    int64_t const w = d.d[3];
    if (in.build)
    {
        // A fully static H x W that the rule does not define (0 included) is a build-time error;
        // -1 is an extent not known yet.
        std::string const err = h >= 0 && w >= 0 ? spp::sizeErrorMessage(mConfig, h, w) : std::string();
        if (!err.empty())
        {
            kLOG.error(err);
            return false;
        }
        return true;
    }
    if (d.d[0] < 0 || d.d[1] < 0 || h < 1 || w < 1)
    {
        kLOG.error(std::string(in.where) + ": input must be [N, C, H, W] with H, W >= 1");
        return false;
    }
    return true;
}

int32_t SpatialPyramidPoolPlugin::launch(PluginTensorDesc const* inputDesc, void const* const* inputs, void* output,
    cudaStream_t stream, cudaError_t& cudaErr) const
{
    Dims const& d = inputDesc[0].dims;
    int64_t const N = d.d[0], C = d.d[1], H = d.d[2], W = d.d[3];
    // An H x W the rule does not define (dynamic dims, checked on the host before any launch):
    // the whole output is NaN and the call succeeds, like the standard-op graph and ONNX Runtime.
    // Every byte 0xFF is a NaN in both types (fp32 0xFFFFFFFF, fp16 0xFFFF: all-ones exponent,
    // non-zero mantissa; a negative quiet NaN, where the standard graph writes +NaN).
    if (spp::sizeError(mConfig.bins, H, W, mConfig.levels, mConfig.nbLevels) != 0)
    {
        size_t const elemBytes = inputDesc[0].type == DataType::kFLOAT ? sizeof(float) : sizeof(uint16_t);
        size_t const bytes = static_cast<size_t>(N) * static_cast<size_t>(C * mConfig.binsPerChannel()) * elemBytes;
        cudaError_t const fill = bytes > 0 ? cudaMemsetAsync(output, 0xFF, bytes, stream) : cudaSuccess;
        if (fill != cudaSuccess)
        {
            cudaErr = fill; // the base's launchStatus logs it, once
            return static_cast<int32_t>(spp::kSPP_CUDA_ERROR);
        }
        kLOG.message(
            ILogger::Severity::kVERBOSE, "enqueue: " + spp::sizeErrorMessage(mConfig, H, W) + " (output is NaN)");
        return spp::kSPP_OK;
    }
    return spp::launchSpatialPyramidPool(inputs[0], output,
        inputDesc[0].type == DataType::kFLOAT ? spp::DType::kFLOAT32 : spp::DType::kFLOAT16, N, C, H, W,
        toParams(mConfig), stream, &cudaErr);
}
