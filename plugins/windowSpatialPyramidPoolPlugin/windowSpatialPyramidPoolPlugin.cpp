#include "windowSpatialPyramidPoolPlugin.h"
#include "../common/pluginLogging.h"
#include "windowSpatialPyramidPoolKernel.h"
#include "../common/levelPlan.h"

#include <exception>

using namespace nvinfer1;
using spp::plugin::WindowSpatialPyramidPoolPlugin;

namespace
{

constexpr spp::PluginLogger const& kLOG = WindowSpatialPyramidPoolPlugin::kLOG;
constexpr int32_t kIN_MAPS = 0;
constexpr int32_t kIN_WINDOWS = 1;

spp::DType toDType(DataType t)
{
    return t == DataType::kFLOAT ? spp::DType::kFLOAT32 : spp::DType::kFLOAT16;
}

spp::WindowParams toParams(spp::WindowConfig const& c)
{
    spp::WindowParams p{};
    spp::copyLevels(c, p);
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

bool WindowSpatialPyramidPoolPlugin::checkInputs(spp::plugin::InputDims const& in) const
{
    Dims const& m = in.dims[kIN_MAPS];
    Dims const& w = in.dims[kIN_WINDOWS];
    if (!checkRanks(m.nbDims, w.nbDims, w.nbDims == 2 ? w.d[1] : -1, in.where))
    {
        return false;
    }
    if (!in.build && (m.d[0] < 0 || m.d[1] < 0 || m.d[2] < 0 || m.d[3] < 0 || w.d[0] < 0))
    {
        kLOG.error(std::string(in.where) + ": negative dimensions");
        return false;
    }
    return true;
}

size_t WindowSpatialPyramidPoolPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs < 1 || inputs[kIN_MAPS].max.nbDims != 4)
    {
        return 0;
    }
    Dims const& m = inputs[kIN_MAPS].max;
    return spp::windowWorkspaceSize(toDType(inputs[kIN_MAPS].desc.type), m.d[0], m.d[1], m.d[2], m.d[3]);
}

int32_t WindowSpatialPyramidPoolPlugin::launchWithWorkspace(PluginTensorDesc const* inputDesc,
    void const* const* inputs, void* output, void* workspace, cudaStream_t stream, cudaError_t& cudaErr) const
{
    Dims const& md = inputDesc[kIN_MAPS].dims;
    // R == 0 (no windows) or C == 0: an empty output, nothing launched.
    return spp::launchWindowSpatialPyramidPool(inputs[kIN_MAPS], inputs[kIN_WINDOWS], output, workspace,
        toDType(inputDesc[kIN_MAPS].type), toDType(inputDesc[kIN_WINDOWS].type), md.d[0], md.d[1], md.d[2], md.d[3],
        inputDesc[kIN_WINDOWS].dims.d[0], toParams(mConfig), stream, &cudaErr);
}
