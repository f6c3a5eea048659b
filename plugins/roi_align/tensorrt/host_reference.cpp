// The kernels' arithmetic (roi_align_math.h) compiled for the CPU, with a C entry point for
// each kernel (two thread layouts on NCHW maps, one on channel-last maps) that the tests
// call through ctypes and compare against plugins/roi_align/reference.py.
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

//! Channel-last maps as the GPU's channelsLastKernel pools them, element by element:
//! features [N, H, W, channelStride] with the channels first, out [numRois, outputHeight,
//! outputWidth, channelStride] (padding channels written 0). The other arguments as
//! edge_mlroialign_host's; 3 where channelStride is below channels.
extern "C" int32_t edge_mlroialign_host_channels_last(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, int32_t channelStride, float const* rois,
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
        for (int32_t i = 0; i < perRoi; ++i)
        {
            out[static_cast<int64_t>(r) * perRoi + i] = channelsLastElement(
                image, heights[l], widths[l], p.spatialScales[l], box, channels, channelStride, i, p);
        }
    }
    return 0;
}
