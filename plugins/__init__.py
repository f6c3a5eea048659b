"""Custom operators carried by edge (one folder each)."""
