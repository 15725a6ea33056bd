"""Training small models on the project's own data (needs the `train` extra: torch)."""
