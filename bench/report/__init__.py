"""HTML reports: pure functions of the data built from results/ (templates live in templates/)."""
