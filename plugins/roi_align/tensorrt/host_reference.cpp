// The kernels' arithmetic (roi_align_math.h) compiled for the CPU, with C entry points that
// the tests call through ctypes and compare against plugins/roi_align/reference.py: one for
// each thread layout on NCHW maps, one for both kernels on channel-last maps.
#include "roi_align_channels_last.h"
#include "roi_align_lanes.h"
#include "roi_align_patch.h"

#include <vector>

namespace
{

using edge::roialign::Params;

//! A box as a kernel's block sees it: its corners, its level and the map of its batch item.
struct Roi
{
    float const* box;
    int32_t level;
    int32_t height;
    int32_t width;
    float scale;
    float const* image;
};

//! visit(r, roi) for every box; depth: values a pixel holds (an NCHW map's channels, planes
//! apart; a channel-last map's stride, adjacent), for the offset of its batch item's map.
template <typename Visit>
void eachRoi(float const* const* features, int32_t const* heights, int32_t const* widths, int32_t depth,
    float const* rois, int64_t const* batchIdx, int32_t numRois, Params const& p, Visit visit)
{
    using namespace edge::roialign;
    for (int32_t r = 0; r < numRois; ++r)
    {
        Box const read = readBox(rois, r);
        int32_t const l = levelIndex(read.v[0], read.v[1], read.v[2], read.v[3], p);
        int64_t const pixels = static_cast<int64_t>(heights[l]) * widths[l];
        visit(r,
            Roi{read.v, l, heights[l], widths[l], p.spatialScales[l], features[l] + batchIdx[r] * pixels * depth});
    }
}

//! Every output element of a box's channel-last map, as the GPU's threads take them: one
//! element a thread (V = 1, channelsLastKernel) or V channels a thread (channelVectorsKernel:
//! 4 is its float32 vector, 8 its float16 one, here with float32 values).
template <int32_t V>
void channelsLastRoi(Roi const& roi, int32_t channels, int32_t stride, Params const& p, float* out)
{
    using namespace edge::roialign;
    int32_t const perRoi = stride * p.outputHeight * p.outputWidth;
    if (V == 1)
    {
        for (int32_t i = 0; i < perRoi; ++i)
        {
            out[i] = channelsLastElement(roi.image, roi.height, roi.width, roi.scale, roi.box, channels, stride, i, p);
        }
        return;
    }
    for (int32_t g = 0; g < perRoi / V; ++g)
    {
        float pooled[V];
        channelsLastVector<float, V>(
            roi.image, roi.height, roi.width, roi.scale, roi.box, channels, stride, g, p, pooled);
        edge::roialign::storeChannels<float, V>(out + g * V, pooled);
    }
}

} // namespace

// Every entry takes features (numLevels pointers), each level's heights and widths, numLevels,
// the layout's arguments (channels; for channel-last maps also stride and vector), rois
// [numRois, 4], batchIdx [numRois], the op's attributes and out; 1 for 0 or over 5 levels.

//! A thread per bin (multiLevelRoIAlignKernel).
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
    int32_t const bins = outputHeight * outputWidth;
    eachRoi(features, heights, widths, channels, rois, batchIdx, numRois, p, [&](int32_t r, Roi const& roi) {
        int64_t const plane = static_cast<int64_t>(roi.height) * roi.width;
        for (int32_t c = 0; c < channels; ++c)
        {
            for (int32_t bin = 0; bin < bins; ++bin)
            {
                out[(static_cast<int64_t>(r) * channels + c) * bins + bin] = poolBin(roi.image + c * plane,
                    roi.height, roi.width, roi.scale, roi.box, bin / outputWidth, bin % outputWidth, p);
            }
        }
    });
    return 0;
}

//! The sample-lanes layout as the GPU runs it, a warp emulated: every lane's sample, then the
//! butterfly (lane i combines with lane i ^ step, all lanes at once, as __shfl_xor_sync does),
//! then each bin's first lane writes. 2 where the layout does not apply.
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
    eachRoi(features, heights, widths, channels, rois, batchIdx, numRois, p, [&](int32_t r, Roi const& roi) {
        Geometry const g = boxGeometry(roi.scale, roi.box, p);
        int64_t const plane = static_cast<int64_t>(roi.height) * roi.width;
        for (int32_t c = 0; c < channels; ++c)
        {
            float const* data = roi.image + c * plane;
            for (int32_t py = 0; py < outputHeight; ++py)
            {
                float* row = out + ((static_cast<int64_t>(r) * channels + c) * outputHeight + py) * outputWidth;
                for (int32_t pass = 0; pass < l.passes; ++pass)
                {
                    float v[kWarp];
                    for (int32_t lane = 0; lane < kWarp; ++lane)
                    {
                        v[lane] = laneSample(data, roi.height, roi.width, g, l, py, pass, lane, p);
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
    });
    return 0;
}

//! NCHW maps as the GPU's binChannelsKernel pools them: a thread per bin of kBinChannels
//! channels, the last group short where the channels are not whole groups. 2 under adaptive
//! sampling, which the layout does not take (groupedLayoutsApply).
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
    if (!groupedLayoutsApply(p))
    {
        return 2;
    }
    int32_t const bins = outputHeight * outputWidth;
    int32_t const work = (channels + kBinChannels - 1) / kBinChannels * bins;
    eachRoi(features, heights, widths, channels, rois, batchIdx, numRois, p, [&](int32_t r, Roi const& roi) {
        int64_t const plane = static_cast<int64_t>(roi.height) * roi.width;
        float* roiOut = out + static_cast<int64_t>(r) * channels * bins;
        for (int32_t i = 0; i < work; ++i) // the GPU's threads, in order
        {
            int32_t const c0 = i / bins * kBinChannels;
            int32_t const bin = i % bins;
            int32_t const count = channels - c0 < kBinChannels ? channels - c0 : kBinChannels;
            float pooled[kBinChannels];
            binChannels<float, kBinChannels>(
                roi.image + c0 * plane, plane, roi.height, roi.width, roi.scale, roi.box, bin, count, p, pooled);
            for (int32_t j = 0; j < count; ++j)
            {
                roiOut[(c0 + j) * bins + bin] = pooled[j];
            }
        }
    });
    return 0;
}

namespace
{

//! NCHW maps as the GPU's patchKernel pools them, a block per box and kPatchChannels channels:
//! its kPatchThreads threads copy the patch where it fits (each its share, in turn), then pool
//! every bin from it; where it does not fit, or `staged` is 0, from the map. 2 under adaptive
//! sampling, which the layout does not take (groupedLayoutsApply).
int32_t patchLayout(float const* const* features, int32_t const* heights, int32_t const* widths, int32_t numLevels,
    int32_t channels, float const* rois, int64_t const* batchIdx, int32_t numRois, Params const& p, bool staged,
    float* out)
{
    using namespace edge::roialign;
    if (numLevels < 1 || numLevels > kMaxLevels)
    {
        return 1;
    }
    if (!groupedLayoutsApply(p))
    {
        return 2;
    }
    int32_t const bins = p.outputHeight * p.outputWidth;
    std::vector<float> shared(kPatchChannels * kPatchPixels); // the block's shared buffer
    float* patch = shared.data();
    eachRoi(features, heights, widths, channels, rois, batchIdx, numRois, p, [&](int32_t r, Roi const& roi) {
        int64_t const plane = static_cast<int64_t>(roi.height) * roi.width;
        float* roiOut = out + static_cast<int64_t>(r) * channels * bins;
        Geometry const g = boxGeometry(roi.scale, roi.box, p);
        Patch const at = patchOf(g, roi.height, roi.width, p);
        bool const fits = staged && patchFits(at);
        for (int32_t c0 = 0; c0 < channels; c0 += kPatchChannels)
        {
            int32_t const count = channels - c0 < kPatchChannels ? channels - c0 : kPatchChannels;
            float const* planes = roi.image + c0 * plane;
            for (int32_t t = 0; fits && t < kPatchThreads; ++t)
            {
                stagePatch(planes, plane, roi.width, at, count, t, kPatchThreads, patch);
            }
            for (int32_t bin = 0; bin < bins; ++bin)
            {
                float pooled[kPatchChannels];
                patchBin(fits ? patch : nullptr, planes, plane, g, at, roi.height, roi.width, bin, count, p, pooled);
                for (int32_t j = 0; j < count; ++j)
                {
                    roiOut[(c0 + j) * bins + bin] = pooled[j];
                }
            }
        }
    });
    return 0;
}

} // namespace

//! The patch layout (patchLayout), staged where the patch fits, as the GPU runs it.
extern "C" int32_t edge_mlroialign_host_patch(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio,
    int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales, float* out)
{
    Params const p = edge::roialign::makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio,
        aligned, isMax, canonicalLevel, canonicalSize, spatialScales);
    return patchLayout(features, heights, widths, numLevels, channels, rois, batchIdx, numRois, p, true, out);
}

//! The patch layout's threads reading every box from the map, as they do a box whose patch
//! does not fit.
extern "C" int32_t edge_mlroialign_host_patch_unstaged(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio,
    int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales, float* out)
{
    Params const p = edge::roialign::makeParams(numLevels, minLevel, outputHeight, outputWidth, samplingRatio,
        aligned, isMax, canonicalLevel, canonicalSize, spatialScales);
    return patchLayout(features, heights, widths, numLevels, channels, rois, batchIdx, numRois, p, false, out);
}

//! Whether a box's patch on an [height, width] map at `scale` fits the shared buffer (1) or
//! not (0), for the tests to hold that they cover both.
extern "C" int32_t edge_patch_fits(float const* box, float scale, int32_t height, int32_t width, int32_t outputSize,
    int32_t samplingRatio, int32_t aligned)
{
    using namespace edge::roialign;
    float const scales[1] = {scale};
    Params const p = makeParams(1, 0, outputSize, outputSize, samplingRatio, aligned, 0, 4, 224.0F, scales);
    return patchFits(patchOf(boxGeometry(scale, box, p), height, width, p)) ? 1 : 0;
}

//! Channel-last maps as the GPU's kernels for them pool them: features [N, H, W, channelStride]
//! with the channels first, out [numRois, outputHeight, outputWidth, channelStride] (padding
//! channels written 0); vector 1 is a thread per element, 4 or 8 channel vectors (channelsLastRoi).
//! 3 where channelStride is below channels, 4 for another vector or a stride that is not a
//! multiple of it.
extern "C" int32_t edge_mlroialign_host_channels_last(float const* const* features, int32_t const* heights,
    int32_t const* widths, int32_t numLevels, int32_t channels, int32_t channelStride, int32_t vector,
    float const* rois, int64_t const* batchIdx, int32_t numRois, int32_t minLevel, int32_t outputHeight,
    int32_t outputWidth, int32_t samplingRatio, int32_t aligned, int32_t isMax, int32_t canonicalLevel,
    float canonicalSize, float const* spatialScales, float* out)
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
    eachRoi(features, heights, widths, channelStride, rois, batchIdx, numRois, p, [&](int32_t r, Roi const& roi) {
        float* roiOut = out + static_cast<int64_t>(r) * perRoi;
        if (vector == 1)
        {
            channelsLastRoi<1>(roi, channels, channelStride, p, roiOut);
        }
        else if (vector == 4)
        {
            channelsLastRoi<4>(roi, channels, channelStride, p, roiOut);
        }
        else
        {
            channelsLastRoi<8>(roi, channels, channelStride, p, roiOut);
        }
    });
    return 0;
}

//! The sample points of every bin of every box (y then x, [numRois, outputSize^2, grid, 2]),
//! worked out by dividing by the sampling grid (byInverse 0) or by multiplying by its
//! reciprocal (1, as the kernels do where the grid is powers of two): the tests hold the two
//! equal bit for bit. 5 where the grid is not powers of two, or not fixed (samplingRatio < 1).
extern "C" int32_t edge_sample_points(float const* rois, int32_t numRois, float scale, int32_t outputSize,
    int32_t samplingRatio, int32_t aligned, int32_t byInverse, float* out)
{
    using namespace edge::roialign;
    if (samplingRatio < 1 || !isPowerOfTwo(samplingRatio))
    {
        return 5;
    }
    float const scales[1] = {scale};
    Params const p = makeParams(1, 0, outputSize, outputSize, samplingRatio, aligned, 0, 4, 224.0F, scales);
    for (int32_t r = 0; r < numRois; ++r)
    {
        Geometry const g = boxGeometry(scale, rois + 4 * r, p);
        for (int32_t bin = 0; bin < outputSize * outputSize; ++bin)
        {
            for (int32_t s = 0; s < g.gh * g.gw; ++s)
            {
                int32_t const py = bin / outputSize;
                int32_t const px = bin % outputSize;
                Point const at = byInverse ? samplePoint<true>(g, py, px, s / g.gw, s % g.gw)
                                           : samplePoint<false>(g, py, px, s / g.gw, s % g.gw);
                int64_t const i = ((static_cast<int64_t>(r) * outputSize * outputSize + bin) * g.gh * g.gw + s) * 2;
                out[i] = at.y;
                out[i + 1] = at.x;
            }
        }
    }
    return 0;
}
