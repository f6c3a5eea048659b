// The patch layout, on NCHW maps: a block copies the pixels a box's samples can read, of a few
// channels, from global memory to shared memory, row by row (neighbouring threads take
// neighbouring pixels: whole cache lines), then its threads pool the bins from there, a thread
// per bin of those channels. The other NCHW kernels gather each sample's four corners from
// global memory, a warp's load touching a line per channel or per row of bins; the Triton
// kernel's NCHW tile so gathering kept the H200's L1 busy 97% of its time
// (benchmarks/results/gpu_roi_align_h200_ncu.json). A box whose patch is larger than the shared
// buffer (one far larger than its level's usual size, on the top level) is pooled from global
// memory by the same threads, with the same sums.
#pragma once

#include "roi_align_bin_channels.h"

#if !defined(__CUDACC__)
#include <cassert>
#endif

namespace edge
{
namespace roialign
{

constexpr int32_t kPatchChannels = 4; //!< channels a block stages at once, and a thread pools
constexpr int32_t kPatchPixels = 1024; //!< pixels of a channel's patch that fit (4 KB of float)
constexpr int32_t kPatchThreads = 64; //!< a block's: a thread per bin of a 7x7 output, and some

//! The pixels a box's samples can read: rows [row0, row0 + rows), columns [col0, col0 + cols).
//! In shared memory a row takes `stride` floats, the columns made odd: bins a row apart then
//! read other banks.
struct Patch
{
    int32_t row0;
    int32_t rows;
    int32_t col0;
    int32_t cols;
    int32_t stride;
};

//! First and last map index an axis's samples between lo and hi (hi >= lo) can make a corner
//! of (cornersAt's clamps), a pixel more each side: samplePoint() rounds, and the sample
//! nearest an edge may fall an ulp past it, onto the next pixel.
EDGE_HD void patchAxis(float lo, float hi, int32_t size, int32_t& first, int32_t& count)
{
    float const top = static_cast<float>(size);
    int32_t const a = static_cast<int32_t>(fminf(fmaxf(lo, 0.0F), top)) - 1;
    int32_t const b = static_cast<int32_t>(fminf(fmaxf(hi, 0.0F), top)) + 2;
    first = a < 0 ? 0 : (a > size - 1 ? size - 1 : a);
    int32_t const last = b > size - 1 ? size - 1 : b;
    count = last - first + 1;
}

EDGE_HD Patch patchOf(Geometry const& g, int32_t height, int32_t width, Params const& p)
{
    // every sample lies between the box's two edges, whichever way round a box given
    // upside down has them
    float const y2 = g.y1 + g.binH * static_cast<float>(p.outputHeight);
    float const x2 = g.x1 + g.binW * static_cast<float>(p.outputWidth);
    Patch at{};
    patchAxis(fminf(g.y1, y2), fmaxf(g.y1, y2), height, at.row0, at.rows);
    patchAxis(fminf(g.x1, x2), fmaxf(g.x1, x2), width, at.col0, at.cols);
    at.stride = at.cols | 1;
    return at;
}

EDGE_HD bool patchFits(Patch const& at)
{
    return at.rows > 0 && at.cols > 0 && at.rows <= kPatchPixels / at.stride;
}

//! Thread t of n copies its share of `count` (at most kPatchChannels) adjacent planes' patch
//! (planeSize apart in the map, kPatchPixels apart in `patch`), a pixel of every plane a
//! step, those loads in flight together; consecutive threads take consecutive pixels of a
//! row. Pixel i's row is i / cols, worked out as a float product with the reciprocal: a
//! fitting patch has at most kPatchPixels pixels, where (i + 0.5) / cols is more than
//! 1 / (2 kPatchPixels) from a whole number and the product's rounding (< 2^-13) is not.
template <typename T>
EDGE_HD void stagePatch(T const* planes, int64_t planeSize, int32_t width, Patch const& at, int32_t count,
    int32_t t, int32_t n, float* patch)
{
    float const perRow = 1.0F / static_cast<float>(at.cols);
    for (int32_t i = t; i < at.rows * at.cols; i += n)
    {
        int32_t const r = static_cast<int32_t>((static_cast<float>(i) + 0.5F) * perRow);
        int32_t const c = i - r * at.cols;
        T const* pixel = planes + (at.row0 + r) * width + at.col0 + c;
        float v[kPatchChannels];
EDGE_UNROLL
        for (int32_t j = 0; j < kPatchChannels; ++j)
        {
            v[j] = j < count ? readOnly(pixel + j * planeSize) : 0.0F;
        }
EDGE_UNROLL
        for (int32_t j = 0; j < kPatchChannels; ++j)
        {
            patch[j * kPatchPixels + r * at.stride + c] = v[j];
        }
    }
}

//! A sample of `count` (at most K) channels' patches: bilinear()'s sums, from shared memory.
template <int32_t K>
struct PatchReader
{
    float const* patch;
    int32_t count;

    EDGE_HD void operator()(Corners const& k, float (&sample)[K]) const
    {
#if !defined(__CUDACC__)
        // the host build's check that a sample's corners lie in the copy (on the GPU,
        // compute-sanitizer's memcheck step: benchmarks/run_on_gpu.sh)
        assert(k.i00 >= 0 && k.i01 >= 0 && k.i10 >= 0 && k.i11 < kPatchPixels);
#endif
EDGE_UNROLL
        for (int32_t j = 0; j < K; ++j)
        {
            if (j < count)
            {
                float const* plane = patch + j * kPatchPixels;
                sample[j] = k.w00 * plane[k.i00] + k.w01 * plane[k.i01] + k.w10 * plane[k.i10] + k.w11 * plane[k.i11];
            }
        }
    }
};

//! Bin `bin` of `count` (at most kPatchChannels) adjacent channels: from their staged patch
//! where `patch` holds it, else from the map (planes, planeSize apart), as bin channels pools.
template <typename T>
EDGE_HD void patchBin(float const* patch, T const* planes, int64_t planeSize, Geometry const& g, Patch const& at,
    int32_t height, int32_t width, int32_t bin, int32_t count, Params const& p, float (&out)[kPatchChannels])
{
    int32_t const py = bin / p.outputWidth;
    int32_t const px = bin - py * p.outputWidth;
    if (patch != nullptr)
    {
        poolK<kPatchChannels, false>(g, height, width, py, px, p, PatchReader<kPatchChannels>{patch, count}, out,
            Frame{at.row0, at.col0, at.stride});
    }
    else
    {
        poolK<kPatchChannels, false>(
            g, height, width, py, px, p, PlaneReader<T, kPatchChannels>{opaque(planes), planeSize, count}, out);
    }
}

} // namespace roialign
} // namespace edge
