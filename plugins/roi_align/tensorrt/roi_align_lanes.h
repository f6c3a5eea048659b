// Sample lanes on NCHW maps, the arithmetic of sampleLanesKernel (roi_align_kernel.cu) and
// of its host build (host_reference.cpp); roi_align_math.h: what every kernel shares.
#pragma once

#include "roi_align_math.h"

namespace edge
{
namespace roialign
{

// The sample-lanes layout: a warp pools one row of bins (one box, channel and output row).
// Each lane takes one bilinear sample; the samples of a bin sit in adjacent lanes and are
// combined by a butterfly over the lanes (__shfl_xor_sync on the GPU, emulated in
// host_reference.cpp). Neighbouring lanes then read neighbouring pixels of one or two
// rows, where a thread per bin spreads a warp's reads over several rows of bins.
constexpr int32_t kWarp = 32;

//! The layout applies to fixed sampling ratios whose samples per bin divide a warp: 1, 2 or 4.
EDGE_HD bool sampleLanesApply(Params const& p)
{
    return p.samplingRatio == 1 || p.samplingRatio == 2 || p.samplingRatio == 4;
}

//! Samples per bin (a power of two dividing the warp) and passes over a row of bins.
struct Lanes
{
    int32_t samples;
    int32_t passes;
};

EDGE_HD Lanes lanesOf(Params const& p)
{
    int32_t const samples = p.samplingRatio * p.samplingRatio;
    int32_t const binsPerPass = kWarp / samples;
    return Lanes{samples, (p.outputWidth + binsPerPass - 1) / binsPerPass};
}

//! Bin column of a lane in a pass (outputWidth or more: the lane is idle).
EDGE_HD int32_t laneBin(Lanes const& l, int32_t pass, int32_t lane)
{
    return (pass * kWarp + lane) / l.samples;
}

//! The lane's sample of row py (0 for idle lanes, which load nothing).
template <typename T>
EDGE_HD float laneSample(T const* plane, int32_t height, int32_t width, Geometry const& g, Lanes const& l,
    int32_t py, int32_t pass, int32_t lane, Params const& p)
{
    int32_t const px = laneBin(l, pass, lane);
    if (px >= p.outputWidth)
    {
        return 0.0F;
    }
    int32_t const s = lane % l.samples; // passes start on a bin boundary: samples divide the warp
    return sampleAt(plane, height, width, g, py, px, s / g.gw, s % g.gw);
}

//! The butterfly's combining step, and what the bin's first lane writes.
EDGE_HD float combine(float a, float b, Params const& p)
{
    return p.isMax ? fmaxf(a, b) : a + b;
}

EDGE_HD float finish(float combined, Lanes const& l, Params const& p)
{
    return p.isMax ? combined : combined / static_cast<float>(l.samples);
}

} // namespace roialign
} // namespace edge
