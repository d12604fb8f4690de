"""``edsc demo``: the main job on the built-in models (placeholder until the system lands)."""
