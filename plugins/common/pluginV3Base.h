/*
 * The IPluginV3 boilerplate both plugins of libspp_plugin.so share, written once:
 *
 *   PluginV3Base<Derived, Config>  capabilities, clone / attachToContext, name / version / namespace,
 *                                  types and formats, one output [rows, C * sum(n^2)], no workspace
 *                                  (unless the plugin overrides getWorkspaceSize and hides launchWithWorkspace),
 *                                  metadata, getFieldsToSerialize (the config as one checksummed blob
 *                                  field), and the frame of configurePlugin / getOutputShapes /
 *                                  onShapeChange / enqueue (counts, pointers, types, output shape).
 *   PluginCreatorV3<Plugin>        the creator: field names, and createPlugin (PluginField ->
 *                                  spp::Field -> the plugin's TensorRT-free parser).
 *   PluginIdentity<Plugin, I>      the name / version / namespace getters of both.
 *
 * A plugin class derives from PluginV3Base<itself, its config>, inherits its constructor (config,
 * namespace) and supplies:
 *   kTRAITS                     static PluginTraits: name, version, namespace, fields, blob field, inputs
 *   kLOG                        static PluginLogger (its message prefix)
 *   checkInputs(InputDims)      const: its rank / extent checks (errors logged), for all four entry points
 *   launch(inputDesc, inputs, output, stream, cudaErr)   const: the kernel launch, an SppStatus (or, for a
 *                               plugin with a workspace, launchWithWorkspace(..., output, workspace, stream, cudaErr))
 * The config type's free functions (namespace spp: sppConfig.h, windowConfig.h) parseConfig(fields,
 * n, config, err, warnings), serializeConfig(config) and describeConfig(config) are found by argument
 * type. Our classes live in spp::plugin, not in TensorRT's nvinfer1 namespace.
 */
#ifndef SPP_PLUGIN_V3_BASE_H
#define SPP_PLUGIN_V3_BASE_H

#include "NvInferRuntime.h"
#include "NvInferVersion.h"
#include "sppTypes.h" // SppStatus
#include "pluginFields.h"
#include "pluginLogging.h"

#include <cuda_runtime_api.h> // cudaStream_t, cudaGetErrorString

#include <cstdint>
#include <string>
#include <utility>
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

//! What a plugin class states about itself for PluginV3Base and PluginCreatorV3 (its kTRAITS).
struct PluginTraits
{
    char const* name;
    char const* version;
    char const* pluginNamespace; //!< the creator's default namespace
    FieldSpecs fields;           //!< the creator's field names (the config header's table)
    char const* blobField;       //!< the field getFieldsToSerialize writes the config blob to
    int32_t nbInputs;            //!< every input FP32/FP16 (fp32OnlyInputs) linear; one output, of input 0's type
    int32_t rowsInput;           //!< the input whose dimension 0 is the output's rows
    char const* inputsText;      //!< the inputs in messages: "expects <inputsText> and one output"
    char const* typesError;      //!< getOutputDataTypes' message for an input of another type
    //! Bit i set: input i is FP32 only (the window boxes: fp16 spacing is 0.5-2 px above 512, which
    //! moves projected cells, so TensorRT must not pick kHALF for them in a weakly typed fp16 build).
    uint32_t fp32OnlyInputs = 0;
};

//! Whether input ``i`` of a plugin with these traits may have type ``t``.
inline bool inputTypeOk(PluginTraits const& traits, int32_t i, DataType t) noexcept
{
    bool const fp32Only = i >= 0 && i < 32 && ((traits.fp32OnlyInputs >> i) & 1U) != 0;
    return fp32Only ? t == DataType::kFLOAT : isFloatOrHalf(t);
}

//! The name / version / namespace getters that IPluginV3OneCore and IPluginCreatorV3One both declare.
template <typename Plugin, typename Interface>
class PluginIdentity : public Interface
{
public:
    explicit PluginIdentity(std::string ns)
        : mNamespace(std::move(ns))
    {
    }

    AsciiChar const* getPluginName() const noexcept override
    {
        return Plugin::kTRAITS.name;
    }
    AsciiChar const* getPluginVersion() const noexcept override
    {
        return Plugin::kTRAITS.version;
    }
    AsciiChar const* getPluginNamespace() const noexcept override
    {
        return mNamespace.c_str();
    }

protected:
    std::string mNamespace;
};

//! The plugin's tensor dimensions for its own checks: known extents, -1 where a build-time
//! dimension is not known yet (at runtime every extent is known).
struct InputDims
{
    Dims const* dims; //!< one per input
    bool build;       //!< configurePlugin / getOutputShapes (true), onShapeChange / enqueue (false)
    char const* where;
};

template <typename Derived, typename Config>
class PluginV3Base : public nvinfer1::IPluginV3,
                     public PluginIdentity<Derived, nvinfer1::IPluginV3OneCore>,
                     public nvinfer1::IPluginV3OneBuild,
                     public nvinfer1::IPluginV3OneRuntime
{
    static constexpr int32_t kMAX_INPUTS = 2;

public:
    using ConfigType = Config;

    PluginV3Base(Config const& config, std::string const& ns)
        : PluginIdentity<Derived, nvinfer1::IPluginV3OneCore>(ns)
        , mConfig(config)
        , mMetadata(describeConfig(config))
    {
        static_assert(Derived::kTRAITS.nbInputs >= 1 && Derived::kTRAITS.nbInputs <= kMAX_INPUTS
                && Derived::kTRAITS.rowsInput < Derived::kTRAITS.nbInputs,
            "1 or 2 inputs; the rows come from one of them");
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
        return Derived::kLOG.guard("clone", static_cast<IPluginV3*>(nullptr),
            [&]() -> IPluginV3* { return new Derived(mConfig, this->mNamespace); });
    }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    //! Every input FP32 or FP16 (FP32 only where the traits say so); the output takes input 0's type.
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || nbInputs != Derived::kTRAITS.nbInputs)
        {
            return -1;
        }
        for (int32_t i = 0; i < nbInputs; ++i)
        {
            if (!inputTypeOk(Derived::kTRAITS, i, inputTypes[i]))
            {
                Derived::kLOG.error(Derived::kTRAITS.typesError);
                return -1;
            }
        }
        outputTypes[0] = inputTypes[0];
        return 0;
    }

    //! Linear everywhere; each input FP32 or FP16 on its own (FP32 only where the traits say so), the
    //! output of input 0's type.
    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override
    {
        if (inOut == nullptr || nbInputs != Derived::kTRAITS.nbInputs || nbOutputs != 1 || pos < 0 || pos > nbInputs)
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
            return inputTypeOk(Derived::kTRAITS, pos, d.type);
        }
        return d.type == inOut[0].desc.type;
    }

    //! The counts, then the plugin's own input checks (build time: unknown extents are -1).
    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override
    {
        return guarded("configurePlugin", [&] {
            if (!counted(in, nbInputs, out, nbOutputs, "configurePlugin"))
            {
                return -1;
            }
            Dims dims[kMAX_INPUTS];
            for (int32_t i = 0; i < nbInputs; ++i)
            {
                dims[i] = in[i].desc.dims;
            }
            return derived().checkInputs(InputDims{dims, true, "configurePlugin"}) ? 0 : -1;
        });
    }

    //! The plugin's input checks on the constant extents, then [rows, channels * sum(n^2)]: rows from
    //! dimension 0 of input kTRAITS.rowsInput, channels from dimension 1 of input 0.
    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
        int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override
    {
        return guarded("getOutputShapes", [&] {
            if (!counted(inputs, nbInputs, outputs, nbOutputs, "getOutputShapes"))
            {
                return -1;
            }
            Dims dims[kMAX_INPUTS];
            for (int32_t i = 0; i < nbInputs; ++i)
            {
                dims[i].nbDims = inputs[i].nbDims;
                for (int32_t k = 0; k < inputs[i].nbDims; ++k)
                {
                    IDimensionExpr const* e = inputs[i].d[k];
                    dims[i].d[k] = e != nullptr && e->isConstant() ? e->getConstantValue() : -1;
                }
            }
            if (!derived().checkInputs(InputDims{dims, true, "getOutputShapes"}))
            {
                return -1;
            }
            IDimensionExpr const* binsPerChannel = exprBuilder.constant(mConfig.binsPerChannel());
            outputs[0].nbDims = 2;
            outputs[0].d[0] = inputs[Derived::kTRAITS.rowsInput].d[0];
            outputs[0].d[1]
                = exprBuilder.operation(nvinfer1::DimensionOperation::kPROD, *inputs[0].d[1], *binsPerChannel);
            return 0;
        });
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

    // IPluginV3OneRuntime
    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override
    {
        return clone();
    }

    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept override
    {
        return guarded("onShapeChange", [&] {
            if (!counted(in, nbInputs, out, nbOutputs, "onShapeChange"))
            {
                return -1;
            }
            Dims dims[kMAX_INPUTS];
            for (int32_t i = 0; i < nbInputs; ++i)
            {
                dims[i] = in[i].dims;
            }
            return derived().checkInputs(InputDims{dims, false, "onShapeChange"}) ? 0 : -1;
        });
    }

    //! Pointers, the plugin's input checks, types and formats, the output shape; then the plugin's
    //! launch(inputDesc, inputs, output, stream, cudaErr), its status logged when not kSPP_OK.
    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc, void const* const* inputs,
        void* const* outputs, void* workspace, cudaStream_t stream) noexcept override
    {
        return guarded("enqueue", [&] {
            if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
            {
                Derived::kLOG.error("enqueue: null descriptors or buffers");
                return -1;
            }
            Dims dims[kMAX_INPUTS];
            bool typesOk = outputDesc[0].type == inputDesc[0].type
                && outputDesc[0].format == nvinfer1::TensorFormat::kLINEAR;
            for (int32_t i = 0; i < Derived::kTRAITS.nbInputs; ++i)
            {
                dims[i] = inputDesc[i].dims;
                typesOk = typesOk && inputTypeOk(Derived::kTRAITS, i, inputDesc[i].type)
                    && inputDesc[i].format == nvinfer1::TensorFormat::kLINEAR;
            }
            if (!derived().checkInputs(InputDims{dims, false, "enqueue"}))
            {
                return -1;
            }
            if (!typesOk)
            {
                Derived::kLOG.error(std::string("enqueue: unsupported type/format (linear; ")
                    + Derived::kTRAITS.typesError + "; output of input 0's type)");
                return -1;
            }
            int64_t const rows = dims[Derived::kTRAITS.rowsInput].d[0];
            int64_t const features = dims[0].d[1] * mConfig.binsPerChannel();
            Dims const& od = outputDesc[0].dims;
            if (od.nbDims != 2 || od.d[0] != rows || od.d[1] != features)
            {
                Derived::kLOG.error("enqueue: output shape is not [" + std::to_string(rows) + ", "
                    + std::to_string(features) + "] (rows, C * sum(n^2))");
                return -1;
            }
            cudaError_t cudaErr = cudaSuccess;
            // Two statements: launch fills cudaErr, and argument evaluation order is unspecified.
            int32_t const status = derived().launchWithWorkspace(inputDesc, inputs, outputs[0], workspace, stream, cudaErr);
            return launchStatus(status, cudaErr);
        });
    }

    //! The launch enqueue makes: a plugin without workspace supplies launch(), which this calls; one
    //! with a workspace hides this with its own (and overrides getWorkspaceSize).
    int32_t launchWithWorkspace(PluginTensorDesc const* inputDesc, void const* const* inputs, void* output,
        void* /*workspace*/, cudaStream_t stream, cudaError_t& cudaErr) const
    {
        return derived().launch(inputDesc, inputs, output, stream, cudaErr);
    }

    //! One versioned, checksummed blob; createPlugin accepts it in any phase.
    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        return Derived::kLOG.guard("getFieldsToSerialize", static_cast<PluginFieldCollection const*>(nullptr),
            [&]() -> PluginFieldCollection const* {
                mSerialBlob = serializeConfig(mConfig);
                mDataToSerialize.clear();
                mDataToSerialize.emplace_back(Derived::kTRAITS.blobField, mSerialBlob.data(), PluginFieldType::kUNKNOWN,
                    static_cast<int32_t>(mSerialBlob.size()));
                mFCToSerialize.nbFields = static_cast<int32_t>(mDataToSerialize.size());
                mFCToSerialize.fields = mDataToSerialize.data();
                return &mFCToSerialize;
            });
    }

    Config const& config() const noexcept
    {
        return mConfig;
    }

protected:
    Config mConfig;

private:
    Derived const& derived() const noexcept
    {
        return static_cast<Derived const&>(*this);
    }

    //! f() (an int32_t status) with any exception logged and turned into -1.
    template <typename F>
    static int32_t guarded(char const* where, F&& f) noexcept
    {
        return Derived::kLOG.guard(where, int32_t{-1}, f);
    }

    //! Non-null arrays, kTRAITS.nbInputs inputs and one output.
    static bool counted(void const* in, int32_t nbInputs, void const* out, int32_t nbOutputs, char const* where)
    {
        if (in == nullptr || out == nullptr || nbInputs != Derived::kTRAITS.nbInputs || nbOutputs != 1)
        {
            Derived::kLOG.error(std::string(where) + ": expects " + Derived::kTRAITS.inputsText + " and one output");
            return false;
        }
        return true;
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

    std::string mMetadata;
    std::vector<uint8_t> mSerialBlob;
    std::vector<PluginField> mDataToSerialize;
    PluginFieldCollection mFCToSerialize{};
};

template <typename Plugin>
class PluginCreatorV3 : public PluginIdentity<Plugin, nvinfer1::IPluginCreatorV3One>
{
public:
    PluginCreatorV3()
        : PluginIdentity<Plugin, nvinfer1::IPluginCreatorV3One>(Plugin::kTRAITS.pluginNamespace)
    {
        FieldSpecs const& specs = Plugin::kTRAITS.fields;
        for (int32_t i = 0; i < specs.size; ++i)
        {
            FieldSpec const& f = specs.data[i];
            mPluginAttributes.emplace_back(f.name, nullptr, static_cast<PluginFieldType>(f.type), f.length);
        }
        mFC.nbFields = static_cast<int32_t>(mPluginAttributes.size());
        mFC.fields = mPluginAttributes.data();
    }
    ~PluginCreatorV3() override = default;

    IPluginV3* createPlugin(
        AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept override
    {
        return Plugin::kLOG.guard("createPlugin", static_cast<IPluginV3*>(nullptr), [&]() -> IPluginV3* {
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
            return new Plugin(config, this->mNamespace);
        });
    }

    PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mFC;
    }

    void setPluginNamespace(char const* ns) noexcept
    {
        this->mNamespace = ns ? ns : "";
    }

private:
    std::vector<PluginField> mPluginAttributes;
    PluginFieldCollection mFC{};
};

} // namespace plugin
} // namespace spp

#endif // SPP_PLUGIN_V3_BASE_H
