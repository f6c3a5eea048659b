// Bin channels on NCHW maps, the arithmetic of binChannelsKernel (roi_align_kernel.cu) and
// of its host build (host_reference.cpp); roi_align_math.h: what every kernel shares.
#pragma once

#include "roi_align_math.h"

namespace edge
{
namespace roialign
{

// Bin channels, on NCHW maps: a thread pools one bin of K adjacent channels, working out each
// sample's corners and weights once for the K planes, where a thread per bin works them out
// for every channel. Neighbouring threads take neighbouring bins of the same channels, so a
// warp's loads of one plane fall along the same rows, as a thread per bin's do.
constexpr int32_t kBinChannels = 8;

//! Whether the bin-channel and patch layouts apply: to fixed sampling ratios. Their sample
//! loops visit every sample of a bin (poolK's Bounded is false: bounding cost them registers
//! past their limit, and spills), and an adaptive grid is as large as its box; a thread per
//! bin takes those, its loops bounded.
EDGE_HD bool groupedLayoutsApply(Params const& p)
{
    return p.samplingRatio > 0;
}

//! A sample of `count` (at most K) adjacent planes, planeSize apart: bilinear()'s sums.
template <typename T, int32_t K>
struct PlaneReader
{
    T const* planes;
    int64_t planeSize;
    int32_t count;

    EDGE_HD void operator()(Corners const& k, float (&sample)[K]) const
    {
EDGE_UNROLL
        for (int32_t j = 0; j < K; ++j)
        {
            if (j < count)
            {
                T const* plane = planes + j * planeSize;
                sample[j] = k.w00 * readOnly(plane + k.i00) + k.w01 * readOnly(plane + k.i01)
                    + k.w10 * readOnly(plane + k.i10) + k.w11 * readOnly(plane + k.i11);
            }
        }
    }
};

//! Bin `bin` of `count` (at most K) adjacent channels of an NCHW map of one batch item, the
//! first of them at `planes`; planeSize apart.
template <typename T, int32_t K>
EDGE_HD void binChannels(T const* planes, int64_t planeSize, int32_t height, int32_t width, float scale,
    float const* box, int32_t bin, int32_t count, Params const& p, float (&out)[K])
{
    int32_t const py = bin / p.outputWidth;
    poolK<K, false>(boxGeometry(scale, box, p), height, width, py, bin - py * p.outputWidth, p,
        PlaneReader<T, K>{opaque(planes), planeSize, count}, out);
}

} // namespace roialign
} // namespace edge
