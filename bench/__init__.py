"""calsync benchmarks: scripts that print figures and ratios (not timed tests)."""
