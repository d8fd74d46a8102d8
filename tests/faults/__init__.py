"""Fault tests of issue #9: kills, simulator faults, bad wire input, store faults, secrets."""
