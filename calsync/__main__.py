"""`python -m calsync` runs the command-line interface."""

from calsync.cli import main

raise SystemExit(main())
