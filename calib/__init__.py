"""INT8 calibration: data readers, statistics, Q/DQ ONNX, TensorRT calibration caches.

Not implemented yet (see DESIGN.md, INT8).
"""
