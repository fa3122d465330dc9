/*
 * libspp_plugin.so's entry points: IPluginRegistry::loadLibrary calls getCreators (every creator of
 * this library not yet registered) and setLoggerFinder.
 *
 * One creator instance per plugin: SpatialPyramidPool and WindowSpatialPyramidPool. Default build
 * (SPP_STATIC_REGISTRATION off): nothing registers at load time; loadLibrary / trtexec
 * --dynamicPlugins / spp_deploy's loader call getCreators and register both. With
 * SPP_STATIC_REGISTRATION, loading the library registers them (REGISTER_TENSORRT_PLUGIN-style) and
 * getCreators hands out only the ones static registration did not register, so a later
 * loadLibrary finds no duplicate to refuse.
 */
#include "../spatialPyramidPoolPlugin/spatialPyramidPoolPlugin.h"
#include "../windowSpatialPyramidPoolPlugin/windowSpatialPyramidPoolPlugin.h"
#include "../common/pluginLogging.h"

using namespace nvinfer1;

namespace
{

constexpr int32_t kNB_CREATORS = 2;

IPluginCreatorInterface* creator(int32_t i) noexcept
{
    static spp::plugin::SpatialPyramidPoolPluginCreator sSpp;
    static spp::plugin::WindowSpatialPyramidPoolPluginCreator sWindow;
    return i == 0 ? static_cast<IPluginCreatorInterface*>(&sSpp) : static_cast<IPluginCreatorInterface*>(&sWindow);
}

bool gStaticallyRegistered[kNB_CREATORS]{false, false};

#if defined(SPP_STATIC_REGISTRATION)
struct StaticRegistration
{
    StaticRegistration() noexcept
    {
        for (int32_t i = 0; i < kNB_CREATORS; ++i)
        {
            gStaticallyRegistered[i] = getPluginRegistry()->registerCreator(*creator(i), "");
        }
    }
};
StaticRegistration const gStaticRegistration{};
#endif

} // namespace

#if defined(_WIN32)
#define SPP_PLUGIN_EXPORT __declspec(dllexport)
#else
#define SPP_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

//! IPluginRegistry::loadLibrary entry point: the creators this library holds that are not yet registered.
extern "C" SPP_PLUGIN_EXPORT IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static IPluginCreatorInterface* sCreators[kNB_CREATORS]{};
    int32_t n = 0;
    for (int32_t i = 0; i < kNB_CREATORS; ++i)
    {
        if (!gStaticallyRegistered[i])
        {
            sCreators[n++] = creator(i);
        }
    }
    nbCreators = n;
    return sCreators;
}

//! IPluginRegistry::loadLibrary entry point: where to find a logger.
extern "C" SPP_PLUGIN_EXPORT void setLoggerFinder(ILoggerFinder* finder)
{
    spp::setPluginLoggerFinder(finder);
}
