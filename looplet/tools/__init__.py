"""(layer docstring: written with the interface)."""
