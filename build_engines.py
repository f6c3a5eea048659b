#!/usr/bin/env python3
"""Build edge engines: checkpoint -> ONNX -> engine -> engines/manifest.json.

Example:
    python build_engines.py --models panoptic_fpn_tiny depth_tiny --backend onnxruntime \
        --precision fp32 --size 256x512 --out engines/
"""

from edge.cli import exit_with
from edge.cli_build import main
from edge.util.ort import keep_offline

if __name__ == "__main__":
    keep_offline()  # before ONNX Runtime is imported: no telemetry (edge/util/ort.py)
    exit_with(main())
