"""Compare, gate and the before/after report: a candidate's run against a baseline's on the same
items, read from the store only (no model is called, nothing trains)."""
