// The kernel's arithmetic (roi_align_math.h) compiled for the CPU, with a C entry point
// the tests call through ctypes and compare against plugins/roi_align/reference.py.
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
        float const* box = rois + 4 * r;
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
