#!/usr/bin/env bash
# The GPU checks and timings, as run on the device machine (torch + CUDA + Triton there;
# edge's pure-Python dependencies that it lacks travel as wheels in .whl/).
#   OUT=/some/dir bash benchmarks/run_on_gpu.sh [step ...]
# Steps: env gputests tests roi ncu memcheck parity build pipeline bench streams batch profile post
# (default: all).
# "issues" is the short set for the GPU items of issues #5 and #9 (169 s on an H200, a
# session's device time being 15 minutes, the machine's start included):
#   env gputests roi build bench
# A failing step does not stop the others. Results are written to $WORK and packed after
# every step into $OUT/gpu_results.tgz, so a call that is stopped at its limit still brings
# back what finished (a call brings back at most 8 files); $OUT/steps.log has the output.
# The device image lacks onnx-graphsurgeon; fetch it here first and carry the folder:
#   pip download --no-deps -d .whl onnx-graphsurgeon      (then run(..., carry=[".whl"]))
# and cuda-python for the CUDA-buffer tests (cuda-python, cuda-bindings, cuda-pathfinder wheels
# for the device's Python: --python-version 3.12 --platform manylinux_2_28_x86_64 --only-binary=:all:)
set -u -o pipefail
OUT=${OUT:-out/gpu}
WORK=${WORK:-/tmp/gpu_results}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# ONNX Runtime's telemetry (PyPI builds for Linux, 1.29 on) off for the steps that import it
# directly, as edge does for itself (edge/util/ort.py)
export ORT_DISABLE_TELEMETRY=1 ORT_TELEMETRY_DISABLED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
pack() { tar czf "$OUT/gpu_results.tgz.partial" -C "$WORK" . && mv "$OUT/gpu_results.tgz.partial" "$OUT/gpu_results.tgz"; }
exec > >(tee -a "$OUT/steps.log") 2>&1
steps=${*:-env gputests tests roi ncu memcheck parity build pipeline bench streams batch profile post}
models="panoptic_fpn_r18 depth_r18 panoptic_fpn_r50"  # r50 only for the pipeline step
if [ "$steps" = issues ]; then steps="env gputests roi build bench"; models="panoptic_fpn_r18 depth_r18"; fi
for step in $steps; do
  echo "=== $step"
  case $step in
    env)
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$WORK/env.txt"
      python3 -c "import torch, triton, onnxruntime; print('torch', torch.__version__, 'triton', triton.__version__, 'ort', onnxruntime.__version__)" | tee -a "$WORK/env.txt"
      ;;
    gputests)
      # only the tests marked gpu: the RoIAlign kernels against the reference and torchvision,
      # and the TensorRT runtime's CUDA buffers (torch's, and cuda-python's when carried)
      timeout 240 python3 -m pytest -q -p no:cacheprovider -m gpu tests/plugins tests/models \
        tests/backends/test_torch.py tests/backends/test_cuda_io.py 2>&1 | tee "$WORK/pytest_gpu_only.txt" | tail -25
      ;;
    tests)
      timeout 300 python3 -m pytest -q -p no:cacheprovider -m "gpu or not gpu" \
        tests/plugins tests/models tests/backends/test_torch.py 2>&1 | tee "$WORK/pytest_gpu.txt" | tail -25
      ;;
    roi)
      # without the rows and sample-lanes tiles, 2-8x slower than the best in both types on
      # the H200 (gpu_roi_align_h200_*.json): their compiles cost device time
      timeout 240 python3 benchmarks/bench_roi_align_gpu.py --repeats 30 --exclude rows sample_lanes \
        --out "$WORK/gpu_roi_align_fp32.json" 2>"$WORK/roi_fp32.log" | tail -22
      pack
      # the plugin kernels' SASS model beside the times just taken (nvcc's machine code for
      # this GPU; a few seconds of CPU)
      cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
      timeout 120 python3 benchmarks/roi_align_cuda_sass.py --arch "$cc" --measured-arch "$cc" \
        --sources plugins/roi_align/tensorrt --measured "$WORK/gpu_roi_align_fp32.json" \
        --out "$WORK/roi_align_cuda_sass_measured.json" 2>&1 | tail -12
      timeout 240 python3 benchmarks/bench_roi_align_gpu.py --repeats 30 --dtype float16 \
        --exclude rows sample_lanes --out "$WORK/gpu_roi_align_fp16.json" 2>"$WORK/roi_fp16.log" | tail -22
      ;;
    ncu)
      # why each RoIAlign tile takes its time (benchmarks/roi_align_ncu.py): DRAM and L2
      # bytes, L1 requests and sectors, occupancy; only the measured launches are profiled:
      # the defaults, and the three fastest of each layout where the roi step ran before
      if command -v ncu >/dev/null; then
        m=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
        m=$m,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_hit_rate.pct
        m=$m,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum
        m=$m,l1tex__t_sector_hit_rate.pct,sm__warps_active.avg.pct_of_peak_sustained_active
        m=$m,l1tex__throughput.avg.pct_of_peak_sustained_active,lts__throughput.avg.pct_of_peak_sustained_elapsed
        m=$m,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread
        fastest=()
        if [ -f "$WORK/gpu_roi_align_fp32.json" ]; then fastest=(--fastest "$WORK/gpu_roi_align_fp32.json" --top 3); fi
        timeout 200 ncu --profile-from-start off --csv --metrics "$m" python3 benchmarks/roi_align_ncu.py \
          "${fastest[@]}" >"$WORK/roi_align_ncu.csv" 2>"$WORK/roi_align_ncu.log"
        echo "ncu exit $?"; tail -3 "$WORK/roi_align_ncu.log"; grep -c gpu__time "$WORK/roi_align_ncu.csv"
      else
        echo "no ncu on this machine"
      fi
      ;;
    memcheck)
      # both RoIAlign kernels (the TensorRT plugin's and Triton's) under compute-sanitizer;
      # without torch's caching allocator every tensor is its own allocation, so a read past
      # one is reported
      PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
        python3 -m pytest -q -p no:cacheprovider -m gpu tests/plugins/roi_align/test_cuda_kernel.py \
        tests/plugins/roi_align/test_triton.py 2>&1 \
        | tee "$WORK/memcheck.txt" | tail -15
      # the patch kernel's shared-memory copy and reads, for races across its barriers
      timeout 120 compute-sanitizer --tool racecheck --error-exitcode 3 \
        python3 -m pytest -q -p no:cacheprovider -m gpu tests/plugins/roi_align/test_cuda_kernel.py -k patch 2>&1 \
        | tee "$WORK/racecheck.txt" | tail -5
      ;;
    parity)
      timeout 120 python3 benchmarks/torchvision_parity.py --device cuda --out "$WORK/torchvision_parity_cuda.json"
      timeout 120 python3 benchmarks/torchvision_parity.py --device cpu --out "$WORK/torchvision_parity_cpu.json"
      ;;
    build)
      timeout 240 python3 build_engines.py --models $models --backend torch \
        --size 512x1024 --out /tmp/gpu_engines --verify-samples 0 --quiet 2>&1 | tail -5
      ;;
    pipeline)
      # into an MP4 of the overlay and depth (drawn, encoded on the sink thread): what a
      # recording run costs; the H100 record of 2026-11 drew every view into null:// instead
      for m in panoptic_fpn_r18 panoptic_fpn_r50; do
        timeout 90 python3 -m edge run "synthetic://?size=512x1024&frames=300&seed=0" --engines /tmp/gpu_engines \
          --backend torch --device cuda --panoptic "$m" --sink "/tmp/gpu_pipeline_${m}.mp4" \
          --summary "$WORK/pipeline_${m}_cuda.json" 2>&1 | tail -14
      done
      ;;
    bench)
      # edge bench on the torch CUDA path (r18 panoptic + depth, 512x1024): report, JSON, plots
      # (frames rendered at the engines' size, held in memory: edge bench --samples)
      timeout 300 python3 -m edge bench --engines /tmp/gpu_engines --backend torch --device cuda \
        --source 'synthetic://?size=512x1024' \
        --models panoptic_fpn_r18 depth_r18 --size 512x1024 --min-frames 300 --min-duration 20 \
        --warmup 20 --quiet --report "$WORK/bench_torch_cuda" 2>&1 | tail -25
      ;;
    streams)
      # several cameras at 30 fps each taking turns at the engines on the GPU (edge bench
      # --streams, as edge run --camera): how many keep up
      timeout 240 python3 -m edge bench --engines /tmp/gpu_engines --backend torch --device cuda \
        --source 'synthetic://?size=512x1024' --models panoptic_fpn_r18 depth_r18 --size 512x1024 \
        --streams 1 2 4 --rate 30 --min-frames 300 --min-duration 10 --warmup 20 --quiet \
        --report "$WORK/bench_streams_torch_cuda" 2>&1 | tail -8
      ;;
    batch)
      # two cameras' frames in one call of engines built for batch 2, against two calls
      # (benchmarks/batch_trial.py; on this CPU it gained nothing: batch_trial_cpu.json)
      timeout 180 python3 benchmarks/batch_trial.py --backend torch --device cuda --repeats 30 \
        --out "$WORK/batch_trial_cuda.json" 2>&1 | tail -4
      ;;
    profile)
      # where a torch CUDA forward's time goes (host or GPU), as built / NMS looking every 4
      # passes / norms folded too (benchmarks/torch_cuda_profile.py)
      timeout 240 python3 benchmarks/torch_cuda_profile.py --frames 30 \
        --out "$WORK/torch_cuda_profile.json" 2>&1 | tail -4
      ;;
    post)
      # the post stage where cores are to spare (the device machine's CPU; stand-in GPU
      # engines, the tiny models' real outputs): 1, 2 and 4 post workers, into an MP4
      timeout 240 python3 benchmarks/post_stages.py --post-workers 2 4 --pairs 2 \
        --out "$WORK/post_stages_$(nproc)core.json" 2>&1 | tail -4
      ;;
    *) echo "unknown step $step" ;;
  esac
  pack
done
