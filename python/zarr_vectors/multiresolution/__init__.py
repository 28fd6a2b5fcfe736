"""Multi-resolution pyramids."""
