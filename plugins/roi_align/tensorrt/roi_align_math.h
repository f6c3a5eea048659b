// Multi-level RoIAlign: the arithmetic of one output element, shared by the CUDA kernel
// and a host build that the tests compare against plugins/roi_align/reference.py.
// Conventions are the reference's (half-pixel corners when aligned, adaptive sampling
// when sampling_ratio is 0, samples more than a pixel outside the map count as 0).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define EDGE_HD __host__ __device__ __forceinline__
#else
#define EDGE_HD inline
#endif

namespace edge
{
namespace roialign
{

constexpr int kMaxLevels = 5;

struct Params
{
    int32_t numLevels;
    int32_t minLevel;
    int32_t outputHeight;
    int32_t outputWidth;
    int32_t samplingRatio;
    int32_t aligned;
    int32_t isMax;
    int32_t canonicalLevel;
    float canonicalSize;
    float spatialScales[kMaxLevels];
};

//! The parameters as the ONNX node's attributes give them (spatialScales: numLevels values).
inline Params makeParams(int32_t numLevels, int32_t minLevel, int32_t outputHeight, int32_t outputWidth,
    int32_t samplingRatio, int32_t aligned, int32_t isMax, int32_t canonicalLevel, float canonicalSize,
    float const* spatialScales)
{
    Params p{};
    p.numLevels = numLevels;
    p.minLevel = minLevel;
    p.outputHeight = outputHeight;
    p.outputWidth = outputWidth;
    p.samplingRatio = samplingRatio;
    p.aligned = aligned;
    p.isMax = isMax;
    p.canonicalLevel = canonicalLevel;
    p.canonicalSize = canonicalSize;
    for (int32_t l = 0; l < numLevels && l < kMaxLevels; ++l)
    {
        p.spatialScales[l] = spatialScales[l];
    }
    return p;
}

//! A box as the kernels read it. One with a NaN or inf coordinate pools zeros (reference.py):
//! it is read as a point box so far outside every map that all its samples are zero, where
//! an adaptive grid of ceil(inf) samples would never end.
struct Box
{
    float v[4];
};

constexpr float kOutsideRoi = -1e4F; // OUTSIDE_ROI in reference.py

EDGE_HD bool isFinite(float x)
{
    return fabsf(x) <= 3.402823466e38F; // false for inf and for NaN, which compares false
}

EDGE_HD Box readBox(float const* rois, int64_t r)
{
    float const* src = rois + 4 * r;
    bool const finite = isFinite(src[0]) && isFinite(src[1]) && isFinite(src[2]) && isFinite(src[3]);
    Box b{};
    for (int32_t i = 0; i < 4; ++i)
    {
        b.v[i] = finite ? src[i] : kOutsideRoi;
    }
    return b;
}

//! FPN level of a box: clamp(floor(k0 + log2(sqrt(area) / s0)), min, max), as an index from 0.
EDGE_HD int32_t levelIndex(float x1, float y1, float x2, float y2, Params const& p)
{
    float const area = fmaxf((x2 - x1) * (y2 - y1), 0.0F);
    float const k = floorf(static_cast<float>(p.canonicalLevel) + log2f(sqrtf(area) / p.canonicalSize + 1e-6F));
    int32_t level = static_cast<int32_t>(k);
    int32_t const maxLevel = p.minLevel + p.numLevels - 1;
    level = level < p.minLevel ? p.minLevel : (level > maxLevel ? maxLevel : level);
    return level - p.minLevel;
}

//! Bilinear value of one channel of an [H, W] map at (y, x) by RoIAlign's border rules.
//! pixelStride: elements from a pixel's value to the next pixel's in that channel, 1 for a
//! plane of an NCHW map, the channels (rounded up to the format's vector) for channel-last ones.
template <typename T>
EDGE_HD float bilinear(T const* plane, int32_t height, int32_t width, float y, float x, int32_t pixelStride = 1)
{
    if (y < -1.0F || y > static_cast<float>(height) || x < -1.0F || x > static_cast<float>(width))
    {
        return 0.0F;
    }
    y = fmaxf(y, 0.0F);
    x = fmaxf(x, 0.0F);
    int32_t y0 = static_cast<int32_t>(y);
    int32_t x0 = static_cast<int32_t>(x);
    int32_t y1;
    int32_t x1;
    if (y0 >= height - 1)
    {
        y0 = y1 = height - 1;
        y = static_cast<float>(y0);
    }
    else
    {
        y1 = y0 + 1;
    }
    if (x0 >= width - 1)
    {
        x0 = x1 = width - 1;
        x = static_cast<float>(x0);
    }
    else
    {
        x1 = x0 + 1;
    }
    float const ly = y - static_cast<float>(y0);
    float const lx = x - static_cast<float>(x0);
    float const hy = 1.0F - ly;
    float const hx = 1.0F - lx;
    // 32-bit offsets: launch() holds a map of one batch item below 2^31 elements
    float const v00 = static_cast<float>(plane[(y0 * width + x0) * pixelStride]);
    float const v01 = static_cast<float>(plane[(y0 * width + x1) * pixelStride]);
    float const v10 = static_cast<float>(plane[(y1 * width + x0) * pixelStride]);
    float const v11 = static_cast<float>(plane[(y1 * width + x1) * pixelStride]);
    return hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11;
}

//! A box on its level: corner, bin size and samples per bin along each axis.
struct Geometry
{
    float x1;
    float y1;
    float binW;
    float binH;
    int32_t gh;
    int32_t gw;
};

EDGE_HD Geometry boxGeometry(float scale, float const* box, Params const& p)
{
    float const offset = p.aligned ? 0.5F : 0.0F;
    Geometry g{};
    g.x1 = box[0] * scale - offset;
    g.y1 = box[1] * scale - offset;
    float roiW = box[2] * scale - offset - g.x1;
    float roiH = box[3] * scale - offset - g.y1;
    if (!p.aligned)
    {
        roiW = fmaxf(roiW, 1.0F);
        roiH = fmaxf(roiH, 1.0F);
    }
    g.binH = roiH / static_cast<float>(p.outputHeight);
    g.binW = roiW / static_cast<float>(p.outputWidth);
    g.gh = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int32_t>(ceilf(roiH / p.outputHeight));
    g.gw = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int32_t>(ceilf(roiW / p.outputWidth));
    return g;
}

//! Bilinear value of sample (sy, sx) of bin (py, px).
template <typename T>
EDGE_HD float sampleAt(T const* plane, int32_t height, int32_t width, Geometry const& g, int32_t py, int32_t px,
    int32_t sy, int32_t sx, int32_t pixelStride = 1)
{
    float const y = g.y1 + py * g.binH + (sy + 0.5F) * g.binH / g.gh;
    float const x = g.x1 + px * g.binW + (sx + 0.5F) * g.binW / g.gw;
    return bilinear(plane, height, width, y, x, pixelStride);
}

//! Output bin (py, px) of a box on one channel of its level (pixelStride: bilinear's).
template <typename T>
EDGE_HD float poolBin(T const* plane, int32_t height, int32_t width, float scale, float const* box, int32_t py,
    int32_t px, Params const& p, int32_t pixelStride = 1)
{
    Geometry const g = boxGeometry(scale, box, p);
    if (g.gh <= 0 || g.gw <= 0)
    {
        return 0.0F; // an empty box under adaptive sampling has no samples
    }
    float acc = p.isMax ? -INFINITY : 0.0F;
    for (int32_t sy = 0; sy < g.gh; ++sy)
    {
        for (int32_t sx = 0; sx < g.gw; ++sx)
        {
            float const v = sampleAt(plane, height, width, g, py, px, sy, sx, pixelStride);
            acc = p.isMax ? fmaxf(acc, v) : acc + v;
        }
    }
    return p.isMax ? acc : acc / static_cast<float>(g.gh * g.gw);
}

// Channel-last maps, TensorRT's kHWC (FP32), kHWC8 and kHWC16 (FP16): the value of channel c
// at pixel (y, x) is at (y * W + x) * stride + c, stride the channels rounded up to the
// format's vector (1, 8 or 16); the output [R, C, oh, ow] is laid out the same way,
// (r * oh * ow + bin) * stride + c. A thread per output element, channels fastest: a warp
// reads 32 adjacent channels of each corner it samples, and writes 32 adjacent outputs.

//! Elements between neighbouring pixels of a channel-last map of `channels` in vectors of `vector`.
EDGE_HD int32_t channelStride(int32_t channels, int32_t vector)
{
    return (channels + vector - 1) / vector * vector;
}

//! Output element i (of a box's oh * ow * stride) of a channel-last map `image` of one batch
//! item; the padding channels past `channels` are written as 0.
template <typename T>
EDGE_HD float channelsLastElement(T const* image, int32_t height, int32_t width, float scale, float const* box,
    int32_t channels, int32_t stride, int32_t i, Params const& p)
{
    int32_t const bin = i / stride;
    int32_t const c = i - bin * stride;
    if (c >= channels)
    {
        return 0.0F;
    }
    int32_t const py = bin / p.outputWidth;
    int32_t const px = bin - py * p.outputWidth;
    return poolBin(image + c, height, width, scale, box, py, px, p, stride);
}

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
