// The kernels' arithmetic (roi_align_math.h) compiled for the CPU, with C entry points that
// the tests call through ctypes and compare against plugins/roi_align/reference.py: one for
// each thread layout on NCHW maps, one for both kernels on channel-last maps.
#include "roi_align_math.h"

extern "C" int32_t edge_mlroialign_host(float const* const* features, int32_t const* heights, int32_t const* widths,
    int32_t numLevels, int32_t channels, float const* rois, int64_t const* batchIdx, int32_t numRois,
    int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio, int32_t aligned,
    int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales, float* out)
{
    using namespace edge::roialign;
    if (numLevels < 1 || numLevels > kMaxLevels)
    {
        return 1;
    }
    Params const p = makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio, aligned, isMax,
        canonicalLevel, canonicalSize, spatialScales);
    for (int32_t r = 0; r < numRois; ++r)
    {
        Box const read = readBox(rois, r);
        float const* box = read.v;
        int32_t const l = levelIndex(box[0], box[1], box[2], box[3], p);
        int64_t const plane = static_cast<int64_t>(heights[l]) * widths[l];
        for (int32_t c = 0; c < channels; ++c)
        {
            float const* data = features[l] + (batchIdx[r] * channels + c) * plane;
            for (int32_t py = 0; py < outputHeight; ++py)
            {
                for (int32_t px = 0; px < outputWidth; ++px)
                {
                    out[((static_cast<int64_t>(r) * channels + c) * outputHeight + py) * outputWidth + px]
                        = poolBin(data, heights[l], widths[l], p.spatialScales[l], box, py, px, p);
                }
            }
        }
    }
    return 0;
}

//! The sample-lanes layout as the GPU runs it, a warp emulated: every lane's sample, then the
//! butterfly (lane i combines with lane i ^ step, all lanes at once, as __shfl_xor_sync does),
//! then each bin's first lane writes. Same arguments; 2 where the layout does not apply.
extern "C" int32_t edge_mlroialign_host_lanes(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio,
    int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales, float* out)
{
    using namespace edge::roialign;
    if (numLevels < 1 || numLevels > kMaxLevels)
    {
        return 1;
    }
    Params const p = makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio, aligned, isMax,
        canonicalLevel, canonicalSize, spatialScales);
    if (!sampleLanesApply(p))
    {
        return 2;
    }
    Lanes const l = lanesOf(p);
    for (int32_t r = 0; r < numRois; ++r)
    {
        Box const read = readBox(rois, r);
        float const* box = read.v;
        int32_t const lv = levelIndex(box[0], box[1], box[2], box[3], p);
        Geometry const g = boxGeometry(p.spatialScales[lv], box, p);
        int64_t const plane = static_cast<int64_t>(heights[lv]) * widths[lv];
        for (int32_t c = 0; c < channels; ++c)
        {
            float const* data = features[lv] + (batchIdx[r] * channels + c) * plane;
            for (int32_t py = 0; py < outputHeight; ++py)
            {
                float* row = out + ((static_cast<int64_t>(r) * channels + c) * outputHeight + py) * outputWidth;
                for (int32_t pass = 0; pass < l.passes; ++pass)
                {
                    float v[kWarp];
                    for (int32_t lane = 0; lane < kWarp; ++lane)
                    {
                        v[lane] = laneSample(data, heights[lv], widths[lv], g, l, py, pass, lane, p);
                    }
                    for (int32_t step = l.samples / 2; step > 0; step /= 2)
                    {
                        float next[kWarp];
                        for (int32_t lane = 0; lane < kWarp; ++lane)
                        {
                            next[lane] = combine(v[lane], v[lane ^ step], p);
                        }
                        for (int32_t lane = 0; lane < kWarp; ++lane)
                        {
                            v[lane] = next[lane];
                        }
                    }
                    for (int32_t lane = 0; lane < kWarp; ++lane)
                    {
                        int32_t const px = laneBin(l, pass, lane);
                        if (px < outputWidth && lane % l.samples == 0)
                        {
                            row[px] = finish(v[lane], l, p);
                        }
                    }
                }
            }
        }
    }
    return 0;
}

//! NCHW maps as the GPU's binChannelsKernel pools them: a thread per bin of kBinChannels
//! channels, the last group short where the channels are not whole groups. Same arguments
//! as edge_mlroialign_host.
extern "C" int32_t edge_mlroialign_host_bin_channels(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio,
    int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales, float* out)
{
    using namespace edge::roialign;
    if (numLevels < 1 || numLevels > kMaxLevels)
    {
        return 1;
    }
    Params const p = makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio, aligned, isMax,
        canonicalLevel, canonicalSize, spatialScales);
    int32_t const bins = outputHeight * outputWidth;
    int32_t const work = (channels + kBinChannels - 1) / kBinChannels * bins;
    for (int32_t r = 0; r < numRois; ++r)
    {
        Box const read = readBox(rois, r);
        float const* box = read.v;
        int32_t const l = levelIndex(box[0], box[1], box[2], box[3], p);
        int64_t const planeSize = static_cast<int64_t>(heights[l]) * widths[l];
        float const* image = features[l] + batchIdx[r] * channels * planeSize;
        float* roiOut = out + static_cast<int64_t>(r) * channels * bins;
        for (int32_t i = 0; i < work; ++i) // the GPU's threads, in order
        {
            int32_t const c0 = i / bins * kBinChannels;
            int32_t const bin = i % bins;
            int32_t const count = channels - c0 < kBinChannels ? channels - c0 : kBinChannels;
            float pooled[kBinChannels];
            binChannels<float, kBinChannels>(image + c0 * planeSize, planeSize, heights[l], widths[l],
                p.spatialScales[l], box, bin, count, p, pooled);
            for (int32_t j = 0; j < count; ++j)
            {
                roiOut[(c0 + j) * bins + bin] = pooled[j];
            }
        }
    }
    return 0;
}

namespace
{

//! Every output element of box r's channel-last map, as the GPU's threads take them: one
//! element a thread (V = 1, channelsLastKernel) or V channels a thread (channelVectorsKernel:
//! 4 is its float32 vector, 8 its float16 one, here with float32 values).
template <int32_t V>
void channelsLastRoi(float const* image, int32_t height, int32_t width, float scale, float const* box,
    int32_t channels, int32_t stride, edge::roialign::Params const& p, float* out)
{
    using namespace edge::roialign;
    int32_t const perRoi = stride * p.outputHeight * p.outputWidth;
    if (V == 1)
    {
        for (int32_t i = 0; i < perRoi; ++i)
        {
            out[i] = channelsLastElement(image, height, width, scale, box, channels, stride, i, p);
        }
        return;
    }
    for (int32_t g = 0; g < perRoi / V; ++g)
    {
        float pooled[V];
        channelsLastVector<float, V>(image, height, width, scale, box, channels, stride, g, p, pooled);
        storeChannels<float, V>(out + g * V, pooled);
    }
}

} // namespace

//! Channel-last maps as the GPU's kernels for them pool them: features [N, H, W, channelStride]
//! with the channels first, out [numRois, outputHeight, outputWidth, channelStride] (padding
//! channels written 0); vector 1 is a thread per element, 4 or 8 channel vectors (channelsLastRoi).
//! The other arguments as edge_mlroialign_host's; 3 where channelStride is below channels, 4
//! for another vector or a stride that is not a multiple of it.
extern "C" int32_t edge_mlroialign_host_channels_last(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, int32_t channelStride, int32_t vector,
    float const* rois,
    int64_t const* batchIdx, int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth,
    int32_t samplingRatio, int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize,
    float const* spatialScales, float* out)
{
    using namespace edge::roialign;
    if (numLevels < 1 || numLevels > kMaxLevels)
    {
        return 1;
    }
    if (channelStride < channels)
    {
        return 3;
    }
    if ((vector != 1 && vector != 4 && vector != 8) || channelStride % vector != 0)
    {
        return 4;
    }
    Params const p = makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio, aligned, isMax,
        canonicalLevel, canonicalSize, spatialScales);
    int32_t const perRoi = channelStride * outputHeight * outputWidth;
    for (int32_t r = 0; r < numRois; ++r)
    {
        Box const read = readBox(rois, r);
        float const* box = read.v;
        int32_t const l = levelIndex(box[0], box[1], box[2], box[3], p);
        float const* image
            = features[l] + batchIdx[r] * static_cast<int64_t>(heights[l]) * widths[l] * channelStride;
        float* roiOut = out + static_cast<int64_t>(r) * perRoi;
        float const scale = p.spatialScales[l];
        if (vector == 1)
        {
            channelsLastRoi<1>(image, heights[l], widths[l], scale, box, channels, channelStride, p, roiOut);
        }
        else if (vector == 4)
        {
            channelsLastRoi<4>(image, heights[l], widths[l], scale, box, channels, channelStride, p, roiOut);
        }
        else
        {
            channelsLastRoi<8>(image, heights[l], widths[l], scale, box, channels, channelStride, p, roiOut);
        }
    }
    return 0;
}
