"""Panoptic fusion, overlays, depth colouring."""
