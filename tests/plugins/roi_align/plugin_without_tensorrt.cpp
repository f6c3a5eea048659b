// The plugin's TensorRT-facing logic run without TensorRT's library: its creator, the formats
// it offers the builder, the types and fields it reports, and what enqueue hands the kernel
// launcher for each format. Compiled with g++ against TensorRT's headers alone (no libnvinfer,
// no GPU): the plugin's source is included whole, and roialign::launch is replaced by a
// recorder. tests/plugins/roi_align/test_tensorrt_plugin.py builds and runs it; it prints one
// line per failed check and "checks: N failed: M".
#include "multilevel_roi_align_plugin.cpp"

#include <cstdio>
#include <memory>

namespace edge
{
namespace roialign
{

//! What the plugin's enqueue asked of the kernel launcher.
struct Launched
{
    int32_t calls;
    bool half;
    int32_t numRois;
    int32_t channels;
    int32_t channelStride;
    int32_t heights[kMaxLevels];
    int32_t widths[kMaxLevels];
    void const* data[kMaxLevels];
    void* out;
    Mapping mapping;
};

Launched gLaunched{};

template <typename T>
cudaError_t launch(Levels<T> const& levels, float const* /*rois*/, int64_t const* /*batchIdx*/, int32_t numRois,
    int32_t channels, Params const& p, T* out, cudaStream_t /*stream*/, Mapping mapping)
{
    gLaunched.mapping = mapping;
    gLaunched.calls += 1;
    gLaunched.half = sizeof(T) == 2;
    gLaunched.numRois = numRois;
    gLaunched.channels = channels;
    gLaunched.channelStride = levels.channelStride;
    for (int32_t l = 0; l < p.numLevels; ++l)
    {
        gLaunched.heights[l] = levels.height[l];
        gLaunched.widths[l] = levels.width[l];
        gLaunched.data[l] = levels.data[l];
    }
    gLaunched.out = out;
    return cudaSuccess;
}

} // namespace roialign
} // namespace edge

namespace
{

int gChecks = 0;
int gFailed = 0;

void check(bool ok, char const* what, int line)
{
    ++gChecks;
    if (!ok)
    {
        ++gFailed;
        std::printf("FAILED line %d: %s\n", line, what);
    }
}

#define CHECK(cond) check((cond), #cond, __LINE__)

nvinfer1::Dims dims(std::initializer_list<int64_t> d)
{
    nvinfer1::Dims out{};
    out.nbDims = static_cast<int32_t>(d.size());
    int32_t i = 0;
    for (int64_t v : d)
    {
        out.d[i++] = v;
    }
    return out;
}

nvinfer1::DynamicPluginTensorDesc tensor(nvinfer1::Dims d, nvinfer1::DataType type, nvinfer1::TensorFormat format)
{
    nvinfer1::DynamicPluginTensorDesc t{};
    t.desc.dims = d;
    t.desc.type = type;
    t.desc.format = format;
    t.min = t.max = t.opt = d;
    return t;
}

nvinfer1::IPluginCreatorV3One* creator()
{
    int32_t n = 0;
    auto* const* all = getCreators(n);
    return n == 1 ? static_cast<nvinfer1::IPluginCreatorV3One*>(all[0]) : nullptr;
}

//! A plugin made as the ONNX parser makes it: ints as INT64, floats as FLOAT32, strings as CHAR.
nvinfer1::IPluginV3* fromOnnxFields(int32_t levels, int64_t sampling = 2)
{
    int64_t const out = 7;
    int64_t const aligned = 0;
    int64_t const minLevel = 2;
    float const scales[4] = {0.25F, 0.125F, 0.0625F, 0.03125F};
    char const mode[] = "avg";
    std::vector<nvinfer1::PluginField> f = {
        {"output_height", &out, nvinfer1::PluginFieldType::kINT64, 1},
        {"output_width", &out, nvinfer1::PluginFieldType::kINT64, 1},
        {"sampling_ratio", &sampling, nvinfer1::PluginFieldType::kINT64, 1},
        {"aligned", &aligned, nvinfer1::PluginFieldType::kINT64, 1},
        {"min_level", &minLevel, nvinfer1::PluginFieldType::kINT64, 1},
        {"mode", mode, nvinfer1::PluginFieldType::kCHAR, 3},
        {"spatial_scales", scales, nvinfer1::PluginFieldType::kFLOAT32, levels},
    };
    nvinfer1::PluginFieldCollection fc{static_cast<int32_t>(f.size()), f.data()};
    return creator()->createPlugin("roi", &fc, nvinfer1::TensorRTPhase::kBUILD);
}

template <typename I>
I* as(nvinfer1::IPluginV3* plugin, nvinfer1::PluginCapabilityType type)
{
    return static_cast<I*>(plugin->getCapabilityInterface(type));
}

void creatorChecks()
{
    using namespace nvinfer1;
    CHECK(creator() != nullptr);
    CHECK(std::string(creator()->getPluginName()) == "MultiLevelRoIAlign");
    CHECK(std::string(creator()->getPluginVersion()) == "1");
    IPluginV3* plugin = fromOnnxFields(4);
    CHECK(plugin != nullptr);
    CHECK(fromOnnxFields(6) == nullptr); // at most 5 levels
    PluginFieldCollection empty{0, nullptr};
    CHECK(creator()->createPlugin("roi", &empty, TensorRTPhase::kBUILD) == nullptr); // no scales
    // the fields it serializes make the same plugin again
    auto* runtime = as<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME);
    PluginFieldCollection const* saved = runtime->getFieldsToSerialize();
    IPluginV3* again = creator()->createPlugin("roi", saved, TensorRTPhase::kRUNTIME);
    CHECK(again != nullptr);
    PluginFieldCollection const* resaved = as<IPluginV3OneRuntime>(again, PluginCapabilityType::kRUNTIME)
                                              ->getFieldsToSerialize();
    CHECK(saved->nbFields == resaved->nbFields);
    for (int32_t i = 0; i < saved->nbFields && i < resaved->nbFields; ++i)
    {
        PluginField const& a = saved->fields[i];
        PluginField const& b = resaved->fields[i];
        size_t const bytes = a.type == PluginFieldType::kCHAR ? 1 : 4; // CHAR, INT32 and FLOAT32 fields
        CHECK(std::string(a.name) == b.name && a.type == b.type && a.length == b.length
            && std::memcmp(a.data, b.data, bytes * static_cast<size_t>(a.length)) == 0);
    }
    delete again;
    delete plugin;
}

//! TensorRT's logger as the plugin library finds it through setLoggerFinder.
class RecordingLogger : public nvinfer1::ILogger
{
public:
    std::string errors;
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override
    {
        if (severity == Severity::kERROR)
        {
            errors += std::string(msg) + "\n";
        }
    }
};

class Finder : public nvinfer1::ILoggerFinder
{
public:
    explicit Finder(nvinfer1::ILogger* logger)
        : mLogger(logger)
    {
    }
    nvinfer1::ILogger* findLogger() override
    {
        return mLogger;
    }

private:
    nvinfer1::ILogger* mLogger;
};

void loggerChecks()
{
    using namespace nvinfer1;
    // before TensorRT hands over a finder, a refusal is silent (and does not crash)
    CHECK(fromOnnxFields(6) == nullptr);
    RecordingLogger logger;
    Finder finder(&logger);
    setLoggerFinder(&finder);
    CHECK(fromOnnxFields(6) == nullptr);
    CHECK(logger.errors == "MultiLevelRoIAlign: spatial_scales has 6 levels; expected 1 to 5\n");
    logger.errors.clear();
    PluginFieldCollection empty{0, nullptr};
    CHECK(creator()->createPlugin("roi", &empty, TensorRTPhase::kBUILD) == nullptr);
    CHECK(logger.errors.find("no spatial_scales field") != std::string::npos);
    logger.errors.clear();
    CHECK(fromOnnxFields(4, -1) == nullptr);
    CHECK(logger.errors.find("sampling_ratio -1; expected") != std::string::npos);
    logger.errors.clear();
    IPluginV3* plugin = fromOnnxFields(4);
    CHECK(plugin != nullptr && logger.errors.empty());
    delete plugin;
    setLoggerFinder(nullptr);
}

void formatChecks()
{
    using namespace nvinfer1;
    IPluginV3* plugin = fromOnnxFields(4);
    auto* build = as<IPluginV3OneBuild>(plugin, PluginCapabilityType::kBUILD);
    DynamicPluginTensorDesc io[7] = {
        tensor(dims({16, 4}), DataType::kFLOAT, TensorFormat::kLINEAR),
        tensor(dims({16}), DataType::kINT64, TensorFormat::kLINEAR),
    };
    auto offer = [&](int32_t pos, DataType type, TensorFormat format) {
        io[pos] = tensor(dims({1, 12, 32, 64}), type, format);
        return build->supportsFormatCombination(pos, io, 6, 1);
    };
    CHECK(build->supportsFormatCombination(0, io, 6, 1));
    CHECK(build->supportsFormatCombination(1, io, 6, 1));
    io[0].desc.format = TensorFormat::kHWC;
    CHECK(!build->supportsFormatCombination(0, io, 6, 1)); // boxes: linear float32 only
    io[0].desc.format = TensorFormat::kLINEAR;
    io[1].desc.type = DataType::kINT32;
    CHECK(!build->supportsFormatCombination(1, io, 6, 1));
    io[1].desc.type = DataType::kINT64;

    // the first level: float32 linear or kHWC; float16 linear, kHWC8 or kHWC16
    CHECK(offer(2, DataType::kFLOAT, TensorFormat::kLINEAR));
    CHECK(offer(2, DataType::kFLOAT, TensorFormat::kHWC));
    CHECK(!offer(2, DataType::kFLOAT, TensorFormat::kHWC8));
    CHECK(!offer(2, DataType::kFLOAT, TensorFormat::kCHW32));
    CHECK(offer(2, DataType::kHALF, TensorFormat::kLINEAR));
    CHECK(offer(2, DataType::kHALF, TensorFormat::kHWC8));
    CHECK(offer(2, DataType::kHALF, TensorFormat::kHWC16));
    CHECK(!offer(2, DataType::kHALF, TensorFormat::kHWC));
    CHECK(!offer(2, DataType::kHALF, TensorFormat::kCHW2));
    CHECK(!offer(2, DataType::kINT8, TensorFormat::kLINEAR));

    // the other levels and the output: the first level's type and format
    CHECK(offer(2, DataType::kHALF, TensorFormat::kHWC8));
    CHECK(offer(3, DataType::kHALF, TensorFormat::kHWC8));
    CHECK(!offer(3, DataType::kHALF, TensorFormat::kLINEAR));
    CHECK(!offer(3, DataType::kHALF, TensorFormat::kHWC16));
    CHECK(!offer(3, DataType::kFLOAT, TensorFormat::kHWC8));
    CHECK(offer(6, DataType::kHALF, TensorFormat::kHWC8)); // the output
    CHECK(!offer(6, DataType::kHALF, TensorFormat::kLINEAR));
    CHECK(offer(2, DataType::kFLOAT, TensorFormat::kLINEAR));
    CHECK(offer(6, DataType::kFLOAT, TensorFormat::kLINEAR));
    CHECK(!offer(6, DataType::kFLOAT, TensorFormat::kHWC));

    DataType const in[6] = {DataType::kFLOAT, DataType::kINT64, DataType::kHALF, DataType::kHALF, DataType::kHALF,
        DataType::kHALF};
    DataType out{DataType::kFLOAT};
    CHECK(build->getOutputDataTypes(&out, 1, in, 6) == 0 && out == DataType::kHALF);
    CHECK(build->getOutputDataTypes(&out, 1, in, 5) != 0); // 4 levels: 6 inputs
    delete plugin;
}

//! Dimension expressions of known values, as TensorRT's builder hands them to getOutputShapes
//! for inputs of fixed shape (TensorRT's headers ask plugins not to derive from these
//! classes, which a plugin does not; this test stands in for the builder).
class Constant : public nvinfer1::IDimensionExpr
{
public:
    explicit Constant(int64_t value)
        : mValue(value)
    {
        mImpl = &mValue;
    }

private:
    struct Value : nvinfer1::apiv::VDimensionExpr
    {
        explicit Value(int64_t v)
            : v(v)
        {
        }
        bool isConstant() const override
        {
            return true;
        }
        int64_t getConstantValue() const override
        {
            return v;
        }
        bool isSizeTensor() const override
        {
            return false;
        }
        int64_t v;
    } mValue;
};

class Builder : public nvinfer1::IExprBuilder
{
public:
    Builder()
    {
        mImpl = &mMake;
    }
    Constant const* of(int64_t v)
    {
        return mMake.keep(v);
    }

private:
    struct Make : nvinfer1::apiv::VExprBuilder
    {
        std::vector<std::unique_ptr<Constant>> made;
        Constant const* keep(int64_t v)
        {
            made.push_back(std::make_unique<Constant>(v));
            return made.back().get();
        }
        nvinfer1::IDimensionExpr const* constant(int64_t value) override
        {
            return keep(value);
        }
        nvinfer1::IDimensionExpr const* operation(
            nvinfer1::DimensionOperation, nvinfer1::IDimensionExpr const&, nvinfer1::IDimensionExpr const&) override
        {
            return nullptr; // the plugin's output shape needs no arithmetic
        }
        nvinfer1::IDimensionExpr const* declareSizeTensor(
            int32_t, nvinfer1::IDimensionExpr const&, nvinfer1::IDimensionExpr const&) override
        {
            return nullptr;
        }
    } mMake;
};

nvinfer1::DimsExprs exprs(Builder& b, std::initializer_list<int64_t> d)
{
    nvinfer1::DimsExprs out{};
    out.nbDims = static_cast<int32_t>(d.size());
    int32_t i = 0;
    for (int64_t v : d)
    {
        out.d[i++] = b.of(v);
    }
    return out;
}

void shapeChecks()
{
    using namespace nvinfer1;
    IPluginV3* plugin = fromOnnxFields(4);
    auto* build = as<IPluginV3OneBuild>(plugin, PluginCapabilityType::kBUILD);
    Builder b;
    DimsExprs in[6] = {exprs(b, {300, 4}), exprs(b, {300}), exprs(b, {2, 12, 64, 128}), exprs(b, {2, 12, 32, 64}),
        exprs(b, {2, 12, 16, 32}), exprs(b, {2, 12, 8, 16})};
    DimsExprs out{};
    CHECK(build->getOutputShapes(in, 6, nullptr, 0, &out, 1, b) == 0);
    CHECK(out.nbDims == 4);
    bool const constant = out.nbDims == 4 && out.d[0]->isConstant() && out.d[1]->isConstant()
        && out.d[2]->isConstant() && out.d[3]->isConstant();
    CHECK(constant); // [R, C, 7, 7]: the boxes' count, the first level's channels, the output size
    CHECK(constant && out.d[0]->getConstantValue() == 300 && out.d[1]->getConstantValue() == 12
        && out.d[2]->getConstantValue() == 7 && out.d[3]->getConstantValue() == 7);
    CHECK(build->getOutputShapes(in, 5, nullptr, 0, &out, 1, b) != 0); // 4 levels: 6 inputs
    in[2] = exprs(b, {12, 64, 128});
    CHECK(build->getOutputShapes(in, 6, nullptr, 0, &out, 1, b) != 0); // a level is [N, C, H, W]
    delete plugin;
}

//! enqueue with the first level in `format`, after setTactic(tactic) (-1: none) and a clone as
//! the runtime makes one: what the launcher was given.
edge::roialign::Launched enqueueWith(nvinfer1::DataType type, nvinfer1::TensorFormat format, int32_t channels,
    int32_t tactic = -1, int64_t sampling = 2)
{
    using namespace nvinfer1;
    IPluginV3* built = fromOnnxFields(4, sampling);
    if (tactic >= 0)
    {
        CHECK(as<IPluginV3OneRuntime>(built, PluginCapabilityType::kRUNTIME)->setTactic(tactic) == 0);
    }
    IPluginV3* plugin = built->clone();
    delete built;
    auto* runtime = as<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME);
    PluginTensorDesc in[6] = {
        tensor(dims({16, 4}), DataType::kFLOAT, TensorFormat::kLINEAR).desc,
        tensor(dims({16}), DataType::kINT64, TensorFormat::kLINEAR).desc,
    };
    for (int32_t l = 0; l < 4; ++l)
    {
        in[2 + l] = tensor(dims({2, channels, 64 >> l, 128 >> l}), type, format).desc;
    }
    PluginTensorDesc out = tensor(dims({16, channels, 7, 7}), type, format).desc;
    char buffers[7][16];
    void const* inputs[6] = {buffers[0], buffers[1], buffers[2], buffers[3], buffers[4], buffers[5]};
    void* outputs[1] = {buffers[6]};
    edge::roialign::gLaunched = edge::roialign::Launched{};
    int32_t const status = runtime->enqueue(in, &out, inputs, outputs, nullptr, nullptr);
    edge::roialign::Launched seen = edge::roialign::gLaunched;
    seen.calls = status == 0 ? seen.calls : -1;
    CHECK(seen.data[3] == buffers[5] && seen.out == buffers[6]);
    delete plugin;
    return seen;
}

void enqueueChecks()
{
    using namespace nvinfer1;
    {
        IPluginV3* plugin = fromOnnxFields(2);
        auto* runtime = as<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME);
        PluginTensorDesc in[4] = {
            tensor(dims({16, 4}), DataType::kFLOAT, TensorFormat::kLINEAR).desc,
            tensor(dims({16}), DataType::kINT64, TensorFormat::kLINEAR).desc,
            tensor(dims({1, 12, 32, 64}), DataType::kFLOAT, TensorFormat::kLINEAR).desc,
            tensor(dims({1, 12, 16, 32}), DataType::kFLOAT, TensorFormat::kLINEAR).desc,
        };
        PluginTensorDesc out = tensor(dims({16, 12, 7, 7}), DataType::kFLOAT, TensorFormat::kLINEAR).desc;
        CHECK(runtime->onShapeChange(in, 4, &out, 1) == 0);
        in[3].dims.d[1] = 8;
        CHECK(runtime->onShapeChange(in, 4, &out, 1) != 0); // every level has the first level's channels
        CHECK(runtime->onShapeChange(in, 3, &out, 1) != 0); // 2 levels: 4 inputs
        delete plugin;
    }
    edge::roialign::Launched l = enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12);
    CHECK(l.calls == 1 && !l.half && l.numRois == 16 && l.channels == 12 && l.channelStride == 0);
    CHECK(l.heights[0] == 64 && l.widths[0] == 128 && l.heights[3] == 8 && l.widths[3] == 16);
    l = enqueueWith(DataType::kFLOAT, TensorFormat::kHWC, 12);
    CHECK(l.calls == 1 && !l.half && l.channelStride == 12); // kHWC: unpadded
    l = enqueueWith(DataType::kHALF, TensorFormat::kHWC8, 12);
    CHECK(l.calls == 1 && l.half && l.channelStride == 16); // 12 channels in vectors of 8
    l = enqueueWith(DataType::kHALF, TensorFormat::kHWC16, 12);
    CHECK(l.calls == 1 && l.half && l.channelStride == 16);
    l = enqueueWith(DataType::kHALF, TensorFormat::kHWC16, 256);
    CHECK(l.calls == 1 && l.channelStride == 256);
    l = enqueueWith(DataType::kHALF, TensorFormat::kLINEAR, 256);
    CHECK(l.calls == 1 && l.half && l.channelStride == 0);
}

//! The tactics offered for the format combination configured last, and the kernel each runs.
void tacticChecks()
{
    using namespace nvinfer1;
    using edge::roialign::Mapping;
    IPluginV3* plugin = fromOnnxFields(2);
    IPluginV3* adaptive = fromOnnxFields(2, 0);
    auto offered = [&](DataType type, TensorFormat format, int32_t channels, IPluginV3* of = nullptr) {
        auto* build = as<IPluginV3OneBuild>(of == nullptr ? plugin : of, PluginCapabilityType::kBUILD);
        DynamicPluginTensorDesc in[4] = {
            tensor(dims({16, 4}), DataType::kFLOAT, TensorFormat::kLINEAR),
            tensor(dims({16}), DataType::kINT64, TensorFormat::kLINEAR),
            tensor(dims({1, channels, 32, 64}), type, format),
            tensor(dims({1, channels, 16, 32}), type, format),
        };
        DynamicPluginTensorDesc out = tensor(dims({16, channels, 7, 7}), type, format);
        CHECK(build->configurePlugin(in, 4, &out, 1) == 0);
        int32_t const n = build->getNbTactics();
        std::vector<int32_t> tactics(static_cast<size_t>(n > 0 ? n : 0));
        CHECK(build->getValidTactics(tactics.data(), n) == 0);
        return tactics;
    };
    CHECK((offered(DataType::kFLOAT, TensorFormat::kLINEAR, 12) == std::vector<int32_t>{1, 2, 3}));
    CHECK((offered(DataType::kHALF, TensorFormat::kLINEAR, 3) == std::vector<int32_t>{1, 2, 3}));
    CHECK((offered(DataType::kFLOAT, TensorFormat::kHWC, 12) == std::vector<int32_t>{1, 2})); // vectors of 4
    CHECK((offered(DataType::kFLOAT, TensorFormat::kHWC, 6) == std::vector<int32_t>{1})); // 6: no whole vectors
    CHECK((offered(DataType::kHALF, TensorFormat::kHWC8, 3) == std::vector<int32_t>{1, 2})); // padded to 8
    CHECK((offered(DataType::kHALF, TensorFormat::kHWC16, 20) == std::vector<int32_t>{1, 2}));
    // adaptive sampling: a thread per bin alone on NCHW maps (bin channels and the patch layout
    // visit every sample of a grid that grows with its box); channel vectors still
    CHECK((offered(DataType::kFLOAT, TensorFormat::kLINEAR, 12, adaptive) == std::vector<int32_t>{1}));
    CHECK((offered(DataType::kHALF, TensorFormat::kHWC8, 3, adaptive) == std::vector<int32_t>{1, 2}));
    auto* build = as<IPluginV3OneBuild>(plugin, PluginCapabilityType::kBUILD);
    int32_t one = 0;
    CHECK(build->getValidTactics(&one, 1) != 0); // as many as getNbTactics() says (2 for the last), or refused
    CHECK(as<IPluginV3OneRuntime>(plugin, PluginCapabilityType::kRUNTIME)->setTactic(4) != 0);

    // what each tactic runs, on the runtime's clone
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12).mapping == Mapping::kAuto);
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12, 0).mapping == Mapping::kAuto);
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12, 1).mapping == Mapping::kThreadPerBin);
    CHECK(enqueueWith(DataType::kHALF, TensorFormat::kLINEAR, 12, 2).mapping == Mapping::kBinChannels);
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12, 3).mapping == Mapping::kPatch);
    CHECK(enqueueWith(DataType::kHALF, TensorFormat::kHWC8, 12, 1).mapping == Mapping::kThreadPerBin);
    CHECK(enqueueWith(DataType::kHALF, TensorFormat::kHWC8, 12, 2).mapping == Mapping::kAuto); // vectors
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12, 2, 0).mapping == Mapping::kAuto); // adaptive
    CHECK(enqueueWith(DataType::kFLOAT, TensorFormat::kLINEAR, 12, 3, 0).mapping == Mapping::kAuto);

    // timing cache: one ID per set of attributes (TensorRT adds the shapes and formats)
    std::string const two = build->getTimingCacheID();
    IPluginV3* four = fromOnnxFields(4);
    std::string const other = as<IPluginV3OneBuild>(four, PluginCapabilityType::kBUILD)->getTimingCacheID();
    CHECK(!two.empty() && two != other);
    CHECK(two.rfind(std::string("MultiLevelRoIAlign/1/") + EDGE_KERNELS_DIGEST + "/", 0) == 0); // build.sh's digest
    delete four;
    delete adaptive;
    delete plugin;
}

} // namespace

int main()
{
    creatorChecks();
    loggerChecks();
    formatChecks();
    shapeChecks();
    tacticChecks();
    enqueueChecks();
    std::printf("checks: %d failed: %d\n", gChecks, gFailed);
    return gFailed == 0 ? 0 : 1;
}
