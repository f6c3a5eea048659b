"""Fused multi-level RoIAlign: numpy reference, torch op, ONNX forms, graph passes, Triton kernel.

See README.md (RoIAlign plugin) and DESIGN.md (RoIAlign). Modules are imported on use;
importing this package loads nothing heavy.
"""
