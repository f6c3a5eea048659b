"""Training on synthetic drives: the demo weights (edge/weights/) come from here."""
