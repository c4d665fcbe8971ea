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

Cost: one lookup per request, straight in the store (no caching session in between: the
transport sends with a plain ``requests`` session and hands the answer to
:meth:`HttpCache.settle`); content-addressed answers are stored as bytes in a table of their
own, without the HTTP expiry metadata they never need, and mutable answers as one line of
metadata and their body (:func:`_answer_row`); writes go behind, in batches of
:data:`BATCH_SIZE` per transaction; :meth:`HttpCache.preload` reads the answers a walk will
need in bulk.

Keys (:meth:`HttpCache.key`) are plain strings built from the method, the normalised ``Accept``
and the URL's meaning, never from ``Authorization`` or TLS settings: ``blob <digest>`` (a blob
is the same bytes whichever repository it is read through), ``manifest <name> <digest>``
(content addressed: the digest fixes the bytes whatever the ``Accept``),
``manifest <name> <tag> <accept>``, ``tags <name> <url>``, ``catalog <url>``. So
:meth:`HttpCache.invalidate` finds every page of a tag list and the catalog at any page
size by prefix, whatever the client's ``verify``. Because
``Authorization`` is not in the keys, each store holds the answers of one (registry, identity):
:func:`cache_path` names its file, with a keyed hash of the secret for identities without a
user name (identity tokens), so two such identities never share a store.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import requests
from requests.structures import CaseInsensitiveDict
from requests_cache import DEFAULT_IGNORED_PARAMS, CachedResponse, SQLiteCache
from requests_cache.backends import BaseCache, SQLiteDict
from requests_cache.policy import utcnow

from ..settings import DEFAULTS
from .names import DIGEST_PATTERN
from .responses import LeanResponse, has_secret_param

log = logging.getLogger("registry_insights")

#: Request headers never stored with an answer.
_SECRET_HEADERS = tuple(DEFAULT_IGNORED_PARAMS) + ("Cookie",)

_SECRET_NAMES = frozenset(name.lower() for name in _SECRET_HEADERS)


def _without_secrets(stored: CachedResponse) -> CachedResponse:
    """``stored`` without the headers of :data:`_SECRET_HEADERS` (``Authorization`` above all)
    in its request or its own headers: a scan of the header names. (Only GET and HEAD
    answers are stored, so there is no request body to redact, and answers whose URL or
    ``Link`` carries a secret query parameter are never stored, see :meth:`HttpCache.settle`.)"""
    for holder in (stored.request, stored):
        if any(name.lower() in _SECRET_NAMES for name in holder.headers):
            holder.headers = CaseInsensitiveDict(
                {k: v for k, v in holder.headers.items() if k.lower() not in _SECRET_NAMES})
    return stored


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
    # the path of the rest: what comes before the query or fragment (urlsplit's ``path`` of a
    # reference that starts with one "/")
    path = url[len(base):].partition("?")[0].partition("#")[0]
    for pattern, kind, lifetime in POLICY:
        match = pattern.match(path)
        if match:
            return kind, lifetime, match.groupdict()
    return None


@functools.lru_cache(maxsize=256)
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


#: Answers held in memory before they are written to the store in one transaction.
BATCH_SIZE = 256


class Lookup(NamedTuple):
    """What :meth:`HttpCache.lookup` found for one request.

    ``hit``: a fresh stored answer to use as it is (no request). Otherwise the request goes to
    the network with ``validators`` (``If-None-Match`` / ``If-Modified-Since`` of the ``stale``
    stored answer, when it has them) and :meth:`HttpCache.settle` stores the answer under
    ``key`` (None: nothing is stored); ``content``: the answer is content addressed.
    """

    hit: Any = None
    key: str | None = None
    stale: Any = None
    content: bool = False

    @property
    def validators(self) -> dict:
        if self.stale is None:
            return {}
        out = {}
        if self.stale.headers.get("ETag"):
            out["If-None-Match"] = self.stale.headers["ETag"]
        if self.stale.headers.get("Last-Modified"):
            out["If-Modified-Since"] = self.stale.headers["Last-Modified"]
        return out


_NOTHING = Lookup()


def _content_response(url: str, value: bytes) -> requests.Response:
    """A stored content-addressed answer (``Content-Type`` line, body) as a 200 response."""
    ctype, _, body = value.partition(b"\n")
    response = LeanResponse({"Content-Type": ctype.decode("latin-1")} if ctype else None)
    response.status_code = 200
    response.reason = "OK"
    response._content = body
    response._content_consumed = True
    response.url = url
    response.from_cache = True
    return response


#: Response headers never stored with a mutable answer (besides :data:`_SECRET_NAMES`): a
#: stored answer sets no cookie.
_UNSTORED_HEADERS = _SECRET_NAMES | {"set-cookie", "set-cookie2"}


def _answer_row(response, created_at: datetime, expires: datetime | None) -> bytes:
    """A mutable answer (catalog or tag list page, manifest by tag) as a row of the
    ``responses`` table: one line of JSON (status, URL, reason, encoding, the response's
    headers but those of :data:`_UNSTORED_HEADERS`, when it was stored and until when it
    is fresh, as POSIX seconds), then the body. No request header is kept: nothing of
    ``Authorization`` reaches the disk."""
    meta = {
        "status": response.status_code, "url": response.url, "reason": response.reason,
        "encoding": response.encoding,
        "headers": [[k, v] for k, v in response.headers.items()
                    if k.lower() not in _UNSTORED_HEADERS],
        "created": created_at.timestamp(),
        "expires": None if expires is None else expires.timestamp(),
    }
    return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + response.content


#: How a row of :func:`_answer_row` begins (a pickle, what requests-cache writes, never does).
_ROW_START = b'{"status":'
#: What comes before when the row's answer was stored: the last two members of its JSON line.
_ROW_CREATED = b',"created":'


def _row_created(value: bytes) -> float | None:
    """When a row of :func:`_answer_row` was stored (POSIX seconds), read from the end of
    its JSON line without parsing the rest; None when the line does not end that way."""
    line = value.partition(b"\n")[0]
    _, found, tail = line.rpartition(_ROW_CREATED)
    created, found_expires, _ = tail.partition(b',"expires":')
    if not (found and found_expires):
        return None
    try:
        return float(created)
    except ValueError:
        return None


def _answer_response(value: bytes) -> requests.Response:
    """A row of :func:`_answer_row` as a :class:`~.responses.LeanResponse` with
    ``from_cache`` True and ``created_at`` / ``expires`` (aware UTC datetimes, as
    requests-cache's ``CachedResponse`` has them). Raises ValueError (a corrupt row)."""
    line, newline, body = value.partition(b"\n")
    meta = json.loads(line.decode()) if newline else None  # str: json skips guessing
    if not isinstance(meta, dict):
        raise ValueError("not an answer row")
    response = LeanResponse(meta["headers"])
    response.status_code = int(meta["status"])
    response.reason = meta.get("reason")
    response._content = body
    response._content_consumed = True
    response.url = meta["url"]
    response.encoding = meta.get("encoding")
    response.from_cache = True
    response.created_at = datetime.fromtimestamp(float(meta["created"]), timezone.utc)
    expires = meta.get("expires")
    response.expires = None if expires is None \
        else datetime.fromtimestamp(float(expires), timezone.utc)
    return response


class HttpCache:
    """The HTTP cache of one (registry, identity): lookups, stores, invalidation.

    Parameters
    ----------
    cache : "default", None, str or Path, or a requests-cache backend
        ``"default"``: SQLite under :func:`default_cache_dir`; ``None``: no HTTP cache; a path: a
        directory that holds one SQLite file per (registry, identity); a
        :class:`requests_cache.backends.BaseCache`: used as it is (the caller keeps it to one
        identity; mutable answers go to its ``responses`` as ``CachedResponse`` objects, and
        so do content-addressed ones unless it is SQLite; over a file a path or ``"default"``
        wrote, it reads that file's mutable answers as misses).
    base_url : str
        The registry, ``scheme://host[:port]``.
    identity : str
        What names the store (see :func:`identity_label`).
    freshness : float
        Seconds a mutable answer (catalog, tag list, manifest by tag) is served unasked.

    The store is requests-cache's SQLite file, two of its tables read as ``SQLiteDict``
    without serializer: mutable answers (catalog and tag list pages, manifests by tag) in
    ``responses``, each its status, URL, response headers (validators included), times and
    body (:func:`_answer_row`: building and serialising requests-cache's ``CachedResponse``
    made a cold walk with the cache spend about a fifth more CPU than one without, and the
    policy here never used the rest of it; the ``CachedResponse`` rows earlier versions
    wrote there are still read);
    content-addressed answers (manifests by digest, configs) in ``content``, their bytes and
    ``Content-Type``: they never expire and need none of the HTTP metadata. A
    requests-cache backend passed in keeps ``CachedResponse`` objects in its ``responses``
    (a SQLite one gets the ``content`` table too). Answers are written behind,
    :data:`BATCH_SIZE` per transaction, and read back from memory until then; :meth:`flush` (also at
    :meth:`close`) writes what is pending. What :meth:`preload` reads in bulk is held as the
    rows read (bytes), each made a response by the one lookup it is handed to. ``session``
    is the plain ``requests.Session`` the transport sends with: the lookups here replace a
    caching session's own.
    """

    def __init__(self, cache: Any, base_url: str, identity: str,
                 freshness: float = DEFAULT_FRESHNESS):
        self.base_url = base_url.rstrip("/")
        self.freshness = float(freshness)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[tuple[str, str], Any] = {}
        self._writing: dict[tuple[str, str], Any] = {}
        self._preloaded: dict[tuple[str, str], Any] = {}
        #: (url, accept) -> what _key_of gives, for the GETs preload was asked (until release)
        self._keys: dict[tuple[str, str | None], tuple[str, bool, str]] = {}
        self._cold = False
        self._flushed: set[tuple[str, str]] = set()  # written while cold: in the store
        self.session = requests.Session()
        self.content: SQLiteDict | None = None
        #: where mutable answers are kept: requests-cache's ``responses`` table, as rows of
        #: _answer_row (bytes) in a file this cache opened, else as the backend's own
        #: CachedResponse objects
        self.answers = None
        #: for a file this cache opened: the same table read through requests-cache's
        #: serializer, for the rows earlier versions wrote there (CachedResponse)
        self._legacy = None
        if cache is None:
            self.backend: BaseCache | None = None
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
                return
        self.backend = backend
        self.answers = backend.responses
        if isinstance(backend, SQLiteCache):
            self.content = SQLiteDict(backend.responses.db_path, table_name="content",
                                      serializer=None, wal=True)
        if backend is not cache:  # a file of ours: the rows of _answer_row, in the table
            # earlier versions (and requests-cache) keep answers in, so that a version that
            # drops a tag list's pages by key (invalidate) drops these too; it reads a row of
            # this kind as a miss, as this one reads theirs through requests-cache
            self._legacy = backend.responses
            self.answers = SQLiteDict(backend.responses.db_path,
                                      table_name=backend.responses.table_name,
                                      serializer=None, wal=True)

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    # -- the policy --------------------------------------------------------------------------
    def key(self, method: str, url: str, accept: str | None) -> str:
        """The cache key of a request (see the module docstring)."""
        found = classify(self.base_url, url)
        if found is None:
            return f"{method} other {url} {_accept(accept)}"
        return self._key(method, url, accept, found)[0]

    def _key(self, method: str, url: str, accept: str | None, found) -> tuple[str, bool]:
        """``(key, content addressed)``; content-addressed keys ignore ``Accept`` (the digest
        fixes the bytes) and, for blobs, the repository."""
        kind, lifetime, groups = found
        content = lifetime == IMMUTABLE and method == "GET" and self.content is not None
        if kind == "blob":
            return f"{method} blob {groups['ref']}", content
        if kind == "manifest":
            if content:
                return f"{method} manifest {groups['name']} {groups['ref']}", True
            return f"{method} manifest {groups['name']} {groups['ref']} {_accept(accept)}", False
        if kind == "tags":
            return f"{method} tags {groups['name']} {url}", False
        return f"{method} catalog {url}", False

    def cacheable(self, method: str, url: str) -> bool:
        """Whether an answer to this request may be stored."""
        return self.enabled and method in ("GET", "HEAD") and not has_secret_param(url) \
            and classify(self.base_url, url) is not None

    # -- reading -----------------------------------------------------------------------------
    def _fresh(self, response, lifetime: str) -> bool:
        if lifetime == IMMUTABLE:
            return True
        return time.time() - response.created_at.timestamp() < self.freshness

    def _stored(self, table: str, key: str):
        """The stored value: content bytes, a mutable answer's row as written (bytes, see
        :func:`_answer_row`; pending or preloaded) or as a response (read now, or a backend
        passed in's ``CachedResponse``); pending writes first. A preloaded answer is handed
        over and forgotten: a walk asks for each once, and what it no longer holds is
        garbage while it is young (tens of thousands of responses kept until the walk ends
        cost a warm walk about a quarter of its CPU in garbage collection)."""
        slot = (table, key)
        with self._lock:
            held = self._preloaded.pop(slot, None)
            if held is not None:
                return held
            for held in (self._pending, self._writing):
                if slot in held:
                    return held[slot]
            if self._cold and slot not in self._flushed:
                return None
        return self._guarded(key, lambda: self._read_row(table, key))

    def _read_row(self, table: str, key: str):
        if table == "content":
            return self.content[key]
        return self._decode(key, self.answers[key])

    def _decode(self, key: str, value):
        """A mutable answer as stored (a row of :func:`_answer_row`, a row an earlier
        version wrote, or a backend's ``CachedResponse``, as an object or as its serialized
        bytes) as the response to hand on."""
        if not isinstance(value, bytes):
            return value
        # the table read as requests-cache reads it: the file's (earlier versions' rows), or
        # a backend passed in's (its rows, read raw in bulk by preload)
        serializer = getattr(self._legacy or self.answers, "serializer", None)
        if value.startswith(_ROW_START) or serializer is None:
            return _answer_response(value)
        # a CachedResponse, through requests-cache's serializer (whose deserialize() would
        # log a corrupt row as an error: here it is a miss, see _guarded)
        stored = serializer.loads(value)
        if not isinstance(stored, CachedResponse):
            raise ValueError("not a stored response")
        stored.cache_key = key
        return stored

    @staticmethod
    def _guarded(key: str, read):
        """``read()``; a missing row is None, and so is a corrupt one (a miss, not an
        error)."""
        try:
            return read()
        except KeyError:
            return None
        except Exception as exc:
            log.debug("cache entry %s unreadable: %s", key, exc)
            return None

    def lookup(self, method: str, url: str, accept: str | None, *,
               mode: bool | str = True) -> Lookup:
        """Look a request up once, straight in the store (this runs before every request).

        ``mode``: True serves a fresh stored answer; ``False`` goes to the network and stores
        nothing (streams, uploads, deletes); ``"refresh"`` goes to the network and stores the
        answer (a fresh read that later reads may reuse). A stored answer that is not fresh
        under the current ``freshness`` is revalidated (``If-None-Match``) when it has a
        validator, else fetched again.
        """
        if not self.enabled or mode is False or method not in ("GET", "HEAD") \
                or has_secret_param(url):  # a secret in the URL: never stored, never a key
            return _NOTHING
        found = self._key_of(method, url, accept)
        if found is None:
            return _NOTHING
        key, content, lifetime = found
        if mode == "refresh":
            return Lookup(key=key, content=content)
        stored = self._stored("content" if content else "responses", key)
        if stored is None:
            return Lookup(key=key, content=content)
        if content:
            return Lookup(hit=_content_response(url, stored), key=key, content=True)
        if isinstance(stored, bytes):  # a row as written: pending, or preloaded from the file
            stored = self._guarded(key, lambda: _answer_response(stored))
            if stored is None:
                return Lookup(key=key)
        if self._fresh(stored, lifetime):
            return Lookup(hit=stored, key=key)
        return Lookup(key=key, stale=stored)

    def _key_of(self, method: str, url: str, accept: str | None) -> tuple[str, bool, str] | None:
        """``(key, content addressed, lifetime kind)`` of a request, or None (not cached):
        for a GET :meth:`preload` was asked, as it worked it out."""
        if method == "GET":
            known = self._keys.get((url, accept))
            if known is not None:
                return known
        found = classify(self.base_url, url)
        if found is None:
            return None
        return (*self._key(method, url, accept, found), found[1])

    def preload(self, requests_: list[tuple[str, str | None]]) -> int:
        """Read the stored answers of many GETs ``(url, accept)`` in bulk (one query per
        table and 500 keys) and keep them in memory, each for the first lookup of its request
        that follows (later ones read the store again), until :meth:`release`. Returns how
        many were found."""
        if not self.enabled:
            return 0
        wanted: dict[str, list[str]] = {"content": [], "responses": []}
        keys = {}
        for url, accept in requests_:
            found = self._key_of("GET", url, accept)
            if found is not None:
                keys[(url, accept)] = found
                wanted["content" if found[1] else "responses"].append(found[0])
        got = self._read_many(self.content, "content", wanted["content"], lambda k, v: v)
        got.update(self._read_many(self.answers, "responses", wanted["responses"],
                                   self._kept))
        with self._lock:
            self._preloaded.update(got)
            self._keys.update(keys)  # the walk's lookups need not work them out again
        return len(got)

    def _kept(self, key: str, value):
        """What :meth:`preload` holds of a mutable answer: a row of :func:`_answer_row` as
        it is (bytes: no objects for the garbage collector to go through until the lookup
        that takes it makes the response; a row whose JSON is broken further in than its
        end is a miss then), any other as :meth:`_decode` gives it (raising when corrupt)."""
        if isinstance(value, bytes) and value.startswith(_ROW_START) \
                and _row_created(value) is not None:
            return value
        return self._decode(key, value)

    def peek(self, url: str, accept: str | None) -> tuple[bytes, bool] | None:
        """``(body, fresh)`` of the answer to ``GET url`` that :meth:`preload` holds, left
        there for the lookup to come; None when it holds none. What a walk reads to know
        what to preload next, without making a response of it."""
        found = self._key_of("GET", url, accept)
        if found is None:
            return None
        key, content, lifetime = found
        with self._lock:
            stored = self._preloaded.get(("content" if content else "responses", key))
        if stored is None:
            return None
        if content:
            return stored.partition(b"\n")[2], True
        if isinstance(stored, bytes):  # a row _kept held: its line ends with when it was stored
            return stored.partition(b"\n")[2], \
                lifetime == IMMUTABLE or time.time() - _row_created(stored) < self.freshness
        return stored.content, self._fresh(stored, lifetime)

    @staticmethod
    def _read_many(store, table: str, keys: list[str], decode) -> dict:
        """``{(table, key): decode(key, value)}`` of the ``keys`` found in ``store``: a
        SQLite one 500 per query, any other key by key; a corrupt row is left out (a
        miss)."""
        got = {}
        if store is None or not keys:
            return got
        if not isinstance(store, SQLiteDict):  # a backend passed in (memory, Redis ...)
            for key in keys:
                value = HttpCache._guarded(key, lambda key=key: decode(key, store[key]))
                if value is not None:
                    got[(table, key)] = value
            return got
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            with store.connection() as con:
                rows = con.execute(f"SELECT key, value FROM {store.table_name} "
                                   f"WHERE key IN ({marks})", chunk).fetchall()
            for key, value in rows:
                try:
                    got[(table, key)] = decode(key, value)
                except Exception:  # corrupt: a miss
                    continue
        return got

    def holds_no_content(self) -> bool:
        """True when no content-addressed answer (a manifest by digest, a config) is stored
        or pending: every walk keeps its configs, so no earlier walk of this registry and
        identity left anything a new one could use (its tag lists and manifests by tag are
        not worth a query each). Always True without a cache; always False for a backend
        passed in that is not SQLite (it keeps those answers among the others)."""
        if not self.enabled:
            return True
        if self.content is None:
            return False
        with self._lock:
            if any(table == "content" for table, _ in (*self._pending, *self._writing,
                                                      *self._preloaded)):
                return False
        with self.content.connection() as con:
            return con.execute(f"SELECT 1 FROM {self.content.table_name} LIMIT 1"
                               ).fetchone() is None

    def release(self) -> None:
        """Forget what :meth:`preload` read (and :meth:`assume_cold`)."""
        with self._lock:
            self._preloaded = {}
            self._keys = {}
            self._cold = False
            self._flushed = set()

    def assume_cold(self) -> None:
        """Until :meth:`release`, answer lookups from memory only (what is pending or was
        preloaded): for a walk whose tags' manifests :meth:`preload` found none of, whose
        other answers are then as good as certainly not stored either (what this cache
        writes meanwhile is still read back). Saves one query per request of a cold walk; a
        stored answer missed this way is only asked of the registry again."""
        with self._lock:
            self._cold = True

    # -- writing -----------------------------------------------------------------------------
    def settle(self, found: Lookup, response):
        """The answer to hand on after the network answered a request looked up as ``found``:
        a 304 to a revalidation is the stored answer, renewed; a 200 is stored (behind)."""
        if found.key is None:
            return response
        if response.status_code == 304 and found.stale is not None:
            renewed = found.stale
            renewed.created_at = utcnow()
            renewed.expires = renewed.created_at + timedelta(seconds=max(self.freshness, 1))
            renewed.revalidated = True
            response.close()
            self._queue("responses", found.key,
                        self._stored_form(renewed, renewed.created_at, renewed.expires))
            return renewed
        if response.status_code != 200:
            return response
        if found.content:
            ctype = (response.headers.get("Content-Type") or "").replace("\n", " ")
            self._queue("content", found.key, ctype.encode("latin-1", "replace") + b"\n"
                        + response.content)
        elif not (has_secret_param(response.url)
                  or has_secret_param(response.headers.get("Link"))):
            # (a page with a secret in its URL or in the next page's URL is not kept: without
            # its Link a stored page would end the list early. Content-addressed answers keep
            # no URL or header, so a signed storage redirect does not matter there.)
            now = utcnow()
            expires = None if classify(self.base_url, response.url or "") is None else \
                now + timedelta(seconds=max(self.freshness, 1))
            self._queue("responses", found.key, self._stored_form(response, now, expires))
        return response

    def _stored_form(self, response, created_at: datetime, expires: datetime | None):
        """What the store keeps of a mutable answer: the row of :func:`_answer_row`, or for
        a backend passed in, requests-cache's ``CachedResponse`` without secret headers."""
        if self._legacy is not None:  # a file of ours
            return _answer_row(response, created_at, expires)
        if isinstance(response, CachedResponse):
            return _without_secrets(response)
        return _without_secrets(CachedResponse.from_response(response, expires=expires))

    def _queue(self, table: str, key: str, value) -> None:
        with self._lock:
            self._preloaded.pop((table, key), None)  # older than what is written now
            self._pending[(table, key)] = value
            full = len(self._pending) >= BATCH_SIZE
        if full:
            self.flush()

    def flush(self) -> None:
        """Write every pending answer: one transaction per table."""
        if not self.enabled:
            return
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._writing = batch
            try:
                if batch:
                    self._write(batch)
            finally:
                with self._lock:
                    self._writing = {}
                    if self._cold:
                        self._flushed.update(batch)

    def _write(self, batch: dict) -> None:
        content = [(k, v) for (t, k), v in batch.items() if t == "content"]
        responses = [(k, v) for (t, k), v in batch.items() if t == "responses"]
        for store, items in ((self.content, content), (self.answers, responses)):
            if not items:
                continue
            if isinstance(store, SQLiteDict):
                rows = [(k, store.serialize(v), getattr(v, "expires_unix", None))
                        for k, v in items]
                with store.connection(commit=True) as con:
                    con.executemany(f"INSERT OR REPLACE INTO {store.table_name} "
                                    "(key, value, expires) VALUES (?, ?, ?)", rows)
            else:
                for k, v in items:
                    store[k] = v

    # -- invalidation ------------------------------------------------------------------------
    def _drop(self, keys_by_table: dict[str, list[str]]) -> None:
        with self._lock:
            for table, keys in keys_by_table.items():
                for k in keys:
                    self._pending.pop((table, k), None)
                    self._preloaded.pop((table, k), None)
        for table, keys in keys_by_table.items():
            store = self.content if table == "content" else self.answers
            if keys and store is not None:
                store.bulk_delete(keys)

    def invalidate(self, repository: str, references: tuple[str, ...] | list[str] = ()) -> int:
        """Drop what a change in ``repository`` made stale: every page of its tag list, every
        page of the catalog (any page size), and its manifests by the given references (tags
        or digests), under every ``Accept``. Returns the number of entries dropped."""
        if not self.enabled:
            return 0
        self.flush()
        prefixes = [f"{m} tags {repository} " for m in ("GET", "HEAD")]
        prefixes += [f"{m} catalog " for m in ("GET", "HEAD")]
        prefixes += [f"{m} manifest {repository} {r} " for r in references
                     for m in ("GET", "HEAD")]
        exact = {f"GET manifest {repository} {r}" for r in references}
        with self._flush_lock:
            drop = {"responses": [k for k in list(self.answers.keys())
                                  if k.startswith(tuple(prefixes))]}
            if self.content is not None:
                # exact keys, looked up one by one: no scan of the table
                drop["content"] = [k for k in sorted(exact) if k in self.content]
            self._drop(drop)
        return sum(len(v) for v in drop.values())

    def evict(self, method: str, url: str, accept: str | None) -> None:
        """Drop one stored answer (bytes that did not verify must never be served again)."""
        if not self.enabled:
            return
        found = classify(self.base_url, url)
        if found is None:
            return
        key, content = self._key(method, url, accept, found)
        with self._flush_lock:
            self._drop({"content" if content else "responses": [key]})

    def close(self) -> None:
        """Write what is pending and close the session."""
        try:
            self.flush()
        finally:
            self.session.close()
