"""Fused multi-level RoIAlign plugin (torch op, ONNX node, TensorRT plugin, GPU kernel).

Not implemented yet: the models currently export RoIAlign as standard ONNX ``RoiAlign``
(see edge/models/ops.py and DESIGN.md, RoIAlign section).
"""
