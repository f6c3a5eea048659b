// The plugin's CUDA kernel behind a C entry point, without TensorRT: the kernel TensorRT runs
// can then be checked and timed on any CUDA machine (plugins/roi_align/cuda_kernel.py loads
// this through ctypes with torch's device pointers and stream).
#include "roi_align_kernel.h"

#include <cuda_fp16.h>

namespace
{

template <typename T>
int32_t run(void const* const* features, int32_t const* heights, int32_t const* widths, int32_t numLevels,
    int32_t channels, int32_t channelStride, float const* rois, int64_t const* batchIdx, int32_t numRois,
    edge::roialign::Params const& p, void* out, cudaStream_t stream, edge::roialign::Mapping mapping)
{
    edge::roialign::Levels<T> levels{};
    levels.channelStride = channelStride;
    for (int32_t l = 0; l < numLevels; ++l)
    {
        levels.data[l] = static_cast<T const*>(features[l]);
        levels.height[l] = heights[l];
        levels.width[l] = widths[l];
    }
    return static_cast<int32_t>(
        edge::roialign::launch(levels, rois, batchIdx, numRois, channels, p, static_cast<T*>(out), stream, mapping));
}

} // namespace

//! 0 on success, else a cudaError_t (edge_cuda_error_string names it). features: numLevels
//! device pointers to [N, channels, heights[l], widths[l]] maps, fp32 or (isHalf) fp16, NCHW
//! where channelStride is 0, else channel-last with that stride (roi_align_kernel.h, Levels);
//! rois [numRois, 4] fp32 and batchIdx [numRois] int64 on the device; out [numRois, channels,
//! outputHeight, outputWidth] of the features' type and layout; stream a cudaStream_t (0: the
//! default); mapping an edge::roialign::Mapping (0 auto, 1 a thread per bin, 2 sample lanes,
//! 3 channel vectors, 4 bin channels, 5 patch).
extern "C" int32_t edge_mlroialign_cuda(void const* const* features, int32_t const* heights, int32_t const* widths,
    int32_t numLevels, int32_t channels, int32_t channelStride, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t minLevel, int32_t outputHeight, int32_t outputWidth, int32_t samplingRatio,
    int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize, float const* spatialScales,
    int32_t isHalf, void* out, void* stream, int32_t mapping)
{
    if (numLevels < 1 || numLevels > edge::roialign::kMaxLevels)
    {
        return static_cast<int32_t>(cudaErrorInvalidValue);
    }
    edge::roialign::Params const p = edge::roialign::makeParams(numLevels, minLevel, outputHeight, outputWidth,
        samplingRatio, aligned, isMax, canonicalLevel, canonicalSize, spatialScales);
    if (mapping < 0 || mapping > 5)
    {
        return static_cast<int32_t>(cudaErrorInvalidValue);
    }
    auto const s = static_cast<cudaStream_t>(stream);
    auto const m = static_cast<edge::roialign::Mapping>(mapping);
    return isHalf ? run<__half>(features, heights, widths, numLevels, channels, channelStride, rois, batchIdx, numRois,
                        p, out, s, m)
                  : run<float>(features, heights, widths, numLevels, channels, channelStride, rois, batchIdx, numRois,
                        p, out, s, m);
}

extern "C" char const* edge_cuda_error_string(int32_t code)
{
    return cudaGetErrorString(static_cast<cudaError_t>(code));
}
