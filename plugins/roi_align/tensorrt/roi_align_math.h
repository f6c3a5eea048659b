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

//! Bilinear value of one channel plane [H, W] at (y, x) by RoIAlign's border rules.
template <typename T>
EDGE_HD float bilinear(T const* plane, int32_t height, int32_t width, float y, float x)
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
    float const v00 = static_cast<float>(plane[y0 * width + x0]);
    float const v01 = static_cast<float>(plane[y0 * width + x1]);
    float const v10 = static_cast<float>(plane[y1 * width + x0]);
    float const v11 = static_cast<float>(plane[y1 * width + x1]);
    return hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11;
}

//! Output bin (py, px) of a box on one channel plane of its level.
template <typename T>
EDGE_HD float poolBin(T const* plane, int32_t height, int32_t width, float scale, float const* box, int32_t py,
    int32_t px, Params const& p)
{
    float const offset = p.aligned ? 0.5F : 0.0F;
    float const x1 = box[0] * scale - offset;
    float const y1 = box[1] * scale - offset;
    float roiW = box[2] * scale - offset - x1;
    float roiH = box[3] * scale - offset - y1;
    if (!p.aligned)
    {
        roiW = fmaxf(roiW, 1.0F);
        roiH = fmaxf(roiH, 1.0F);
    }
    float const binH = roiH / static_cast<float>(p.outputHeight);
    float const binW = roiW / static_cast<float>(p.outputWidth);
    int32_t const gh = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int32_t>(ceilf(roiH / p.outputHeight));
    int32_t const gw = p.samplingRatio > 0 ? p.samplingRatio : static_cast<int32_t>(ceilf(roiW / p.outputWidth));
    if (gh <= 0 || gw <= 0)
    {
        return 0.0F; // an empty box under adaptive sampling has no samples
    }
    float acc = p.isMax ? -INFINITY : 0.0F;
    for (int32_t sy = 0; sy < gh; ++sy)
    {
        float const y = y1 + py * binH + (sy + 0.5F) * binH / gh;
        for (int32_t sx = 0; sx < gw; ++sx)
        {
            float const x = x1 + px * binW + (sx + 0.5F) * binW / gw;
            float const v = bilinear(plane, height, width, y, x);
            acc = p.isMax ? fmaxf(acc, v) : acc + v;
        }
    }
    return p.isMax ? acc : acc / static_cast<float>(gh * gw);
}

} // namespace roialign
} // namespace edge
