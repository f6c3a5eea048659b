"""torch -> ONNX export and graph passes."""

from edge.export.onnx import export_onnx

__all__ = ["export_onnx"]
