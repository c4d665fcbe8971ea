"""registry_insights: what is in a Docker/OCI registry, how big it really is, and what a cleanup
would free.

>>> import registry_insights as ri
>>> client = ri.RegistryClient("registry.example.com")   # doctest: +SKIP
>>> tags = ri.tags_frame(client)                           # doctest: +SKIP
"""

from __future__ import annotations

import logging

from .errors import (
    CatalogUnavailable,
    Denied,
    DigestMismatch,
    IncompleteBlob,
    InvalidReference,
    InvalidResponse,
    NotFound,
    RateLimited,
    RegistryBinaryNotFound,
    RegistryError,
    RegistryInsightsError,
    TooManyRequests,
    Unauthorized,
    Unsupported,
)
from .registry.client import DeleteResult, RegistryClient
from .registry.names import parse_reference
from .units import format_bytes, parse_bytes

__version__ = "0.1.0"

# A library adds no output of its own: the CLI and ``RegistryClient(verbose=True)`` configure it.
logging.getLogger(__name__).addHandler(logging.NullHandler())

_FRAME_NAMES = {
    "tags_frame": "frames.inventory",
    "layers_frame": "frames.inventory",
    "blobs_frame": "frames.inventory",
    "fetch_inventory": "frames.inventory",
    "Inventory": "frames.inventory",
    "TAGS_SCHEMA": "frames.schema",
    "LAYERS_SCHEMA": "frames.schema",
    "BLOBS_SCHEMA": "frames.schema",
    "storage_summary": "analysis.storage",
    "repository_summary": "analysis.storage",
    "referenced_blobs": "analysis.storage",
    "growth": "analysis.trends",
    "forecast": "analysis.trends",
    "capacity_date": "analysis.trends",
    "tag_ages": "analysis.trends",
    "stale_tags": "analysis.trends",
    "age_breakdown": "analysis.trends",
    "shared_layers": "analysis.trends",
    "retention_plan": "analysis.retention",
    "deletions": "analysis.retention",
    "parse_age": "analysis.retention",
    "PLAN_SCHEMA": "analysis.retention",
    "reclaimable": "analysis.reclaim",
    "freed_blobs": "analysis.reclaim",
    "RECLAIM_SCHEMA": "analysis.reclaim",
    "snapshot": "report.history",
    "history": "frames.history",
    "load_snapshot": "frames.history",
    "Snapshot": "frames.history",
    "HISTORY_SCHEMA": "frames.history",
    "HistoryError": "frames.history",
    "HistoryWarning": "frames.history",
    "default_history_dir": "frames.history",
    "diff": "analysis.history",
    "SnapshotDiff": "analysis.history",
    "measured_growth": "analysis.history",
    "read_storage": "frames.disk",
    "StorageError": "frames.disk",
    "gc_backlog": "analysis.disk",
    "disk_summary": "analysis.disk",
    "TagBrowser": "ui.widgets",
    "TagSelection": "ui.selection",
    "TOTAL": "analysis.storage",
}
# Modules reachable as attributes (``ri.plots``, ``ri.demo`` ...), loaded on first use: the
# short names people type in notebooks, mapped to the room each lives in.
_SUBMODULES = {
    "plots": "ui.plots", "widgets": "ui.widgets", "analysis": "analysis",
    "trends": "analysis.trends",
    "retention": "analysis.retention", "reclaim": "analysis.reclaim", "report": "report",
    "inventory": "frames.inventory", "schema": "frames.schema", "demo": "testing.demo",
    "server": "testing.server", "testing": "testing", "pull": "registry.layout", "cli": "cli",
    "reference": "registry.names", "models": "registry.models", "mediatypes": "registry.mediatypes",
}


def __getattr__(name: str):
    """Frame and analysis names load pandas on first use, so the client alone stays light."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    module = _FRAME_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'registry_insights' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "RegistryClient", "DeleteResult", "parse_reference", "RegistryError", "RegistryInsightsError",
    "Unauthorized", "Denied", "NotFound", "Unsupported", "TooManyRequests",
    "RateLimited", "DigestMismatch", "IncompleteBlob",
    "InvalidReference", "InvalidResponse", "CatalogUnavailable", "RegistryBinaryNotFound",
    "format_bytes", "parse_bytes",
    *_FRAME_NAMES,
]
