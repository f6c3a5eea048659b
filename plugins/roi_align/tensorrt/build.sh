#!/usr/bin/env bash
# Build libedge_roi_align_plugin.so (TensorRT 10 or 11, CUDA 12 or 13).
#   TENSORRT_INCLUDE  folder with NvInfer.h   (default: /usr/include/$(uname -m)-linux-gnu, JetPack's place)
#   CUDA_ARCHS        e.g. "87" for Orin, "110" for Thor, "80;86;89;90" for desktops (default: 87;89;90)
#   OUT               output library (default: build/libedge_roi_align_plugin.so next to this script)
#   NVCC              the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc, JetPack's place)
# Then: python build_engines.py --backend tensorrt --plugin-lib <OUT> ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
inc="${TENSORRT_INCLUDE:-/usr/include/$(uname -m)-linux-gnu}"
archs="${CUDA_ARCHS:-87;89;90}"
out="${OUT:-$here/build/libedge_roi_align_plugin.so}"
if [ ! -f "$inc/NvInfer.h" ]; then
  echo "error: NvInfer.h not found in $inc; set TENSORRT_INCLUDE to TensorRT's include folder" >&2
  exit 2
fi
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [ ! -x "$nvcc" ]; then
  echo "error: nvcc not found on PATH or at $nvcc; set NVCC to the CUDA compiler" >&2
  exit 2
fi
gencode=()
IFS=';' read -ra list <<< "$archs"
for a in "${list[@]}"; do gencode+=("-gencode=arch=compute_$a,code=sm_$a"); done
mkdir -p "$(dirname "$out")"
trap 'rm -f "$out.tmp"' EXIT  # a failed compile leaves no partial file behind
# the kernels' digest names their timings in TensorRT's timing cache (getTimingCacheID)
digest=$(cat "$here"/roi_align_kernel.cu "$here"/roi_align_kernel.h "$here"/roi_align_math.h \
  "$here"/roi_align_channels_last.h "$here"/roi_align_patch.h "$here"/roi_align_bin_channels.h \
  "$here"/roi_align_lanes.h | sha256sum | cut -c1-16)
"$nvcc" -std=c++17 -O3 -shared -Xcompiler -fPIC,-Wno-deprecated-declarations "${gencode[@]}" \
  -DEDGE_KERNELS_DIGEST="\"$digest\"" -I"$inc" "$here/multilevel_roi_align_plugin.cpp" "$here/roi_align_kernel.cu" \
  -o "$out.tmp"
mv "$out.tmp" "$out"  # never a half-written library under the final name
echo "$out"
