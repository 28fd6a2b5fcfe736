"""Geometry types. Point clouds live in :mod:`zarr_vectors.types.points`."""
