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
    static constexpr PluginTraits kTRAITS{kSPP_PLUGIN_NAME, kSPP_PLUGIN_VERSION, "", kSPP_FIELDS, kFIELD_BLOB, 1, 0,
        "one input [N, C, H, W]", "input type must be FP32 or FP16"};
    static constexpr PluginLogger kLOG{"[SpatialPyramidPool] "};

    using PluginV3Base::PluginV3Base;

    //! Rank 4; at build time a fully static H x W the rule does not define is an error; at runtime
    //! N, C >= 0 and H, W >= 1 (an undefined H x W is the NaN output of launch).
    bool checkInputs(InputDims const& in) const;
    int32_t launch(PluginTensorDesc const* inputDesc, void const* const* inputs, void* output, cudaStream_t stream,
        cudaError_t& cudaErr) const;
};

using SpatialPyramidPoolPluginCreator = PluginCreatorV3<SpatialPyramidPoolPlugin>;

} // namespace plugin
} // namespace spp

#endif // SPP_SPATIAL_PYRAMID_POOL_PLUGIN_H
