// TensorRT plugin for edge.plugins::MultiLevelRoIAlign (IPluginV3, TensorRT 10 and 11).
//
// The ONNX parser hands an unknown node to the plugin registry by op type, with the
// node's plugin_version / plugin_namespace attributes and every other attribute as a
// plugin field (ints as INT32 or INT64, floats as FLOAT32, strings as CHAR), so the
// field names below are the ONNX attribute names (plugins/roi_align/onnx_export.py).
// Inputs: rois [R, 4] float32, batch_indices [R] int64, then 1..5 pyramid levels
// [N, C, H_l, W_l] (float32 or float16, all the same). Output: [R, C, oh, ow].
// The levels and the output share one format: kLINEAR, or channel-last (kHWC for float32,
// kHWC8 or kHWC16 for float16), where the FPN's convolutions leave the maps channel-last and
// the builder would otherwise reformat the whole pyramid before the plugin. For each format
// the plugin offers the builder tactics, which it times on the GPU it builds for: a thread
// per output element, and a thread per several channels of a bin (bin channels on NCHW maps,
// 16-byte channel vectors on channel-last ones), and on NCHW maps the patch layout (a block
// per box and 4 channels, from a copy in shared memory; roi_align_kernel.h); bin channels and
// the patch layout under fixed sampling ratios only.
// Build: plugins/roi_align/tensorrt/build.sh; load with the builder's or runtime's
// get_plugin_registry().load_library, which looks up getCreators and setLoggerFinder.
#include "NvInfer.h"
#include "roi_align_kernel.h"

#include <cuda_fp16.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

using namespace nvinfer1;

namespace edge
{
namespace
{

char const* const kName = "MultiLevelRoIAlign";
char const* const kVersion = "1";

// What TensorRT hands a plugin library it loads: the way to the logger of whoever calls the
// plugin, so that a refusal says why in TensorRT's log rather than as a bare failure
std::atomic<ILoggerFinder*> gLoggerFinder{nullptr};

void logError(std::string const& what) noexcept
{
    try
    {
        ILoggerFinder* const finder = gLoggerFinder.load();
        ILogger* const logger = finder != nullptr ? finder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(ILogger::Severity::kERROR, (std::string(kName) + ": " + what).c_str());
        }
    }
    catch (...)
    {
    }
}

// A digest of the kernels' sources, which build.sh passes: a persisted timing cache then
// holds no timings of other kernels under this plugin's ID
#if !defined(EDGE_KERNELS_DIGEST)
#define EDGE_KERNELS_DIGEST "unversioned"
#endif

//! A scalar field as T, whichever width the ONNX parser chose (INT32/INT64, FLOAT32/FLOAT64).
template <typename T>
bool readScalar(PluginField const& f, T& out)
{
    if (f.length < 1 || f.data == nullptr)
    {
        return false;
    }
    switch (f.type)
    {
    case PluginFieldType::kINT32: out = static_cast<T>(*static_cast<int32_t const*>(f.data)); return true;
    case PluginFieldType::kINT64: out = static_cast<T>(*static_cast<int64_t const*>(f.data)); return true;
    case PluginFieldType::kFLOAT32: out = static_cast<T>(*static_cast<float const*>(f.data)); return true;
    case PluginFieldType::kFLOAT64: out = static_cast<T>(*static_cast<double const*>(f.data)); return true;
    default: return false;
    }
}

class MultiLevelRoIAlign : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime
{
public:
    MultiLevelRoIAlign(roialign::Params const& params, std::string const& ns)
        : mParams(params)
        , mNamespace(ns)
    {
        // the fields TensorRT serializes into the engine and hands back to the creator
        mScales.assign(mParams.spatialScales, mParams.spatialScales + mParams.numLevels);
        mMode = mParams.isMax ? "max" : "avg";
        mFields = {
            PluginField("output_height", &mParams.outputHeight, PluginFieldType::kINT32, 1),
            PluginField("output_width", &mParams.outputWidth, PluginFieldType::kINT32, 1),
            PluginField("spatial_scales", mScales.data(), PluginFieldType::kFLOAT32,
                static_cast<int32_t>(mScales.size())),
            PluginField("sampling_ratio", &mParams.samplingRatio, PluginFieldType::kINT32, 1),
            PluginField("aligned", &mParams.aligned, PluginFieldType::kINT32, 1),
            PluginField("mode", mMode.c_str(), PluginFieldType::kCHAR, static_cast<int32_t>(mMode.size())),
            PluginField("min_level", &mParams.minLevel, PluginFieldType::kINT32, 1),
            PluginField("canonical_size", &mParams.canonicalSize, PluginFieldType::kFLOAT32, 1),
            PluginField("canonical_level", &mParams.canonicalLevel, PluginFieldType::kINT32, 1),
        };
        mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
        mFieldCollection.fields = mFields.data();
    }

    // IPluginV3
    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override
    {
        switch (type)
        {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
        }
        return nullptr;
    }

    IPluginV3* clone() noexcept override
    {
        try
        {
            auto* copy = new MultiLevelRoIAlign(mParams, mNamespace);
            copy->mTactic = mTactic; // the builder's choice, set on the plugin the runtime clones
            copy->mVector = mVector;
            copy->mHalf = mHalf;
            copy->mChannels = mChannels;
            return copy;
        }
        catch (...)
        {
            return nullptr;
        }
    }

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override
    {
        return kName;
    }
    char const* getPluginVersion() const noexcept override
    {
        return kVersion;
    }
    char const* getPluginNamespace() const noexcept override
    {
        return mNamespace.c_str();
    }

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override
    {
        return 1;
    }

    int32_t getOutputDataTypes(
        DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept override
    {
        if (nbOutputs != 1 || nbInputs != 2 + mParams.numLevels)
        {
            return -1;
        }
        outputTypes[0] = inputTypes[2]; // pooled features keep the pyramid's type
        return 0;
    }

    int32_t getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
        int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, IExprBuilder& exprBuilder) noexcept override
    {
        if (nbOutputs != 1 || nbInputs != 2 + mParams.numLevels || inputs[2].nbDims != 4)
        {
            return -1;
        }
        outputs[0].nbDims = 4;
        outputs[0].d[0] = inputs[0].d[0];
        outputs[0].d[1] = inputs[2].d[1];
        outputs[0].d[2] = exprBuilder.constant(mParams.outputHeight);
        outputs[0].d[3] = exprBuilder.constant(mParams.outputWidth);
        return 0;
    }

    bool supportsFormatCombination(
        int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t /*nbOutputs*/) noexcept override
    {
        PluginTensorDesc const& d = inOut[pos].desc;
        if (pos == 0)
        {
            return d.format == TensorFormat::kLINEAR && d.type == DataType::kFLOAT;
        }
        if (pos == 1)
        {
            return d.format == TensorFormat::kLINEAR && d.type == DataType::kINT64;
        }
        if (pos == 2)
        {
            return channelVector(d.type, d.format) >= 0;
        }
        // every other level and the output: the first level's type and format
        (void) nbInputs;
        return d.type == inOut[2].desc.type && d.format == inOut[2].desc.format;
    }

    int32_t configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
        DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override
    {
        if (nbInputs != 2 + mParams.numLevels || nbOutputs != 1)
        {
            return -1;
        }
        // the format combination the builder times next (getValidTactics)
        mVector = channelVector(in[2].desc.type, in[2].desc.format);
        mHalf = in[2].desc.type == DataType::kHALF;
        mChannels = static_cast<int32_t>(in[2].desc.dims.d[1]); // -1 where not known yet
        return 0;
    }

    //! Tactic 1, a thread per output element; tactic 2, a thread per several channels of a bin
    //! (NCHW maps: bin channels; channel-last maps: channel vectors, where their stride is
    //! whole 16-byte vectors); tactic 3, NCHW maps only, the patch layout. Bin channels and the
    //! patch layout take fixed sampling ratios only (groupedLayoutsApply). Tactic 0, TensorRT's
    //! default where it times none: the kernels' own choice (Mapping::kAuto).
    int32_t getNbTactics() noexcept override
    {
        if (mVector <= 0)
        {
            return roialign::groupedLayoutsApply(mParams) ? 3 : 1;
        }
        if (mChannels < 0)
        {
            return 2;
        }
        int32_t const perVector = mHalf ? 8 : 4;
        return roialign::channelStride(mChannels, mVector) % perVector == 0 ? 2 : 1;
    }

    int32_t getValidTactics(int32_t* tactics, int32_t nbTactics) noexcept override
    {
        if (tactics == nullptr || nbTactics != getNbTactics())
        {
            return -1;
        }
        for (int32_t t = 0; t < nbTactics; ++t)
        {
            tactics[t] = t + 1;
        }
        return 0;
    }

    char const* getTimingCacheID() noexcept override
    {
        // the kernels and the attributes that shape their work; TensorRT adds shapes and formats
        try
        {
            mTimingCacheId = std::string(kName) + "/" + kVersion + "/" + EDGE_KERNELS_DIGEST;
            for (int32_t v : {mParams.outputHeight, mParams.outputWidth, mParams.samplingRatio, mParams.aligned,
                     mParams.isMax, mParams.minLevel, mParams.numLevels, mParams.canonicalLevel})
            {
                mTimingCacheId += "/" + std::to_string(v);
            }
            mTimingCacheId += "/" + std::to_string(mParams.canonicalSize);
            for (int32_t l = 0; l < mParams.numLevels; ++l)
            {
                mTimingCacheId += "/" + std::to_string(mParams.spatialScales[l]);
            }
            return mTimingCacheId.c_str();
        }
        catch (...)
        {
            return nullptr; // no timing caching for the plugin, rather than no build
        }
    }

    // IPluginV3OneRuntime
    int32_t setTactic(int32_t tactic) noexcept override
    {
        if (tactic < 0 || tactic > 3)
        {
            return -1;
        }
        mTactic = tactic;
        return 0;
    }

    int32_t onShapeChange(
        PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept override
    {
        if (nbInputs != 2 + mParams.numLevels || nbOutputs != 1)
        {
            return -1;
        }
        for (int32_t l = 0; l < mParams.numLevels; ++l)
        {
            if (in[2 + l].dims.nbDims != 4 || in[2 + l].dims.d[1] != in[2].dims.d[1])
            {
                return -1; // every level must have the first level's channels
            }
        }
        return 0;
    }

    int32_t enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
        void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept override
    {
        auto const numRois = static_cast<int32_t>(inputDesc[0].dims.d[0]);
        auto const channels = static_cast<int32_t>(inputDesc[2].dims.d[1]);
        auto const* rois = static_cast<float const*>(inputs[0]);
        auto const* batchIdx = static_cast<int64_t const*>(inputs[1]);
        bool const channelsLast = channelVector(inputDesc[2].type, inputDesc[2].format) > 0;
        roialign::Mapping mapping = roialign::Mapping::kAuto; // tactic 0; and channel vectors where they apply
        if (mTactic == 1)
        {
            mapping = roialign::Mapping::kThreadPerBin; // a thread per output element, either layout
        }
        else if (mTactic == 2 && !channelsLast && roialign::groupedLayoutsApply(mParams))
        {
            mapping = roialign::Mapping::kBinChannels;
        }
        else if (mTactic == 3 && !channelsLast && roialign::groupedLayoutsApply(mParams))
        {
            mapping = roialign::Mapping::kPatch;
        }
        cudaError_t status;
        if (inputDesc[2].type == DataType::kHALF)
        {
            status = roialign::launch(levels<__half>(inputDesc, inputs), rois, batchIdx, numRois, channels, mParams,
                static_cast<__half*>(outputs[0]), stream, mapping);
        }
        else
        {
            status = roialign::launch(levels<float>(inputDesc, inputs), rois, batchIdx, numRois, channels, mParams,
                static_cast<float*>(outputs[0]), stream, mapping);
        }
        return status == cudaSuccess ? 0 : -1;
    }

    IPluginV3* attachToContext(IPluginResourceContext* /*context*/) noexcept override
    {
        return clone();
    }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override
    {
        return &mFieldCollection;
    }

private:
    //! Channels a pixel's vector holds in a map of this type and format (1 for kHWC, 8 for
    //! kHWC8, 16 for kHWC16), 0 for kLINEAR, -1 for what the kernels do not read.
    static int32_t channelVector(DataType type, TensorFormat format) noexcept
    {
        if (format == TensorFormat::kLINEAR)
        {
            return (type == DataType::kFLOAT || type == DataType::kHALF) ? 0 : -1;
        }
        if (type == DataType::kFLOAT)
        {
            return format == TensorFormat::kHWC ? 1 : -1;
        }
        if (type == DataType::kHALF)
        {
            return format == TensorFormat::kHWC8 ? 8 : (format == TensorFormat::kHWC16 ? 16 : -1);
        }
        return -1;
    }

    template <typename T>
    roialign::Levels<T> levels(PluginTensorDesc const* desc, void const* const* inputs) const
    {
        roialign::Levels<T> out{};
        int32_t const vector = channelVector(desc[2].type, desc[2].format);
        auto const channels = static_cast<int32_t>(desc[2].dims.d[1]);
        out.channelStride = vector > 0 ? roialign::channelStride(channels, vector) : 0;
        for (int32_t l = 0; l < mParams.numLevels; ++l)
        {
            out.data[l] = static_cast<T const*>(inputs[2 + l]);
            out.height[l] = static_cast<int32_t>(desc[2 + l].dims.d[2]);
            out.width[l] = static_cast<int32_t>(desc[2 + l].dims.d[3]);
        }
        return out;
    }

    roialign::Params mParams;
    std::string mNamespace;
    std::vector<float> mScales;
    std::string mMode;
    std::vector<PluginField> mFields;
    PluginFieldCollection mFieldCollection{};
    std::string mTimingCacheId;
    int32_t mTactic{0};
    int32_t mVector{0}; // channelVector() of the format combination configured last
    bool mHalf{false};
    int32_t mChannels{-1};
};

class MultiLevelRoIAlignCreator : public IPluginCreatorV3One
{
public:
    MultiLevelRoIAlignCreator()
    {
        mFields = {
            PluginField("output_height", nullptr, PluginFieldType::kINT32, 1),
            PluginField("output_width", nullptr, PluginFieldType::kINT32, 1),
            PluginField("spatial_scales", nullptr, PluginFieldType::kFLOAT32, roialign::kMaxLevels),
            PluginField("sampling_ratio", nullptr, PluginFieldType::kINT32, 1),
            PluginField("aligned", nullptr, PluginFieldType::kINT32, 1),
            PluginField("mode", nullptr, PluginFieldType::kCHAR, 3),
            PluginField("min_level", nullptr, PluginFieldType::kINT32, 1),
            PluginField("canonical_size", nullptr, PluginFieldType::kFLOAT32, 1),
            PluginField("canonical_level", nullptr, PluginFieldType::kINT32, 1),
        };
        mCollection.nbFields = static_cast<int32_t>(mFields.size());
        mCollection.fields = mFields.data();
    }

    char const* getPluginName() const noexcept override
    {
        return kName;
    }
    char const* getPluginVersion() const noexcept override
    {
        return kVersion;
    }
    char const* getPluginNamespace() const noexcept override
    {
        return mNamespace.c_str();
    }
    PluginFieldCollection const* getFieldNames() noexcept override
    {
        return &mCollection;
    }

    IPluginV3* createPlugin(char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept override
    {
        try
        {
            roialign::Params p{};
            p.outputHeight = p.outputWidth = 7;
            p.minLevel = 2;
            p.canonicalLevel = 4;
            p.canonicalSize = 224.0F;
            p.aligned = 1;
            bool haveScales = false;
            for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
            {
                PluginField const& f = fc->fields[i];
                std::string const name = f.name != nullptr ? f.name : "";
                if (name == "output_height")
                    readScalar(f, p.outputHeight);
                else if (name == "output_width")
                    readScalar(f, p.outputWidth);
                else if (name == "sampling_ratio")
                    readScalar(f, p.samplingRatio);
                else if (name == "aligned")
                    readScalar(f, p.aligned);
                else if (name == "min_level")
                    readScalar(f, p.minLevel);
                else if (name == "canonical_level")
                    readScalar(f, p.canonicalLevel);
                else if (name == "canonical_size")
                    readScalar(f, p.canonicalSize);
                else if (name == "mode" && f.data != nullptr)
                    p.isMax = std::string(static_cast<char const*>(f.data), static_cast<size_t>(f.length)).rfind("max", 0) == 0;
                else if (name == "spatial_scales" && f.type == PluginFieldType::kFLOAT32)
                {
                    if (f.length < 1 || f.length > roialign::kMaxLevels)
                    {
                        logError("spatial_scales has " + std::to_string(f.length)
                            + " levels; expected 1 to " + std::to_string(roialign::kMaxLevels));
                        return nullptr;
                    }
                    p.numLevels = f.length;
                    std::memcpy(p.spatialScales, f.data, sizeof(float) * static_cast<size_t>(f.length));
                    haveScales = true;
                }
            }
            if (!haveScales)
            {
                logError("no spatial_scales field (float32, one per pyramid level)");
                return nullptr;
            }
            if (p.outputHeight < 1 || p.outputWidth < 1 || p.samplingRatio < 0)
            {
                logError("output " + std::to_string(p.outputHeight) + "x" + std::to_string(p.outputWidth)
                    + ", sampling_ratio " + std::to_string(p.samplingRatio)
                    + "; expected an output of 1x1 or more and a sampling_ratio of 0 (adaptive) or more");
                return nullptr;
            }
            return new MultiLevelRoIAlign(p, mNamespace);
        }
        catch (...)
        {
            return nullptr;
        }
    }

private:
    std::string mNamespace;
    std::vector<PluginField> mFields;
    PluginFieldCollection mCollection{};
};

} // namespace
} // namespace edge

// What IPluginRegistry::loadLibrary looks for in a plugin library.
extern "C" void setLoggerFinder(ILoggerFinder* finder)
{
    edge::gLoggerFinder.store(finder);
}

extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static edge::MultiLevelRoIAlignCreator creator;
    static IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}
