// Multi-level RoIAlign on channel-last maps: the arithmetic of the kernels for TensorRT's
// kHWC, kHWC8 and kHWC16 formats, shared by the CUDA kernels and the host build the tests
// compare against plugins/roi_align/reference.py (roi_align_math.h: the rest).
#pragma once

#include "roi_align_math.h"

namespace edge
{
namespace roialign
{

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
    return poolBin(opaque(image + c), height, width, scale, box, py, px, p, stride);
}

// Channel vectors: a thread pools 16 bytes of adjacent channels of one bin (4 float32 or
// 8 float16 channels), one 128-bit load a corner on the GPU. The sample's corners and
// weights are then worked out once for those channels, where a thread per element works
// them out for each; the same sums, in the same order, as channelsLastElement's.

//! V adjacent channels from p, as floats: on the GPU one 16-byte load (V * sizeof(T) == 16,
//! p 16-byte aligned: launch() checks both), on the host (the tests' build) one at a time.
template <typename T, int32_t V>
EDGE_HD void loadChannels(T const* p, float (&out)[V])
{
#if defined(__CUDA_ARCH__)
    static_assert(V * sizeof(T) == 16, "a channel vector is 16 bytes on the GPU");
    uint4 const raw = __ldg(reinterpret_cast<uint4 const*>(p)); // the read-only cache, as readOnly()
    T const* v = reinterpret_cast<T const*>(&raw);
#else
    T const* v = p;
#endif
EDGE_UNROLL
    for (int32_t i = 0; i < V; ++i)
    {
        out[i] = static_cast<float>(v[i]);
    }
}

//! V floats to adjacent channels at p, as loadChannels reads them.
template <typename T, int32_t V>
EDGE_HD void storeChannels(T* p, float const (&in)[V])
{
#if defined(__CUDA_ARCH__)
    static_assert(V * sizeof(T) == 16, "a channel vector is 16 bytes on the GPU");
    uint4 raw;
    T* v = reinterpret_cast<T*>(&raw);
EDGE_UNROLL
    for (int32_t i = 0; i < V; ++i)
    {
        v[i] = static_cast<T>(in[i]);
    }
    *reinterpret_cast<uint4*>(p) = raw;
#else
    for (int32_t i = 0; i < V; ++i)
    {
        p[i] = static_cast<T>(in[i]);
    }
#endif
}

//! A sample of V adjacent channels of a channel-last map, pixels `stride` apart: bilinear()'s
//! sums, a 16-byte load a corner on the GPU (the four loads in flight at once: 72 registers
//! for float16, where capping them at 64 spilled).
template <typename T, int32_t V>
struct VectorReader
{
    T const* base;
    int32_t stride;

    EDGE_HD void operator()(Corners const& k, float (&sample)[V]) const
    {
        float v00[V];
        float v01[V];
        float v10[V];
        float v11[V];
        loadChannels<T, V>(base + k.i00 * stride, v00);
        loadChannels<T, V>(base + k.i01 * stride, v01);
        loadChannels<T, V>(base + k.i10 * stride, v10);
        loadChannels<T, V>(base + k.i11 * stride, v11);
EDGE_UNROLL
        for (int32_t i = 0; i < V; ++i)
        {
            sample[i] = k.w00 * v00[i] + k.w01 * v01[i] + k.w10 * v10[i] + k.w11 * v11[i];
        }
    }
};

//! Output vector g (of a box's oh * ow * stride / V; stride a multiple of V) of a channel-last
//! map `image` of one batch item: channels c0 .. c0 + V - 1 of one bin, padding channels 0.
template <typename T, int32_t V>
EDGE_HD void channelsLastVector(T const* image, int32_t height, int32_t width, float scale, float const* box,
    int32_t channels, int32_t stride, int32_t g, Params const& p, float (&out)[V])
{
    int32_t const groups = stride / V;
    int32_t const bin = g / groups;
    int32_t const c0 = (g - bin * groups) * V;
    int32_t const py = bin / p.outputWidth;
    poolK<V>(boxGeometry(scale, box, p), height, width, py, bin - py * p.outputWidth, p,
        VectorReader<T, V>{opaque(image + c0), stride}, out);
EDGE_UNROLL
    for (int32_t i = 0; i < V; ++i)
    {
        out[i] = c0 + i >= channels ? 0.0F : out[i]; // padding channels
    }
}

} // namespace roialign
} // namespace edge
