"""Evaluation: panoptic quality, semantic mIoU and monocular depth errors (Cityscapes rules)."""

from edge.eval.depth import DepthStats
from edge.eval.evaluator import Evaluator
from edge.eval.panoptic import PanopticStats
from edge.eval.semantic import ConfusionMatrix

__all__ = ["ConfusionMatrix", "DepthStats", "Evaluator", "PanopticStats"]
