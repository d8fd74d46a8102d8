"""Alembic environment of the calsync store (a package so that wheels ship it)."""

from __future__ import annotations
