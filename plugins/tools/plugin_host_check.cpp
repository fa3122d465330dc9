/*
 * Host smoke test of libspp_plugin.so without TensorRT's runtime or a GPU: dlopen the library (its
 * only dependency is libcudart, which loads without a device), call the loadLibrary entry points
 * (setLoggerFinder, getCreators) and drive both plugins through the TensorRT headers' interfaces
 * the way the builder does: creators' identity and field names, createPlugin from the node's fields
 * (good and bad), capability interfaces, output types, format combinations, serialization and
 * re-creation from the serialized fields. Shapes and enqueue need TensorRT / a GPU: not run here.
 *
 *   g++ -std=c++17 -isystem <trt>/include -isystem <cuda>/include plugin_host_check.cpp -ldl -o check
 *   ./check path/to/libspp_plugin.so        (prints one line per check; exit status = failures)
 * The library must be built against the same TensorRT headers: interfaces such as ILoggerFinder are
 * not ABI-compatible between 10.x and 11.x. compile_check.sh runs it on the library it links.
 */
#include "NvInferRuntime.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace
{

int gFailures = 0;

void check(bool ok, std::string const& what)
{
    std::printf("%s %s\n", ok ? "OK  " : "FAIL", what.c_str());
    gFailures += ok ? 0 : 1;
}

class CaptureLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kERROR)
        {
            last = msg;
        }
    }
    std::string last;
};

class Finder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &logger;
    }
    CaptureLogger logger;
};

IPluginCreatorV3One* findCreator(IPluginCreatorInterface* const* creators, int32_t n, char const* name)
{
    for (int32_t i = 0; i < n; ++i)
    {
        InterfaceInfo const info = creators[i]->getInterfaceInfo();
        if (std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") != 0)
        {
            continue;
        }
        auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
        if (std::strcmp(c->getPluginName(), name) == 0)
        {
            return c;
        }
    }
    return nullptr;
}

//! Serialize, re-create from the serialized fields (the runtime path), compare the metadata.
void roundTrip(IPluginCreatorV3One* creator, IPluginV3* plugin, char const* what)
{
    auto* runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    PluginFieldCollection const* fc = runtime->getFieldsToSerialize();
    check(fc != nullptr && fc->nbFields == 1 && fc->fields[0].type == PluginFieldType::kUNKNOWN,
        std::string(what) + ": getFieldsToSerialize gives one blob field");
    if (fc == nullptr)
    {
        return;
    }
    IPluginV3* again = creator->createPlugin("again", fc, TensorRTPhase::kRUNTIME);
    check(again != nullptr, std::string(what) + ": createPlugin from the serialized blob");
    if (again != nullptr)
    {
        auto* b2 = static_cast<IPluginV3OneBuild*>(again->getCapabilityInterface(PluginCapabilityType::kBUILD));
        check(std::string(b2->getMetadataString()) == build->getMetadataString(),
            std::string(what) + ": same configuration after the round trip (" + build->getMetadataString() + ")");
        delete again;
    }
}

DynamicPluginTensorDesc desc(DataType t, int32_t rank)
{
    DynamicPluginTensorDesc d{};
    d.desc.type = t;
    d.desc.format = TensorFormat::kLINEAR;
    d.desc.dims.nbDims = rank;
    for (int32_t i = 0; i < rank; ++i)
    {
        d.desc.dims.d[i] = -1;
    }
    return d;
}

void checkWindowPlugin(IPluginCreatorV3One* creator, Finder& finder)
{
    check(std::string(creator->getPluginVersion()) == "1" && std::string(creator->getPluginNamespace()).empty(),
        "WindowSpatialPyramidPool: version 1, namespace \"\"");
    PluginFieldCollection const* names = creator->getFieldNames();
    check(names != nullptr && names->nbFields == 2 && std::string(names->fields[0].name) == "levels"
            && std::string(names->fields[1].name) == "projection",
        "WindowSpatialPyramidPool: field names levels, projection");
    int32_t const levels[4] = {1, 2, 3, 6};
    float const projection[3] = {16.F, 21.F, 6.5F};
    char const version[2] = "1";
    PluginField fields[3] = {PluginField("levels", levels, PluginFieldType::kINT32, 4),
        PluginField("projection", projection, PluginFieldType::kFLOAT32, 3),
        PluginField("plugin_version", version, PluginFieldType::kCHAR, 2)};
    PluginFieldCollection fc{3, fields};
    IPluginV3* plugin = creator->createPlugin("wspp", &fc, TensorRTPhase::kBUILD);
    check(plugin != nullptr, "WindowSpatialPyramidPool: createPlugin from the ONNX node's fields");
    if (plugin == nullptr)
    {
        return;
    }
    auto* build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto* core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    check(std::string(core->getPluginName()) == "WindowSpatialPyramidPool", "WindowSpatialPyramidPool: plugin name");
    check(build->getNbOutputs() == 1, "WindowSpatialPyramidPool: one output");
    DataType out{};
    DataType const in1[2] = {DataType::kHALF, DataType::kFLOAT};
    check(build->getOutputDataTypes(&out, 1, in1, 2) == 0 && out == DataType::kHALF,
        "WindowSpatialPyramidPool: output type follows the maps (fp16 maps, fp32 windows)");
    DataType const in2[2] = {DataType::kINT32, DataType::kFLOAT};
    check(build->getOutputDataTypes(&out, 1, in2, 2) != 0, "WindowSpatialPyramidPool: int32 maps refused");
    DataType const in3[2] = {DataType::kFLOAT, DataType::kHALF};
    finder.logger.last.clear();
    bool const halfWindows = build->getOutputDataTypes(&out, 1, in3, 2) != 0;
    check(halfWindows && finder.logger.last.find("windows FP32") != std::string::npos,
        "WindowSpatialPyramidPool: fp16 windows refused by getOutputDataTypes, logged: " + finder.logger.last);
    DynamicPluginTensorDesc io[3] = {desc(DataType::kHALF, 4), desc(DataType::kHALF, 2), desc(DataType::kHALF, 2)};
    check(build->supportsFormatCombination(0, io, 2, 1) && !build->supportsFormatCombination(1, io, 2, 1),
        "WindowSpatialPyramidPool: fp16 windows not a supported format (TensorRT must not pick kHALF for them)");
    io[0].desc.type = DataType::kFLOAT;
    io[1].desc.type = DataType::kFLOAT;
    io[2].desc.type = DataType::kFLOAT;
    check(build->supportsFormatCombination(0, io, 2, 1) && build->supportsFormatCombination(1, io, 2, 1)
            && build->supportsFormatCombination(2, io, 2, 1),
        "WindowSpatialPyramidPool: fp32 maps + fp32 windows -> fp32 output supported");
    io[2].desc.type = DataType::kHALF;
    check(!build->supportsFormatCombination(2, io, 2, 1), "WindowSpatialPyramidPool: output type != maps type refused");
    io[2].desc.type = DataType::kFLOAT;
    check(build->configurePlugin(io, 2, io + 2, 1) == 0, "WindowSpatialPyramidPool: configurePlugin (dynamic R)");
    io[0].max.nbDims = 4;
    io[0].max.d[0] = 2;
    io[0].max.d[1] = 256;
    io[0].max.d[2] = 42;
    io[0].max.d[3] = 56;
    check(build->getWorkspaceSize(io, 2, io + 2, 1) == size_t{2} * 256 * 42 * 56 * sizeof(float),
        "WindowSpatialPyramidPool: workspace = the largest maps (fp32), channels-last");
    io[0].desc.type = DataType::kHALF;
    check(build->getWorkspaceSize(io, 2, io + 2, 1) == size_t{2} * 256 * 42 * 56 * 2,
        "WindowSpatialPyramidPool: workspace = the largest maps (fp16)");
    io[0].desc.type = DataType::kFLOAT;
    io[1].desc.dims.d[1] = 4;
    bool const refused = build->configurePlugin(io, 2, io + 2, 1) != 0; // (evaluated before the message is built)
    check(refused && finder.logger.last.find("[R, 5]") != std::string::npos,
        "WindowSpatialPyramidPool: windows [R, 4] refused, logged: " + finder.logger.last);
    roundTrip(creator, plugin, "WindowSpatialPyramidPool");
    IPluginV3* copy = plugin->clone();
    check(copy != nullptr, "WindowSpatialPyramidPool: clone");
    delete copy;
    delete plugin;

    int32_t const bad[2] = {6, 5};
    PluginField badFields[2] = {PluginField("levels", bad, PluginFieldType::kINT32, 2),
        PluginField("projection", projection, PluginFieldType::kFLOAT32, 3)};
    PluginFieldCollection badFc{2, badFields};
    finder.logger.last.clear();
    bool const badLevel = creator->createPlugin("bad", &badFc, TensorRTPhase::kBUILD) == nullptr;
    check(badLevel && finder.logger.last.find("level 5 is not supported") != std::string::npos,
        "WindowSpatialPyramidPool: level 5 refused, logged: " + finder.logger.last);
    int32_t const good[1] = {2};
    PluginField onlyLevelsField[1] = {PluginField("levels", good, PluginFieldType::kINT32, 1)};
    PluginFieldCollection onlyLevels{1, onlyLevelsField};
    finder.logger.last.clear();
    bool const missing = creator->createPlugin("bad", &onlyLevels, TensorRTPhase::kBUILD) == nullptr;
    check(missing && finder.logger.last.find("missing required field 'projection'") != std::string::npos,
        "WindowSpatialPyramidPool: missing field refused, logged: " + finder.logger.last);
}

void checkSppPlugin(IPluginCreatorV3One* creator)
{
    int32_t const levels[3] = {4, 2, 1};
    PluginField fields[4] = {PluginField("levels", levels, PluginFieldType::kINT32, 3),
        PluginField("mode", "max", PluginFieldType::kCHAR, 4), PluginField("bins", "adaptive", PluginFieldType::kCHAR, 9),
        PluginField("order", "channel_major", PluginFieldType::kCHAR, 14)};
    PluginFieldCollection fc{4, fields};
    IPluginV3* plugin = creator->createPlugin("spp", &fc, TensorRTPhase::kBUILD);
    check(plugin != nullptr, "SpatialPyramidPool: createPlugin from the ONNX node's fields");
    if (plugin != nullptr)
    {
        roundTrip(creator, plugin, "SpatialPyramidPool");
        delete plugin;
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: %s libspp_plugin.so\n", argv[0]);
        return 2;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    check(lib != nullptr, std::string("dlopen ") + argv[1] + (lib ? "" : std::string(": ") + dlerror()));
    if (lib == nullptr)
    {
        return gFailures;
    }
    using GetCreators = IPluginCreatorInterface* const* (*) (int32_t&);
    using SetLoggerFinder = void (*)(ILoggerFinder*);
    auto getCreators = reinterpret_cast<GetCreators>(dlsym(lib, "getCreators"));
    auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(lib, "setLoggerFinder"));
    check(getCreators != nullptr && setLoggerFinder != nullptr, "entry points getCreators, setLoggerFinder");
    if (getCreators == nullptr || setLoggerFinder == nullptr)
    {
        return gFailures;
    }
    static Finder finder;
    setLoggerFinder(&finder);
    int32_t n = -1;
    IPluginCreatorInterface* const* creators = getCreators(n);
    check(n == 2, "getCreators returns 2 creators (got " + std::to_string(n) + ")");
    IPluginCreatorV3One* spp = findCreator(creators, n, "SpatialPyramidPool");
    IPluginCreatorV3One* window = findCreator(creators, n, "WindowSpatialPyramidPool");
    check(spp != nullptr && window != nullptr, "both are IPluginCreatorV3One: SpatialPyramidPool, WindowSpatialPyramidPool");
    if (spp != nullptr)
    {
        checkSppPlugin(spp);
    }
    if (window != nullptr)
    {
        checkWindowPlugin(window, finder);
    }
    std::printf("%d failure(s)\n", gFailures);
    return gFailures;
}
