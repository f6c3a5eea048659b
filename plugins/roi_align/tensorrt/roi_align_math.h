// Multi-level RoIAlign: the arithmetic of one output element, shared by the CUDA kernel
// and a host build that the tests compare against plugins/roi_align/reference.py.
// Conventions are the reference's (half-pixel corners when aligned, adaptive sampling
// when sampling_ratio is 0, samples more than a pixel outside the map count as 0).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define EDGE_HD __host__ __device__ __forceinline__
#define EDGE_UNROLL _Pragma("unroll")
#else
#define EDGE_HD inline
#define EDGE_UNROLL
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

//! p, as a value the compiler cannot see into: on the GPU it then addresses a corner p[i]
//! with one 32-bit multiply-add onto p, where knowing p's parts it rebuilt a 64-bit sum a
//! corner (5 instructions: the batch item's and the channel's offsets added to i first).
template <typename T>
EDGE_HD T const* opaque(T const* p)
{
#if defined(__CUDA_ARCH__)
    asm("" : "+l"(p));
#endif
    return p;
}

//! *p as a float; on the GPU through the read-only data cache (ld.global.nc): the maps do
//! not change while a kernel reads them, and the load is global whatever the compiler can
//! prove of p.
template <typename T>
EDGE_HD float readOnly(T const* p)
{
#if defined(__CUDA_ARCH__)
    return static_cast<float>(__ldg(p));
#else
    return static_cast<float>(*p);
#endif
}

//! Whether a sample at (y, x) reads an [H, W] map: one more than a pixel outside it is 0.
EDGE_HD bool sampleInside(int32_t height, int32_t width, float y, float x)
{
    return !(y < -1.0F || y > static_cast<float>(height) || x < -1.0F || x > static_cast<float>(width));
}

//! Where an inside sample's four corners are in an [H, W] map (pixel indices y * W + x) and
//! what each weighs, by RoIAlign's border rules. (No flag for outside samples in here: a
//! bool member and a zeroed struct cost the kernels' loops 3 instructions a value.)
struct Corners
{
    int32_t i00;
    int32_t i01;
    int32_t i10;
    int32_t i11;
    float w00;
    float w01;
    float w10;
    float w11;
};

//! Where corner indices count from: a pixel of the map, and the elements from a row to the
//! next. The map itself ({0, 0, W}); or a patch of it copied to shared memory, whose first
//! pixel is (row0, col0) of the map and whose rows are `stride` pixels (roi_align_patch.h).
struct Frame
{
    int32_t row0;
    int32_t col0;
    int32_t stride;
};

EDGE_HD Corners cornersAt(int32_t height, int32_t width, float y, float x, Frame const& f)
{
    Corners k;
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
    y0 -= f.row0;
    y1 -= f.row0;
    x0 -= f.col0;
    x1 -= f.col0;
    k.i00 = y0 * f.stride + x0;
    k.i01 = y0 * f.stride + x1;
    k.i10 = y1 * f.stride + x0;
    k.i11 = y1 * f.stride + x1;
    k.w00 = hy * hx;
    k.w01 = hy * lx;
    k.w10 = ly * hx;
    k.w11 = ly * lx;
    return k;
}

//! Corners in the map's own frame.
EDGE_HD Corners cornersAt(int32_t height, int32_t width, float y, float x)
{
    return cornersAt(height, width, y, x, Frame{0, 0, width});
}

//! Bilinear value of one channel of an [H, W] map at (y, x) by RoIAlign's border rules.
//! pixelStride: elements from a pixel's value to the next pixel's in that channel, 1 for a
//! plane of an NCHW map, the channels (rounded up to the format's vector) for channel-last ones.
template <typename T>
EDGE_HD float bilinear(T const* plane, int32_t height, int32_t width, float y, float x, int32_t pixelStride = 1)
{
    if (!sampleInside(height, width, y, x))
    {
        return 0.0F;
    }
    Corners const k = cornersAt(height, width, y, x);
    float const v00 = readOnly(plane + k.i00 * pixelStride);
    float const v01 = readOnly(plane + k.i01 * pixelStride);
    float const v10 = readOnly(plane + k.i10 * pixelStride);
    float const v11 = readOnly(plane + k.i11 * pixelStride);
    return k.w00 * v00 + k.w01 * v01 + k.w10 * v10 + k.w11 * v11;
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
    bool powersOfTwo; // gh and gw: dividing by them is multiplying by their reciprocals, exactly
    float invGh;
    float invGw;
};

EDGE_HD bool isPowerOfTwo(int32_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

//! Adaptive samples a bin along an axis: ceil(size / bins), at most the largest float below
//! 2^31 (a size past float's range is inf, and converting it to int32 is undefined on the
//! CPU); a grid that large has its samples on the map found by axisRun.
EDGE_HD int32_t adaptiveGrid(float size, int32_t bins)
{
    return static_cast<int32_t>(fminf(ceilf(size / static_cast<float>(bins)), 2147483520.0F));
}

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
    g.gh = p.samplingRatio > 0 ? p.samplingRatio : adaptiveGrid(roiH, p.outputHeight);
    g.gw = p.samplingRatio > 0 ? p.samplingRatio : adaptiveGrid(roiW, p.outputWidth);
    g.powersOfTwo = isPowerOfTwo(g.gh) && isPowerOfTwo(g.gw);
    g.invGh = g.powersOfTwo ? 1.0F / static_cast<float>(g.gh) : 0.0F;
    g.invGw = g.powersOfTwo ? 1.0F / static_cast<float>(g.gw) : 0.0F;
    return g;
}

//! Map coordinates of sample (sy, sx) of bin (py, px).
struct Point
{
    float y;
    float x;
};

//! ByInverse (gh and gw powers of two): the offsets into the bin multiplied by the grid's
//! reciprocals, which equals dividing by the grid (torchvision's way) bit for bit, without
//! a division's instructions a sample; a fused multiply-add of an exact product rounds as
//! the add did.
template <bool ByInverse>
EDGE_HD float axisPoint(float start, float bin, int32_t b, int32_t s, int32_t grid, float invGrid)
{
    float const d = (s + 0.5F) * bin;
    return start + b * bin + (ByInverse ? d * invGrid : d / grid);
}

template <bool ByInverse = false>
EDGE_HD Point samplePoint(Geometry const& g, int32_t py, int32_t px, int32_t sy, int32_t sx)
{
    return Point{axisPoint<ByInverse>(g.y1, g.binH, py, sy, g.gh, g.invGh),
        axisPoint<ByInverse>(g.x1, g.binW, px, sx, g.gw, g.invGw)};
}

//! Samples a bin along an axis past which a bounded sample loop (poolK) visits only those
//! that can land on the map: 64 reach it under adaptive sampling, a RoI 64 times the output's
//! size on its level. RoIs the models make are clipped to the image and stay below.
constexpr int32_t kVisitAll = 64;

//! Samples [begin, end) of a bin along an axis.
struct Run
{
    int32_t begin;
    int32_t end;
};

//! The first sample from `lo` on whose point along the axis is past `edge` (or at it, where
//! !strict); the grid if none is. Points rise with the sample's number: bisection.
template <bool ByInverse>
EDGE_HD int32_t firstPast(float start, float bin, int32_t b, int32_t grid, float invGrid, int32_t lo, float edge,
    bool strict)
{
    int32_t hi = grid;
    while (lo < hi)
    {
        int32_t const mid = lo + (hi - lo) / 2;
        float const v = axisPoint<ByInverse>(start, bin, b, mid, grid, invGrid);
        bool const past = strict ? v > edge : v >= edge;
        lo = past ? lo : mid + 1;
        hi = past ? mid : hi;
    }
    return lo;
}

//! The samples of bin b along one axis for a sample loop to visit: the whole grid; or, where
//! Bounded and past kVisitAll samples, the run of those whose point lies in [-1, size], the
//! others being zeros (sampleInside). In a bin of positive size the points the loop computes
//! rise with the sample's number (each rounding step is monotonic), so those on the map are
//! consecutive: a RoI of 10^6 pixels on a small map then visits its few samples there, not
//! its 10^9 samples a bin, for minutes on a GPU.
template <bool ByInverse, bool Bounded>
EDGE_HD Run axisRun(float start, float bin, int32_t b, int32_t grid, float invGrid, int32_t size)
{
    if (!Bounded || grid <= kVisitAll || !(bin > 0.0F))
    {
        return Run{0, grid};
    }
    int32_t const begin = firstPast<ByInverse>(start, bin, b, grid, invGrid, 0, -1.0F, false);
    return Run{begin, firstPast<ByInverse>(start, bin, b, grid, invGrid, begin, static_cast<float>(size), true)};
}

//! Bilinear value of sample (sy, sx) of bin (py, px).
template <typename T>
EDGE_HD float sampleAt(T const* plane, int32_t height, int32_t width, Geometry const& g, int32_t py, int32_t px,
    int32_t sy, int32_t sx, int32_t pixelStride = 1)
{
    Point const at = samplePoint(g, py, px, sy, sx);
    return bilinear(plane, height, width, at.y, at.x, pixelStride);
}

//! The sample loops of poolK(), a division or a multiplication a sample (samplePoint).
template <bool ByInverse, bool Bounded, int32_t K, typename Reader>
EDGE_HD void poolKSamples(Geometry const& geom, int32_t height, int32_t width, int32_t py, int32_t px,
    Params const& p, Reader const& reader, float (&out)[K], Frame const& frame)
{
    Run const rows = axisRun<ByInverse, Bounded>(geom.y1, geom.binH, py, geom.gh, geom.invGh, height);
    Run const cols = axisRun<ByInverse, Bounded>(geom.x1, geom.binW, px, geom.gw, geom.invGw, width);
    // the samples left out are zeros: nothing to a sum, and a maximum starts at their 0
    bool const leftOut = rows.begin > 0 || rows.end < geom.gh || cols.begin > 0 || cols.end < geom.gw;
EDGE_UNROLL
    for (int32_t j = 0; j < K; ++j)
    {
        out[j] = p.isMax ? (leftOut ? 0.0F : -INFINITY) : 0.0F;
    }
    for (int32_t sy = rows.begin; sy < rows.end; ++sy)
    {
        for (int32_t sx = cols.begin; sx < cols.end; ++sx)
        {
            Point const at = samplePoint<ByInverse>(geom, py, px, sy, sx);
            float sample[K] = {};
            if (sampleInside(height, width, at.y, at.x))
            {
                reader(cornersAt(height, width, at.y, at.x, frame), sample);
            }
EDGE_UNROLL
            for (int32_t j = 0; j < K; ++j)
            {
                out[j] = p.isMax ? fmaxf(out[j], sample[j]) : out[j] + sample[j];
            }
        }
    }
}

//! K values of one bin pooled from its samples: reader(k, sample) fills the K values of a
//! sample whose corners and weights are k (one inside the map; outside ones are 0), summed
//! (avg) or maxed in sample order; an empty box under adaptive sampling has no samples and
//! pools zeros. Every kernel but sample lanes pools through here. frame: where the reader's
//! corner indices count from (cornersAt). Bounded: the loop visits only the samples that can
//! land on the map where a grid is large (axisRun), which costs the patch and bin-channel
//! kernels registers they have not got; launch() gives them fixed sampling ratios only.
template <int32_t K, bool Bounded = true, typename Reader>
EDGE_HD void poolK(Geometry const& geom, int32_t height, int32_t width, int32_t py, int32_t px, Params const& p,
    Reader const& reader, float (&out)[K], Frame const& frame)
{
EDGE_UNROLL
    for (int32_t j = 0; j < K; ++j)
    {
        out[j] = 0.0F;
    }
    if (geom.gh <= 0 || geom.gw <= 0)
    {
        return;
    }
    if (geom.powersOfTwo)
    {
        poolKSamples<true, Bounded, K>(geom, height, width, py, px, p, reader, out, frame);
    }
    else
    {
        poolKSamples<false, Bounded, K>(geom, height, width, py, px, p, reader, out, frame);
    }
EDGE_UNROLL
    for (int32_t j = 0; j < K; ++j)
    {
        out[j] = p.isMax ? out[j] : out[j] / (static_cast<float>(geom.gh) * static_cast<float>(geom.gw));
    }
}

//! poolK with corners in the map's own frame.
template <int32_t K, bool Bounded = true, typename Reader>
EDGE_HD void poolK(Geometry const& geom, int32_t height, int32_t width, int32_t py, int32_t px, Params const& p,
    Reader const& reader, float (&out)[K])
{
    poolK<K, Bounded>(geom, height, width, py, px, p, reader, out, Frame{0, 0, width});
}

//! A sample of one channel whose pixels are pixelStride apart: bilinear()'s sum.
template <typename T>
struct ChannelReader
{
    T const* plane;
    int32_t pixelStride;

    EDGE_HD void operator()(Corners const& k, float (&sample)[1]) const
    {
        sample[0] = k.w00 * readOnly(plane + k.i00 * pixelStride) + k.w01 * readOnly(plane + k.i01 * pixelStride)
            + k.w10 * readOnly(plane + k.i10 * pixelStride) + k.w11 * readOnly(plane + k.i11 * pixelStride);
    }
};

//! Output bin (py, px) of a box on one channel of its level (pixelStride: bilinear's).
template <typename T>
EDGE_HD float poolBin(T const* plane, int32_t height, int32_t width, float scale, float const* box, int32_t py,
    int32_t px, Params const& p, int32_t pixelStride = 1)
{
    float out[1];
    poolK<1>(boxGeometry(scale, box, p), height, width, py, px, p, ChannelReader<T>{plane, pixelStride}, out);
    return out[0];
}

} // namespace roialign
} // namespace edge
