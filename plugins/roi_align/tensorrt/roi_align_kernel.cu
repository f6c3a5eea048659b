// CUDA kernels of the fused multi-level RoIAlign; each box reads only the pyramid level its
// size maps to. On NCHW maps, four thread layouts: a thread per output element (channel, bin)
// of a box, for any sampling; bin channels, a thread per bin of 8 channels; the patch layout
// (roi_align_patch.h), a block per box and 4 channels, which copies the pixels the box reads
// to shared memory first; and sample lanes (roi_align_math.h), a warp per row of bins with one
// sample a lane, for sampling ratios 1, 2 and 4. On channel-last maps (kHWC, kHWC8, kHWC16),
// channels fastest: a thread per output element, or per 16 bytes of channels.
#include "roi_align_kernel.h"

#include <cuda_fp16.h>

namespace edge
{
namespace roialign
{

template <typename T>
struct Level
{
    T const* data;
    int32_t height;
    int32_t width;
    float scale;
};

//! Level l of the pyramid. Indexing the kernel parameters with a runtime value makes nvcc copy
//! them to the stack (136 bytes a thread on sm_87 and sm_90); constant indices keep them in the
//! parameter bank.
template <typename T>
__device__ __forceinline__ Level<T> pickLevel(Levels<T> const& levels, Params const& p, int32_t l)
{
    Level<T> out{levels.data[0], levels.height[0], levels.width[0], p.spatialScales[0]};
#pragma unroll
    for (int32_t k = 1; k < kMaxLevels; ++k)
    {
        if (k == l)
        {
            out = Level<T>{levels.data[k], levels.height[k], levels.width[k], p.spatialScales[k]};
        }
    }
    return out;
}

//! A block's box: its corners, its level, the map of its batch item and its output. depth:
//! values a pixel holds, the channels of NCHW maps (planes apart) or the channel stride of
//! channel-last ones (adjacent); the box's output is depth x bins values either way.
template <typename T>
struct BlockRoi
{
    Box box;
    Level<T> level;
    T const* image;
    T* out;
    int32_t elements; // of its output, padding channels included: < 2^31, checked by launch()
};

template <typename T>
__device__ __forceinline__ BlockRoi<T> blockRoi(
    Levels<T> const& levels, float const* rois, int64_t const* batchIdx, Params const& p, T* out, int32_t depth)
{
    int32_t const r = blockIdx.x;
    Box const box = readBox(rois, r);
    Level<T> const level = pickLevel(levels, p, levelIndex(box.v[0], box.v[1], box.v[2], box.v[3], p));
    int32_t const elements = depth * p.outputHeight * p.outputWidth;
    T const* image = level.data + batchIdx[r] * static_cast<int64_t>(level.height) * level.width * depth;
    return BlockRoi<T>{box, level, image, out + static_cast<int64_t>(r) * elements, elements};
}

//! grid.x: one box each, so its level and corners are the same for the whole block;
//! grid.y and the threads: its channels x bins, bins fastest (neighbouring threads read
//! neighbouring samples of one channel plane, and write neighbouring outputs).
template <typename T>
__global__ void multiLevelRoIAlignKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    BlockRoi<T> const roi = blockRoi(levels, rois, batchIdx, p, out, channels);
    Level<T> const& l = roi.level;
    int32_t const bins = p.outputHeight * p.outputWidth;
    int64_t const planeSize = static_cast<int64_t>(l.height) * l.width;
    for (int32_t i = blockIdx.y * blockDim.x + threadIdx.x; i < roi.elements; i += gridDim.y * blockDim.x)
    {
        int32_t const c = i / bins;
        int32_t const bin = i - c * bins;
        int32_t const py = bin / p.outputWidth;
        int32_t const px = bin - py * p.outputWidth;
        roi.out[i] = static_cast<T>(
            poolBin(opaque(roi.image + c * planeSize), l.height, l.width, l.scale, roi.box.v, py, px, p));
    }
}

//! NCHW maps, a thread per bin of kBinChannels channels. grid.x: one box each; grid.y and the
//! threads: its channel groups x bins, bins fastest. Three 256-thread blocks an SM at least:
//! left alone, float16 on sm_87 took 88 registers (two blocks); held to 85 it takes 80 and
//! spills nothing.
template <typename T>
__global__ void __launch_bounds__(256, 3) binChannelsKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    // its own prologue, not blockRoi's: through that, at this kernel's register bound, it
    // spilled 12 bytes (the same sums, another order)
    int32_t const r = blockIdx.x;
    int32_t const bins = p.outputHeight * p.outputWidth;
    int32_t const work = (channels + kBinChannels - 1) / kBinChannels * bins;
    Box const read = readBox(rois, r);
    float const* box = read.v;
    Level<T> const l = pickLevel(levels, p, levelIndex(box[0], box[1], box[2], box[3], p));
    int64_t const planeSize = static_cast<int64_t>(l.height) * l.width;
    T const* image = l.data + batchIdx[r] * channels * planeSize;
    T* roiOut = out + static_cast<int64_t>(r) * channels * bins;
    for (int32_t i = blockIdx.y * blockDim.x + threadIdx.x; i < work; i += gridDim.y * blockDim.x)
    {
        int32_t const group = i / bins;
        int32_t const bin = i - group * bins;
        int32_t const c0 = group * kBinChannels;
        int32_t const count = channels - c0 < kBinChannels ? channels - c0 : kBinChannels;
        float pooled[kBinChannels];
        binChannels<T, kBinChannels>(
            image + c0 * planeSize, planeSize, l.height, l.width, l.scale, box, bin, count, p, pooled);
#pragma unroll
        for (int32_t j = 0; j < kBinChannels; ++j)
        {
            if (j < count)
            {
                roiOut[(c0 + j) * bins + bin] = static_cast<T>(pooled[j]);
            }
        }
    }
}

//! NCHW maps, the patch layout (roi_align_patch.h). grid.x: one box each; grid.y: its groups
//! of kPatchChannels channels; the threads: first the patch's pixels, then the box's bins.
//! Twelve blocks an SM at least (24 warps; the shared buffers: 192 KB): left alone, it took
//! 85-86 registers (11 blocks); held to 85 it takes 80 and spills nothing.
template <typename T>
__global__ void __launch_bounds__(kPatchThreads, 12) patchKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    __shared__ float patch[kPatchChannels * kPatchPixels];
    BlockRoi<T> const roi = blockRoi(levels, rois, batchIdx, p, out, channels);
    Level<T> const& l = roi.level;
    Geometry const g = boxGeometry(l.scale, roi.box.v, p);
    Patch const at = patchOf(g, l.height, l.width, p);
    bool const staged = patchFits(at); // the same for the whole block: it may wait at barriers
    int32_t const bins = p.outputHeight * p.outputWidth;
    int64_t const planeSize = static_cast<int64_t>(l.height) * l.width;
    for (int32_t c0 = blockIdx.y * kPatchChannels; c0 < channels; c0 += gridDim.y * kPatchChannels)
    {
        int32_t const count = channels - c0 < kPatchChannels ? channels - c0 : kPatchChannels;
        T const* planes = roi.image + c0 * planeSize;
        if (staged)
        {
            __syncthreads(); // the last group's bins are read
            stagePatch(planes, planeSize, l.width, at, count, threadIdx.x, blockDim.x, patch);
            __syncthreads();
        }
        for (int32_t bin = threadIdx.x; bin < bins; bin += blockDim.x)
        {
            float pooled[kPatchChannels];
            patchBin(staged ? patch : nullptr, planes, planeSize, g, at, l.height, l.width, bin, count, p, pooled);
#pragma unroll
            for (int32_t j = 0; j < kPatchChannels; ++j)
            {
                if (j < count)
                {
                    roi.out[(c0 + j) * bins + bin] = static_cast<T>(pooled[j]);
                }
            }
        }
    }
}

//! Channel-last maps and output. grid.x: one box each; grid.y and the threads: its bins x
//! channels, channels fastest (roi_align_math.h, channelsLastElement).
template <typename T>
__global__ void channelsLastKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    BlockRoi<T> const roi = blockRoi(levels, rois, batchIdx, p, out, levels.channelStride);
    Level<T> const& l = roi.level;
    for (int32_t i = blockIdx.y * blockDim.x + threadIdx.x; i < roi.elements; i += gridDim.y * blockDim.x)
    {
        roi.out[i] = static_cast<T>(channelsLastElement(
            roi.image, l.height, l.width, l.scale, roi.box.v, channels, levels.channelStride, i, p));
    }
}

//! Channel-last maps and output, a thread per 16 bytes of a bin's channels (V of them).
//! grid.x: one box each; grid.y and the threads: its bins x channel vectors, channels fastest.
template <typename T>
__global__ void channelVectorsKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    constexpr int32_t V = 16 / sizeof(T);
    BlockRoi<T> const roi = blockRoi(levels, rois, batchIdx, p, out, levels.channelStride);
    Level<T> const& l = roi.level;
    for (int32_t g = blockIdx.y * blockDim.x + threadIdx.x; g < roi.elements / V; g += gridDim.y * blockDim.x)
    {
        float pooled[V];
        channelsLastVector<T, V>(
            roi.image, l.height, l.width, l.scale, roi.box.v, channels, levels.channelStride, g, p, pooled);
        storeChannels<T, V>(roi.out + g * V, pooled);
    }
}

//! grid.x: one box each; grid.y and the warps: its (channel, output row) pairs, a warp each.
template <typename T>
__global__ void sampleLanesKernel(
    Levels<T> levels, float const* rois, int64_t const* batchIdx, int32_t channels, Params p, T* out)
{
    int32_t const lane = threadIdx.x % kWarp;
    int32_t const warps = blockDim.x / kWarp;
    int32_t const rows = channels * p.outputHeight;
    BlockRoi<T> const roi = blockRoi(levels, rois, batchIdx, p, out, channels);
    Level<T> const& level = roi.level;
    Geometry const g = boxGeometry(level.scale, roi.box.v, p);
    Lanes const l = lanesOf(p);
    int64_t const planeSize = static_cast<int64_t>(level.height) * level.width;
    // row is the same for every lane of a warp, so all 32 take part in each shuffle
    for (int32_t row = blockIdx.y * warps + threadIdx.x / kWarp; row < rows; row += gridDim.y * warps)
    {
        int32_t const c = row / p.outputHeight;
        int32_t const py = row - c * p.outputHeight;
        T const* plane = opaque(roi.image + c * planeSize);
        for (int32_t pass = 0; pass < l.passes; ++pass)
        {
            float v = laneSample(plane, level.height, level.width, g, l, py, pass, lane, p);
            for (int32_t step = l.samples / 2; step > 0; step /= 2)
            {
                v = combine(v, __shfl_xor_sync(0xffffffffU, v, step), p);
            }
            int32_t const px = laneBin(l, pass, lane);
            if (px < p.outputWidth && lane % l.samples == 0)
            {
                roi.out[row * p.outputWidth + px] = static_cast<T>(finish(v, l, p));
            }
        }
    }
}

// host code: NVRTC (plugins/roi_align/nvrtc.py, where nvcc is missing) compiles the kernels alone
#if !defined(__CUDACC_RTC__)
//! Whether the channel-vector kernel reads these maps: a stride of whole 16-byte vectors,
//! every map and the output 16-byte aligned (a batch item's map then is too).
template <typename T>
bool channelVectorsApply(Levels<T> const& levels, int32_t numLevels, T const* out)
{
    constexpr int32_t V = 16 / sizeof(T);
    bool aligned = reinterpret_cast<uintptr_t>(out) % 16 == 0;
    for (int32_t l = 0; l < numLevels; ++l)
    {
        aligned = aligned && reinterpret_cast<uintptr_t>(levels.data[l]) % 16 == 0;
    }
    return levels.channelStride > 0 && levels.channelStride % V == 0 && aligned;
}

template <typename T>
cudaError_t launch(Levels<T> const& levels, float const* rois, int64_t const* batchIdx, int32_t numRois,
    int32_t channels, Params const& p, T* out, cudaStream_t stream, Mapping mapping)
{
    bool const channelsLast = levels.channelStride != 0;
    int32_t const stride = channelsLast ? levels.channelStride : channels;
    int64_t const perRoi = static_cast<int64_t>(stride) * p.outputHeight * p.outputWidth;
    bool const lanes = mapping == Mapping::kSampleLanes; // kAuto: roi_align_kernel.h
    bool const binGroups = mapping == Mapping::kBinChannels;
    bool const patches = mapping == Mapping::kPatch;
    bool const vectorsApply = channelsLast && channelVectorsApply(levels, p.numLevels, out);
    bool const vectors = mapping == Mapping::kChannelVectors || (mapping == Mapping::kAuto && vectorsApply);
    if (numRois < 0 || perRoi < 0 || perRoi >= (int64_t{1} << 31) || (lanes && !sampleLanesApply(p))
        || ((binGroups || patches) && !groupedLayoutsApply(p)) || stride < channels
        || (channelsLast && (lanes || binGroups || patches)) || (vectors && !vectorsApply))
    {
        return cudaErrorInvalidValue;
    }
    for (int32_t l = 0; l < p.numLevels; ++l)
    {
        // bilinear() indexes a map of one batch item (one plane of an NCHW one) in 32 bits
        int64_t const elements = static_cast<int64_t>(levels.height[l]) * levels.width[l] * (channelsLast ? stride : 1);
        if (elements >= (int64_t{1} << 31))
        {
            return cudaErrorInvalidValue;
        }
    }
    if (numRois == 0 || perRoi == 0)
    {
        return cudaSuccess;
    }
    int32_t const block = patches ? kPatchThreads : 256;
    int64_t perBlock = lanes ? block / kWarp : block; // rows of bins, or bins
    int64_t work = perRoi; // a thread per element
    if (lanes)
    {
        work = static_cast<int64_t>(channels) * p.outputHeight;
    }
    else if (vectors)
    {
        work = perRoi / (16 / sizeof(T));
    }
    else if (binGroups)
    {
        work = static_cast<int64_t>(channels + kBinChannels - 1) / kBinChannels * p.outputHeight * p.outputWidth;
    }
    else if (patches)
    {
        work = (channels + kPatchChannels - 1) / kPatchChannels; // a block a group of channels
        perBlock = 1;
    }
    int64_t const chunks = (work + perBlock - 1) / perBlock;
    dim3 const grid(static_cast<uint32_t>(numRois), static_cast<uint32_t>(chunks < 65535 ? chunks : 65535));
    if (vectors)
    {
        channelVectorsKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    else if (channelsLast)
    {
        channelsLastKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    else if (binGroups)
    {
        binChannelsKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    else if (patches)
    {
        patchKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    else if (lanes)
    {
        sampleLanesKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    else
    {
        multiLevelRoIAlignKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, channels, p, out);
    }
    return cudaGetLastError();
}

template cudaError_t launch<float>(Levels<float> const&, float const*, int64_t const*, int32_t, int32_t,
    Params const&, float*, cudaStream_t, Mapping);
template cudaError_t launch<__half>(Levels<__half> const&, float const*, int64_t const*, int32_t, int32_t,
    Params const&, __half*, cudaStream_t, Mapping);
#endif

} // namespace roialign
} // namespace edge
