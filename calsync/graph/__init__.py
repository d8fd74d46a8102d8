"""The Microsoft Graph adapter: ``ports.ExchangeSide`` over Graph v1.0 (the only package that
speaks Graph). It never imports ``calsync.ews``; both adapters map to the same model."""

from __future__ import annotations

from calsync.graph.calendar import GraphExchangeSide
from calsync.graph.client import GraphClient, GraphSettings

__all__ = ["GraphClient", "GraphExchangeSide", "GraphSettings"]
