"""Datasets: Cityscapes label table and layout, synthetic driving scenes."""
