#include "windowSpatialPyramidPoolPlugin.h"
#include "../common/pluginLogging.h"
#include "windowSpatialPyramidPoolKernel.h"

#include <exception>

using namespace nvinfer1;
using spp::plugin::WindowSpatialPyramidPoolPlugin;

namespace
{

constexpr spp::PluginLogger const& kLOG = WindowSpatialPyramidPoolPlugin::kLOG;
constexpr int32_t kIN_MAPS = 0;
constexpr int32_t kIN_WINDOWS = 1;

using spp::plugin::isFloatOrHalf;

spp::DType toDType(DataType t)
{
    return t == DataType::kFLOAT ? spp::DType::kFLOAT32 : spp::DType::kFLOAT16;
}

spp::WindowParams toParams(spp::WindowConfig const& c)
{
    spp::WindowParams p{};
    p.nbLevels = c.nbLevels;
    for (int32_t l = 0; l < c.nbLevels; ++l)
    {
        p.levels[l] = c.levels[l];
    }
    p.projection = c.projection;
    return p;
}

//! The ranks both inputs must have; the window row width when it is known.
bool checkRanks(int32_t mapsRank, int32_t windowsRank, int64_t windowWidth, char const* where)
{
    if (mapsRank != 4)
    {
        kLOG.error(std::string(where) + ": maps must be 4-D [S, C, H, W], got rank " + std::to_string(mapsRank));
        return false;
    }
    if (windowsRank != 2)
    {
        kLOG.error(std::string(where) + ": windows must be 2-D [R, 5], got rank " + std::to_string(windowsRank));
        return false;
    }
    if (windowWidth >= 0 && windowWidth != 5)
    {
        kLOG.error(std::string(where) + ": windows must be [R, 5] (index, x1, y1, x2, y2), got [R, "
            + std::to_string(windowWidth) + "]");
        return false;
    }
    return true;
}

} // namespace

// ================================ plugin ========================================================

std::vector<PluginField> WindowSpatialPyramidPoolPlugin::creatorFields()
{
    return {PluginField(spp::kWFIELD_LEVELS, nullptr, PluginFieldType::kINT32, 0),
        PluginField(spp::kWFIELD_PROJECTION, nullptr, PluginFieldType::kFLOAT32, 3)};
}

int32_t WindowSpatialPyramidPoolPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    return guarded("configurePlugin", [&] {
        if (in == nullptr || out == nullptr || nbInputs != 2 || nbOutputs != 1)
        {
            kLOG.error("expects two inputs (maps, windows) and one output");
            return -1;
        }
        Dims const& w = in[kIN_WINDOWS].desc.dims;
        return checkRanks(in[kIN_MAPS].desc.dims.nbDims, w.nbDims, w.nbDims == 2 ? w.d[1] : -1, "configurePlugin")
            ? 0
            : -1;
    });
}

int32_t WindowSpatialPyramidPoolPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", [&] {
        if (inputs == nullptr || outputs == nullptr || nbInputs != 2 || nbOutputs != 1)
        {
            kLOG.error("expects two inputs (maps, windows) and one output");
            return -1;
        }
        DimsExprs const& w = inputs[kIN_WINDOWS];
        IDimensionExpr const* width = w.nbDims == 2 ? w.d[1] : nullptr;
        int64_t const known = width != nullptr && width->isConstant() ? width->getConstantValue() : -1;
        if (!checkRanks(inputs[kIN_MAPS].nbDims, w.nbDims, known, "getOutputShapes"))
        {
            return -1;
        }
        setPooledShape(outputs[0], w.d[0], *inputs[kIN_MAPS].d[1], exprBuilder); // R: dynamic, from the windows
        return 0;
    });
}

int32_t WindowSpatialPyramidPoolPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != 2 || nbOutputs != 1)
    {
        kLOG.error("onShapeChange: expects two inputs and one output");
        return -1;
    }
    return checkRanks(in[kIN_MAPS].dims.nbDims, in[kIN_WINDOWS].dims.nbDims,
               in[kIN_WINDOWS].dims.nbDims == 2 ? in[kIN_WINDOWS].dims.d[1] : -1, "onShapeChange")
        ? 0
        : -1;
}

int32_t WindowSpatialPyramidPoolPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", [&] {
        if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
        {
            kLOG.error("enqueue: null descriptors or buffers");
            return -1;
        }
        Dims const& md = inputDesc[kIN_MAPS].dims;
        Dims const& wd = inputDesc[kIN_WINDOWS].dims;
        if (!checkRanks(md.nbDims, wd.nbDims, wd.nbDims == 2 ? wd.d[1] : -1, "enqueue"))
        {
            return -1;
        }
        int64_t const S = md.d[0], C = md.d[1], H = md.d[2], W = md.d[3], R = wd.d[0];
        if (S < 0 || C < 0 || H < 0 || W < 0 || R < 0)
        {
            kLOG.error("enqueue: negative dimensions");
            return -1;
        }
        DataType const mt = inputDesc[kIN_MAPS].type;
        DataType const wt = inputDesc[kIN_WINDOWS].type;
        if (!isFloatOrHalf(mt) || !isFloatOrHalf(wt) || outputDesc[0].type != mt
            || inputDesc[kIN_MAPS].format != TensorFormat::kLINEAR
            || inputDesc[kIN_WINDOWS].format != TensorFormat::kLINEAR || outputDesc[0].format != TensorFormat::kLINEAR)
        {
            kLOG.error("enqueue: unsupported type/format (FP32/FP16 linear, output the maps' type)");
            return -1;
        }
        Dims const& od = outputDesc[0].dims;
        if (od.nbDims != 2 || od.d[0] != R || od.d[1] != C * mConfig.binsPerChannel())
        {
            kLOG.error("enqueue: output shape does not match [R, C * sum(n^2)]");
            return -1;
        }
        // R == 0 (no windows) or C == 0: an empty output, nothing launched.
        cudaError_t cudaErr = cudaSuccess;
        int32_t const status = spp::launchWindowSpatialPyramidPool(inputs[kIN_MAPS], inputs[kIN_WINDOWS], outputs[0],
            toDType(mt), toDType(wt), S, C, H, W, R, toParams(mConfig), stream, &cudaErr);
        return launchStatus(status, cudaErr);
    });
}
