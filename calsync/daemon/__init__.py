"""Composition root: builds the adapters from the configuration and runs mailbox syncs."""
