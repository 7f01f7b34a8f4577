"""Metrics with n and a 95% CI on every number."""
