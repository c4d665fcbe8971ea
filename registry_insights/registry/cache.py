"""The HTTP cache: every cache decision in one object, :class:`HttpCache` (requests-cache store).

What is cached and for how long, per URL of the OCI distribution API (:data:`POLICY`, first
match wins):

============================================  ==========================================
URL                                            policy
============================================  ==========================================
``/v2/<name>/manifests/sha256:...``            never expires (content addressed)
``/v2/<name>/blobs/sha256:...`` (configs)      never expires; layer blobs are streamed and
                                               never cached
``/v2/<name>/manifests/<tag>``                 fresh for ``freshness`` seconds, then
                                               revalidated (``If-None-Match`` -> 304)
``/v2/<name>/tags/list``, ``/v2/_catalog``     fresh for ``freshness`` seconds, then fetched
                                               again (Distribution sends no validator)
``/v2/`` (probe), token realms, uploads,       never cached
deletes, anything else
============================================  ==========================================

"Fresh" is judged against the client's *current* ``freshness`` (an answer stored under a longer
window is not served past the shorter one): ``freshness=0`` asks the registry every time.
Only 200 answers to GET and HEAD are stored.

Keys (:meth:`HttpCache.key`) are plain strings built from the method, the normalised ``Accept``
and the URL's meaning, never from ``Authorization`` or TLS settings: ``blob <digest>`` (a blob
is the same bytes whichever repository it is read through), ``manifest <name> <reference>``,
``tags <name> <url>``, ``catalog <url>``. So :meth:`HttpCache.invalidate` finds every page of a
tag list and the catalog at any page size by prefix, whatever the client's ``verify``. Because
``Authorization`` is not in the keys, each store holds the answers of one (registry, identity):
:func:`cache_path` names its file, with a keyed hash of the secret for identities without a
user name (identity tokens), so two such identities never share a store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from requests_cache import DO_NOT_CACHE, NEVER_EXPIRE, CachedSession, SQLiteCache
from requests_cache.backends import BaseCache

from ..settings import DEFAULTS
from .names import DIGEST_PATTERN

log = logging.getLogger("registry_insights")

#: Seconds a catalog, tag list or manifest-by-tag answer is served without asking the registry.
DEFAULT_FRESHNESS = DEFAULTS.freshness

#: Lifetime kinds of :data:`POLICY`.
IMMUTABLE, MUTABLE = "immutable", "mutable"

_NAME = r"(?P<name>.+)"
#: Path (after the base URL) -> (key kind, lifetime kind). First match wins; no match: not cached.
POLICY: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>{DIGEST_PATTERN})$"), "manifest", IMMUTABLE),
    (re.compile(rf"^/v2/{_NAME}/blobs/(?P<ref>{DIGEST_PATTERN})$"), "blob", IMMUTABLE),
    (re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[A-Za-z0-9_][A-Za-z0-9._-]*)$"), "manifest",
     MUTABLE),
    (re.compile(rf"^/v2/{_NAME}/tags/list$"), "tags", MUTABLE),
    (re.compile(r"^/v2/_catalog$"), "catalog", MUTABLE),
)


def classify(base_url: str, url: str) -> tuple[str, str, dict] | None:
    """``(key kind, lifetime kind, groups)`` of ``url`` under :data:`POLICY`, or None (not
    cached: other hosts, the probe, token realms, uploads, anything unknown)."""
    base = base_url.rstrip("/")
    if not url.startswith(base + "/"):
        return None
    path = urlsplit(url[len(base):]).path
    for pattern, kind, lifetime in POLICY:
        match = pattern.match(path)
        if match:
            return kind, lifetime, match.groupdict()
    return None


def _accept(value: str | None) -> str:
    """``Accept`` normalised (order and spaces do not matter)."""
    if not value:
        return "-"
    return ",".join(sorted(p.strip() for p in value.split(",") if p.strip()))


def default_cache_dir() -> Path:
    """``<user cache dir>/registry_insights/http`` (platformdirs)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("registry_insights", appauthor=False)) / "http"


def identity_label(identity: str, secret: str | None = None) -> str:
    """What names an identity's store: the identity, plus for a secret without a user name
    (identity tokens) an HMAC of the secret keyed by the identity: stable for one secret,
    different for two, and the secret cannot be read back from it."""
    if not secret:
        return identity
    mac = hmac.new(identity.encode(), secret.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{identity}#{mac}"


def cache_path(directory: Path, base_url: str, identity: str) -> Path:
    """The SQLite file of one (registry, identity): readable by its owner only."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "_", base_url.split("://", 1)[-1])
    ident = hashlib.sha256(f"{base_url}\0{identity}".encode()).hexdigest()[:16]
    return directory / f"{host}-{ident}.sqlite"


def _private_file(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class HttpCache:
    """The HTTP cache of one (registry, identity) and the session that reads and fills it.

    Parameters
    ----------
    cache : "default", None, str or Path, or a requests-cache backend
        ``"default"``: SQLite under :func:`default_cache_dir`; ``None``: no HTTP cache (a plain
        ``requests.Session``); a path: a directory that holds one SQLite file per (registry,
        identity); a :class:`requests_cache.backends.BaseCache`: used as it is (the caller keeps
        it to one identity).
    base_url : str
        The registry, ``scheme://host[:port]``.
    identity : str
        What names the store (see :func:`identity_label`).
    freshness : float
        Seconds a mutable answer (catalog, tag list, manifest by tag) is served unasked.
    """

    def __init__(self, cache: Any, base_url: str, identity: str,
                 freshness: float = DEFAULT_FRESHNESS):
        import requests

        self.base_url = base_url.rstrip("/")
        self.freshness = float(freshness)
        self._lock = threading.Lock()
        if cache is None:
            self.backend: BaseCache | None = None
            self.session = requests.Session()
            return
        if isinstance(cache, BaseCache):
            backend = cache
        else:
            directory = default_cache_dir() if cache == "default" else Path(cache)
            path = cache_path(directory, self.base_url, identity)
            try:
                _private_file(path)
                backend = SQLiteCache(str(path), wal=True)
            except OSError as exc:
                if cache != "default":
                    raise OSError(f"the HTTP cache directory {directory} cannot be used "
                                  f"({exc.strerror or exc}); pass cache=None (CLI: --no-cache) "
                                  "or another directory") from exc
                log.warning("no HTTP cache: %s cannot be written (%s); every answer comes "
                            "from the registry", directory, exc.strerror or exc)
                self.backend = None
                self.session = requests.Session()
                return
        self.backend = backend
        self.session = CachedSession(
            backend=backend,
            expire_after=DO_NOT_CACHE,
            urls_expire_after=self._expire_after_table(),
            allowable_codes=(200,),
            allowable_methods=("GET", "HEAD"),
            key_fn=self._key_fn,
            cache_control=False,
            stale_if_error=False,
        )

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    # -- the policy --------------------------------------------------------------------------
    def _expire_after_table(self) -> dict:
        """``urls_expire_after`` for requests-cache, derived from :data:`POLICY`."""
        base = re.escape(self.base_url)
        table = {}
        for pattern, _kind, lifetime in POLICY:
            regex = re.compile(f"^{base}{pattern.pattern[1:-1]}(\\?.*)?$")
            table[regex] = NEVER_EXPIRE if lifetime == IMMUTABLE else max(self.freshness, 1)
        return table

    def key(self, method: str, url: str, accept: str | None) -> str:
        """The cache key of a request (see the module docstring)."""
        found = classify(self.base_url, url)
        if found is None:
            return f"{method} other {url} {_accept(accept)}"
        kind, _lifetime, groups = found
        if kind == "blob":
            return f"{method} blob {groups['ref']}"
        if kind == "manifest":
            return f"{method} manifest {groups['name']} {groups['ref']} {_accept(accept)}"
        if kind == "tags":
            return f"{method} tags {groups['name']} {url}"
        return f"{method} catalog {url}"

    def _key_fn(self, request, **_ignored) -> str:
        return self.key(request.method or "GET", request.url or "", request.headers.get("Accept"))

    def cacheable(self, method: str, url: str) -> bool:
        """Whether an answer to this request may be stored."""
        return self.enabled and method in ("GET", "HEAD") and \
            classify(self.base_url, url) is not None

    # -- reading -----------------------------------------------------------------------------
    def _fresh(self, response, url: str) -> bool:
        if response.is_expired:
            return False
        found = classify(self.base_url, url)
        if found is None:
            return False
        if found[1] == IMMUTABLE:
            return True
        created = response.created_at.timestamp()
        return time.time() - created < self.freshness

    def lookup(self, method: str, url: str, accept: str | None, *,
               mode: bool | str = True) -> tuple[Any, dict]:
        """Look a request up once: ``(fresh stored answer or None, options for the caching
        session's request)``. Straight in the store (no request is prepared): this runs before
        every request.

        ``mode``: True serves a fresh stored answer; ``False`` goes to the network and stores
        nothing (streams, uploads, deletes); ``"refresh"`` goes to the network and stores the
        answer (a fresh read that later reads may reuse). A stored answer that is not fresh
        under the current ``freshness`` is revalidated (``If-None-Match``) when it has a
        validator, else fetched again.
        """
        if not self.enabled:
            return None, {}
        if mode is False or not self.cacheable(method, url):
            return None, {"expire_after": DO_NOT_CACHE}
        stored = self.backend.get_response(self.key(method, url, accept))
        if stored is None:
            return None, {}
        if mode is True and self._fresh(stored, url):
            return stored, {}
        if stored.headers.get("ETag") or stored.headers.get("Last-Modified"):
            return None, {"refresh": True}
        return None, {"force_refresh": True}

    # -- invalidation ------------------------------------------------------------------------
    def invalidate(self, repository: str, references: tuple[str, ...] | list[str] = ()) -> int:
        """Drop what a change in ``repository`` made stale: every page of its tag list, every
        page of the catalog (any page size), and its manifests by the given references (tags
        or digests), under every ``Accept``. Returns the number of entries dropped."""
        if not self.enabled:
            return 0
        prefixes = [f"{m} tags {repository} " for m in ("GET", "HEAD")]
        prefixes += [f"{m} catalog " for m in ("GET", "HEAD")]
        prefixes += [f"{m} manifest {repository} {r} " for r in references
                     for m in ("GET", "HEAD")]
        with self._lock:
            keys = [k for k in list(self.backend.responses.keys())
                    if k.startswith(tuple(prefixes))]
            if keys:
                self.backend.responses.bulk_delete(keys)
        return len(keys)

    def evict(self, method: str, url: str, accept: str | None) -> None:
        """Drop one stored answer (bytes that did not verify must never be served again)."""
        if self.enabled:
            with self._lock:
                self.backend.responses.bulk_delete([self.key(method, url, accept)])

    def close(self) -> None:
        self.session.close()
