/*
 * The IPluginV3 boilerplate both plugins of libspp_plugin.so share, written once:
 *
 *   PluginV3Base<Derived, Config>  capabilities, clone / attachToContext, name / version / namespace,
 *                                  one output, no workspace, metadata, and getFieldsToSerialize (the
 *                                  config as one checksummed blob field).
 *   PluginCreatorV3<Plugin>        the creator: field names, and createPlugin (PluginField ->
 *                                  spp::Field -> the plugin's TensorRT-free parser).
 *
 * A plugin class derives from PluginV3Base<itself, its config> and supplies (all static):
 *   kNAME, kVERSION, kNAMESPACE, kBLOB_FIELD   char const*
 *   kNB_INPUTS                                 int32_t; every input FP32/FP16 linear, one output of
 *                                              input 0's type (kTYPES_ERROR: the message otherwise)
 *   kLOG                                       PluginLogger (its message prefix)
 *   creatorFields()                            std::vector<PluginField>, the creator's field names
 * and its own shape and enqueue methods; it inherits the constructor (config, namespace). The config
 * type's free functions (namespace spp: sppConfig.h, windowConfig.h) parseConfig(fields, n, config,
 * err, warnings), serializeConfig(config) and describeConfig(config) are found by argument type. Our classes live in spp::plugin, not in
 * TensorRT's nvinfer1 namespace.
 */
#ifndef SPP_PLUGIN_V3_BASE_H
#define SPP_PLUGIN_V3_BASE_H

#include "NvInferRuntime.h"
#include "NvInferVersion.h"
#include "../spatialPyramidPoolPlugin/spatialPyramidPoolKernel.h" // SppStatus
#include "pluginFields.h"
#include "pluginLogging.h"

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#if !defined(NV_TENSORRT_MAJOR) || NV_TENSORRT_MAJOR < 10
#error "the spp plugins need TensorRT >= 10 headers (IPluginV3)"
#endif

namespace spp
{
namespace plugin
{

// The TensorRT types the plugin declarations use, without opening nvinfer1 to our classes.
using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::IDimensionExpr;
using nvinfer1::IExprBuilder;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginResourceContext;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorRTPhase;

//! The TensorRT-free parsers mirror PluginFieldType numerically.
constexpr bool sameFieldType(nvinfer1::PluginFieldType t, FieldType f)
{
    return static_cast<int32_t>(t) == static_cast<int32_t>(f);
}
static_assert(sameFieldType(PluginFieldType::kFLOAT32, FieldType::kFLOAT32), "");
static_assert(sameFieldType(PluginFieldType::kFLOAT64, FieldType::kFLOAT64), "");
static_assert(sameFieldType(PluginFieldType::kINT8, FieldType::kINT8), "");
static_assert(sameFieldType(PluginFieldType::kINT32, FieldType::kINT32), "");
static_assert(sameFieldType(PluginFieldType::kINT64, FieldType::kINT64), "");
static_assert(sameFieldType(PluginFieldType::kCHAR, FieldType::kCHAR), "");
static_assert(sameFieldType(PluginFieldType::kUNKNOWN, FieldType::kUNKNOWN), "");
static_assert(sizeof(Dims{}.d[0]) == sizeof(int64_t), "TensorRT >= 10 uses 64-bit dimensions");

//! FP32 or FP16: the tensor types both plugins accept.
inline bool isFloatOrHalf(DataType t) noexcept
{
    return t == DataType::kFLOAT || t == DataType::kHALF;
}

template <typename Derived, typename Config>
class PluginV3Base : public nvinfer1::IPluginV3,
                     public nvinfer1::IPluginV3OneCore,
                     public nvinfer1::IPluginV3OneBuild,
                     public nvinfer1::IPluginV3OneRuntime
{
public:
    using ConfigType = Config;

    PluginV3Base(Config const& config, std::string const& ns)
        : mConfig(config)
        , mNamespace(ns)
        , mMetadata(describeConfig(config))
    {
    }
    ~PluginV3Base() override = default;

    // IPluginV3
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    IPluginV3* clone() noexcept override
    {
        try
        {
            return new Derived(mConfig, mNamespace);
        }
        catch (std::exception const& e)
        {
            Derived::kLOG.exception("clone", e);
        }
        catch (...)
        {
            Derived::kLOG.error("clone: unknown exception");
        }
        return nullptr;
    }

    // IPluginV3OneCore
    AsciiChar const* getPluginName() const noexcept override
    {
        return Derived::kNAME;
    }
    AsciiChar const* getPluginVersion() const noexcept override
    {
        return Derived::kVERSION;
    }
    AsciiChar const* getPluginNamespace() const noexcept override
    {
        return mNamespace.c_str();
    }

    // IPluginV3OneBuild (configurePlugin and getOutputShapes are the plugin's own)
    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    //! Every input FP32 or FP16; the output takes input 0's type.
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || nbInputs != Derived::kNB_INPUTS)
        {
            return -1;
        }
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (!isFloatOrHalf(inputTypes[i]))
            {
                Derived::kLOG.error(Derived::kTYPES_ERROR);
                return -1;
            }
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    //! Linear everywhere; each input FP32 or FP16 on its own, the output of input 0's type.
    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        if (inOut == nullptr || nbInputs != Derived::kNB_INPUTS || nbOutputs != 1 || pos < 0 || pos > nbInputs)
        {
            return false;
        }
        PluginTensorDesc const& d = inOut[pos].desc;
        if (d.format != nvinfer1::TensorFormat::kLINEAR)
        {
            return false;
        }
        if (pos < nbInputs)
        {
            return isFloatOrHalf(d.type);
        }
        return d.type == inOut[0].desc.type;
    }

    size_t getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
        DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept override
    {
        return 0;
    }
    char const* getMetadataString() noexcept override
    {
        return mMetadata.c_str();
    }

    // IPluginV3OneRuntime (onShapeChange and enqueue are the plugin's own)
    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override
    {
        return clone();
    }

    //! One versioned, checksummed blob; createPlugin accepts it in any phase.
    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        try
        {
            mSerialBlob = serializeConfig(mConfig);
            mDataToSerialize.clear();
            mDataToSerialize.emplace_back(Derived::kBLOB_FIELD, mSerialBlob.data(), PluginFieldType::kUNKNOWN,
                static_cast<int32_t>(mSerialBlob.size()));
            mFCToSerialize.nbFields = static_cast<int32_t>(mDataToSerialize.size());
            mFCToSerialize.fields = mDataToSerialize.data();
            return &mFCToSerialize;
        }
        catch (std::exception const& e)
        {
            Derived::kLOG.exception("getFieldsToSerialize", e);
        }
        catch (...)
        {
            Derived::kLOG.error("getFieldsToSerialize: unknown exception");
        }
        return nullptr;
    }

    Config const& config() const noexcept
    {
        return mConfig;
    }

protected:
    //! f() (an int32_t status) with any exception logged as "where: failed ..." and turned into -1.
    template <typename F>
    static int32_t guarded(char const* where, F&& f) noexcept
    {
        try
        {
            return f();
        }
        catch (...)
        {
            Derived::kLOG.failed(where);
        }
        return -1;
    }

    //! The pooled output's shape: [rows, channels * sum(n^2)].
    void setPooledShape(DimsExprs& out, IDimensionExpr const* rows, IDimensionExpr const& channels,
        IExprBuilder& exprBuilder) const
    {
        IDimensionExpr const* binsPerChannel = exprBuilder.constant(mConfig.binsPerChannel());
        out.nbDims = 2;
        out.d[0] = rows;
        out.d[1] = exprBuilder.operation(nvinfer1::DimensionOperation::kPROD, channels, *binsPerChannel);
    }

    //! A kernel launcher's status, logged when it is not kSPP_OK.
    static int32_t launchStatus(int32_t status, cudaError_t cudaErr) noexcept
    {
        if (status != kSPP_OK)
        {
            try
            {
                Derived::kLOG.error("enqueue: kernel launcher failed with status " + std::to_string(status)
                    + (status == kSPP_CUDA_ERROR ? std::string(" (") + cudaGetErrorString(cudaErr) + ")" : ""));
            }
            catch (...)
            {
                Derived::kLOG.error("enqueue: kernel launcher failed");
            }
        }
        return status;
    }

    Config mConfig;

private:
    std::string mNamespace;
    std::string mMetadata;
    std::vector<uint8_t> mSerialBlob;
    std::vector<PluginField> mDataToSerialize;
    PluginFieldCollection mFCToSerialize{};
};

template <typename Plugin>
class PluginCreatorV3 : public nvinfer1::IPluginCreatorV3One
{
public:
    PluginCreatorV3()
        : mPluginAttributes(Plugin::creatorFields())
    {
        mFC.nbFields = static_cast<int32_t>(mPluginAttributes.size());
        mFC.fields = mPluginAttributes.data();
    }
    ~PluginCreatorV3() override = default;

    IPluginV3* createPlugin(
        AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept override
    {
        try
        {
            std::vector<Field> fields;
            if (fc != nullptr && fc->nbFields > 0)
            {
                if (fc->fields == nullptr)
                {
                    Plugin::kLOG.error("createPlugin: null field array");
                    return nullptr;
                }
                for (int32_t i = 0; i < fc->nbFields; ++i)
                {
                    PluginField const& f = fc->fields[i];
                    fields.push_back(Field{f.name, f.data, static_cast<FieldType>(f.type), f.length});
                }
            }
            typename Plugin::ConfigType config;
            std::string err;
            std::vector<std::string> warnings;
            if (!parseConfig(fields.data(), static_cast<int32_t>(fields.size()), config, err, &warnings))
            {
                Plugin::kLOG.error(std::string("createPlugin(") + (name ? name : "") + "): " + err);
                return nullptr;
            }
            for (auto const& w : warnings)
            {
                Plugin::kLOG.message(nvinfer1::ILogger::Severity::kVERBOSE, w);
            }
            return new Plugin(config, mNamespace);
        }
        catch (std::exception const& e)
        {
            Plugin::kLOG.exception("createPlugin", e);
        }
        catch (...)
        {
            Plugin::kLOG.error("createPlugin: unknown exception");
        }
        return nullptr;
    }

    PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mFC;
    }
    AsciiChar const* getPluginName() const noexcept override
    {
        return Plugin::kNAME;
    }
    AsciiChar const* getPluginVersion() const noexcept override
    {
        return Plugin::kVERSION;
    }
    AsciiChar const* getPluginNamespace() const noexcept override
    {
        return mNamespace.c_str();
    }

    void setPluginNamespace(char const* ns) noexcept
    {
        mNamespace = ns ? ns : "";
    }

private:
    std::vector<PluginField> mPluginAttributes;
    PluginFieldCollection mFC{};
    std::string mNamespace{Plugin::kNAMESPACE};
};

} // namespace plugin
} // namespace spp

#endif // SPP_PLUGIN_V3_BASE_H
