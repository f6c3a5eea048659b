"""INT8 calibration: data readers, ranges, Q/DQ ONNX, TensorRT calibration caches.

``calibrate()`` is what ``edge calibrate`` runs; see DESIGN.md (INT8) for why explicit
quantization (Q/DQ) is the primary path and the TensorRT 10 cache a companion.
"""

from calib.api import CalibrationResult, calibrate, calibrate_from_cache

__all__ = ["CalibrationResult", "calibrate", "calibrate_from_cache"]
