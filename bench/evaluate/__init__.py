"""Request building, cached scoring and the suite loop."""
