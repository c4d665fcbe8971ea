"""Defaults, in one place: what a client does when not told otherwise.

``RegistryClient(...)`` takes each of these as a keyword argument; the CLI's options default to
them too. Change a default here and every entry point follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """The client's defaults (units in the names' docstrings)."""

    #: Concurrent requests (and the connection pool size).
    max_workers: int = 8
    #: Seconds per request, connect and read.
    timeout: float = 30.0
    #: Retries of 429, 502, 503, 504 and connection errors (never of DELETE).
    retries: int = 5
    #: Seconds a catalog, tag list or manifest-by-tag answer is reused before revalidation.
    freshness: float = 60.0
    #: Seconds a ``Retry-After`` is honoured up to, per retry; a longer one raises
    #: ``RateLimited`` at once.
    max_retry_after: float = 60.0
    #: Pull scopes asked for in one bearer token when repositories are walked together.
    scope_group_size: int = 20


DEFAULTS = Settings()
