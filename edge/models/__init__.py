"""Model definitions in plain torch and the named-config zoo."""

from edge.models.zoo import ZooEntry, create_model, get_entry, list_models

__all__ = ["ZooEntry", "create_model", "get_entry", "list_models"]
