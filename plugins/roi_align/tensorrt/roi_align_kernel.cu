// CUDA kernel of the fused multi-level RoIAlign: one thread per output element
// (box, channel, bin); each box reads only the pyramid level its size maps to.
#include "roi_align_kernel.h"

#include <cuda_fp16.h>

namespace edge
{
namespace roialign
{

template <typename T>
__global__ void multiLevelRoIAlignKernel(Levels<T> levels, float const* rois, int64_t const* batchIdx,
    int32_t numRois, int32_t channels, Params p, T* out)
{
    int64_t const total = static_cast<int64_t>(numRois) * channels * p.outputHeight * p.outputWidth;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    {
        int32_t const px = static_cast<int32_t>(i % p.outputWidth);
        int32_t const py = static_cast<int32_t>((i / p.outputWidth) % p.outputHeight);
        int32_t const c = static_cast<int32_t>((i / (p.outputWidth * p.outputHeight)) % channels);
        int32_t const r = static_cast<int32_t>(i / (static_cast<int64_t>(p.outputWidth) * p.outputHeight * channels));
        float const* box = rois + 4 * r;
        int32_t const l = levelIndex(box[0], box[1], box[2], box[3], p);
        int32_t const h = levels.height[l];
        int32_t const w = levels.width[l];
        T const* plane = levels.data[l] + (batchIdx[r] * channels + c) * static_cast<int64_t>(h) * w;
        out[i] = static_cast<T>(poolBin(plane, h, w, p.spatialScales[l], box, py, px, p));
    }
}

template <typename T>
cudaError_t launch(Levels<T> const& levels, float const* rois, int64_t const* batchIdx, int32_t numRois,
    int32_t channels, Params const& p, T* out, cudaStream_t stream)
{
    int64_t const total = static_cast<int64_t>(numRois) * channels * p.outputHeight * p.outputWidth;
    if (total == 0)
    {
        return cudaSuccess;
    }
    int32_t const block = 256;
    int64_t const wanted = (total + block - 1) / block;
    int32_t const grid = static_cast<int32_t>(wanted < 65535 * 8 ? wanted : 65535 * 8); // grid-stride beyond
    multiLevelRoIAlignKernel<T><<<grid, block, 0, stream>>>(levels, rois, batchIdx, numRois, channels, p, out);
    return cudaGetLastError();
}

template cudaError_t launch<float>(
    Levels<float> const&, float const*, int64_t const*, int32_t, int32_t, Params const&, float*, cudaStream_t);
template cudaError_t launch<__half>(
    Levels<__half> const&, float const*, int64_t const*, int32_t, int32_t, Params const&, __half*, cudaStream_t);

} // namespace roialign
} // namespace edge
