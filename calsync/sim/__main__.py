"""`python -m calsync.sim --state-dir DIR …` runs the simulator (same as `calsync sim`)."""

from __future__ import annotations

import sys

from calsync.sim.command import main

raise SystemExit(main(sys.argv[1:]))
