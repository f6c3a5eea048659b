// Launcher of the multi-level RoIAlign kernel (roi_align_kernel.cu).
#pragma once

#include "roi_align_channels_last.h"
#include "roi_align_lanes.h"
#include "roi_align_patch.h"

#include <cuda_runtime_api.h>

namespace edge
{
namespace roialign
{

//! The pyramid, finest level first; each level is [N, C, H, W]. channelStride 0: NCHW maps
//! (TensorRT's kLINEAR); else channel-last ones, [N, H, W, channelStride] with the channels
//! first (kHWC: stride C; kHWC8 and kHWC16: C rounded up to 8 or 16), the output then too.
template <typename T>
struct Levels
{
    T const* data[kMaxLevels];
    int32_t height[kMaxLevels];
    int32_t width[kMaxLevels];
    int32_t channelStride;
};

//! Which thread layout pools the bins. On NCHW maps kAuto is a thread per bin: on an H200
//! it took 0.38 ms where sample lanes took 1.08 (1000 RoIs, 256 channels, 1024x2048;
//! benchmarks/results/gpu_roi_align_h200_fp32.json). Sample lanes stay selectable. On
//! channel-last maps a thread per bin is a thread per output element, and kAuto is channel
//! vectors (a thread per 16 bytes of a bin's channels) where the channel stride is a
//! multiple of the vector and the maps and output are 16-byte aligned, else a thread per
//! element; neither is timed on a GPU yet. kBinChannels (NCHW maps, fixed sampling ratios): a
//! thread per bin of 8 channels, not timed yet either. The TensorRT plugin offers the builder a
//! thread per element and the grouped kernel of its format as tactics, and runs the faster it
//! timed. kPatch (NCHW maps, fixed sampling ratios): a block per box and 4 channels, the pixels
//! it reads copied to shared memory first (roi_align_patch.h); a third tactic on NCHW maps, not
//! timed yet. Under adaptive sampling a box's grid grows with it, and only the loops of a thread
//! per bin and of the channel-last kernels visit just the samples on the map (poolK's Bounded).
enum class Mapping : int32_t
{
    kAuto = 0,
    kThreadPerBin = 1,
    kSampleLanes = 2,
    kChannelVectors = 3,
    kBinChannels = 4,
    kPatch = 5,
};

//! rois: [R, 4] float boxes in image pixels; batchIdx: [R]; out: [R, C, outputHeight, outputWidth]
//! in the maps' layout. cudaErrorInvalidValue for sizes past 2^31 elements per box or map of
//! a batch item, a channel stride below the channels, or a mapping where it does not apply
//! (kSampleLanes: NCHW maps, sampling ratio 1, 2 or 4; kBinChannels, kPatch: NCHW maps and a
//! fixed sampling ratio;
//! kChannelVectors: channel-last maps whose stride is a multiple of 16 bytes, maps and output
//! 16-byte aligned).
template <typename T>
cudaError_t launch(Levels<T> const& levels, float const* rois, int64_t const* batchIdx, int32_t numRois,
    int32_t channels, Params const& p, T* out, cudaStream_t stream, Mapping mapping = Mapping::kAuto);

} // namespace roialign
} // namespace edge
