"""The HTTP cache policy, in one place (backed by requests-cache).

What is cached and for how long, per URL of the OCI distribution API:

============================================  ==========================================
URL                                            policy
============================================  ==========================================
``/v2/<name>/manifests/sha256:...``            never expires (content addressed)
``/v2/<name>/blobs/sha256:...`` (configs)      never expires; layer blobs are streamed and
                                               never cached (``expire_after=DO_NOT_CACHE``)
``/v2/<name>/manifests/<tag>``                 fresh for ``freshness`` seconds, then
                                               revalidated (``If-None-Match`` -> 304)
``/v2/<name>/tags/list``, ``/v2/_catalog``     fresh for ``freshness`` seconds, then fetched
                                               again (Distribution sends no validator)
``/v2/`` (probe), token realms, uploads,       never cached
deletes, anything else
============================================  ==========================================

Only 200 answers to GET and HEAD are stored. Blobs are keyed by digest alone (not by the
repository in their URL): content addressed, so a config shared by many repositories is stored
and found once, whichever repository it was fetched through. ``Accept`` is part of the cache
key (Distribution answers differently per ``Accept``). ``Authorization`` is left out of keys
and never stored, so each store holds the answers of one (registry, identity):
:func:`cache_path` names the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from requests_cache import DO_NOT_CACHE, NEVER_EXPIRE, CachedSession, SQLiteCache, create_key
from requests_cache.backends import BaseCache

#: Seconds a catalog, tag list or manifest-by-tag answer is served without asking the registry.
DEFAULT_FRESHNESS = 60.0

_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"


def url_policy(base_url: str, freshness: float) -> dict:
    """``urls_expire_after`` for requests-cache: regex -> seconds, first match wins."""
    base = re.escape(base_url.rstrip("/"))
    return {
        re.compile(rf"^{base}/v2/.+/manifests/{_DIGEST}$"): NEVER_EXPIRE,
        re.compile(rf"^{base}/v2/.+/blobs/{_DIGEST}$"): NEVER_EXPIRE,
        re.compile(rf"^{base}/v2/.+/manifests/[A-Za-z0-9_][A-Za-z0-9._-]*$"): freshness,
        re.compile(rf"^{base}/v2/.+/tags/list(\?.*)?$"): freshness,
        re.compile(rf"^{base}/v2/_catalog(\?.*)?$"): freshness,
    }


_BLOB_URL = re.compile(rf"^(https?://[^/]+)/v2/.+/blobs/({_DIGEST})$")


def cache_key(request, **kwargs) -> str:
    """requests-cache's key, with blob URLs reduced to ``<base>/v2/_blobs/<digest>``."""
    match = _BLOB_URL.match(request.url or "")
    if match:
        request = request.copy()
        request.url = f"{match.group(1)}/v2/_blobs/{match.group(2)}"
    return create_key(request, **kwargs)


def default_cache_dir() -> Path:
    """``<user cache dir>/registry_insights/http`` (platformdirs)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("registry_insights", appauthor=False)) / "http"


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


def make_session(cache, base_url: str, identity: str, freshness: float = DEFAULT_FRESHNESS):
    """A session for one registry and identity.

    Parameters
    ----------
    cache : "default", None, str or Path, or a requests-cache backend
        ``"default"``: SQLite under :func:`default_cache_dir`; ``None``: no HTTP cache (a plain
        ``requests.Session``); a path: a directory that holds one SQLite file per (registry,
        identity); a :class:`requests_cache.backends.BaseCache`: used as it is (the caller keeps
        it to one identity).
    """
    import requests

    if cache is None:
        return requests.Session()
    if isinstance(cache, BaseCache):
        backend = cache
    else:
        directory = default_cache_dir() if cache == "default" else Path(cache)
        path = cache_path(directory, base_url, identity)
        _private_file(path)
        backend = SQLiteCache(str(path), wal=True)
    return CachedSession(
        backend=backend,
        expire_after=DO_NOT_CACHE,
        urls_expire_after=url_policy(base_url, freshness),
        allowable_codes=(200,),
        allowable_methods=("GET", "HEAD"),
        match_headers=["Accept"],
        key_fn=cache_key,
        cache_control=False,
        stale_if_error=False,
    )
