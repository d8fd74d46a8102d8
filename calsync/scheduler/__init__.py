"""Scheduling of mailbox runs: the pure policy (when is a mailbox due) and the run worker."""
