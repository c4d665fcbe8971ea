"""registry_insights: what is in a Docker/OCI registry, how big it really is, and what a cleanup
would free.

>>> import registry_insights as ri
>>> client = ri.RegistryClient("registry.example.com")   # doctest: +SKIP
>>> tags = ri.tags_frame(client)                           # doctest: +SKIP
"""

from __future__ import annotations

from .client import DeleteResult, RegistryClient
from .errors import (
    CatalogUnavailable,
    Denied,
    DigestMismatch,
    InvalidReference,
    InvalidResponse,
    NotFound,
    RegistryBinaryNotFound,
    RegistryError,
    RegistryInsightsError,
    TooManyRequests,
    Unauthorized,
    Unsupported,
)
from .reference import parse_reference

__version__ = "0.1.0"

_FRAME_NAMES = {
    "tags_frame": "inventory",
    "layers_frame": "inventory",
    "blobs_frame": "inventory",
    "fetch_inventory": "inventory",
    "Inventory": "inventory",
    "TAGS_SCHEMA": "schema",
    "LAYERS_SCHEMA": "schema",
    "BLOBS_SCHEMA": "schema",
    "storage_summary": "analysis",
    "repository_summary": "analysis",
    "referenced_blobs": "analysis",
    "growth": "trends",
    "forecast": "trends",
    "capacity_date": "trends",
    "tag_ages": "trends",
    "stale_tags": "trends",
    "age_breakdown": "trends",
    "shared_layers": "trends",
    "retention_plan": "retention",
    "deletions": "retention",
    "parse_age": "retention",
    "PLAN_SCHEMA": "retention",
    "reclaimable": "reclaim",
    "freed_blobs": "reclaim",
    "RECLAIM_SCHEMA": "reclaim",
    "TagBrowser": "widgets",
}
_SUBMODULES = {"plots", "analysis", "trends", "report", "demo", "inventory", "schema", "cli",
               "server", "widgets", "retention", "reclaim", "pull"}


def __getattr__(name: str):
    """Frame and analysis names load pandas on first use, so the client alone stays light."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _FRAME_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'registry_insights' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "RegistryClient", "DeleteResult", "parse_reference", "RegistryError", "RegistryInsightsError",
    "Unauthorized", "Denied", "NotFound", "Unsupported", "TooManyRequests", "DigestMismatch",
    "InvalidReference", "InvalidResponse", "CatalogUnavailable", "RegistryBinaryNotFound",
    *_FRAME_NAMES,
]
