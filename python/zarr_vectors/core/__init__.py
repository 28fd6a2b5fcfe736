"""Store access and store-level metadata."""
