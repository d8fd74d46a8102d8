"""Deployment files and tools: ``python -m deploy.gen_monitoring`` writes the guide."""

from __future__ import annotations
