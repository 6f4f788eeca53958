"""The HTTP layer: one FastAPI app whose routes translate three protocols onto one DataPlane."""
