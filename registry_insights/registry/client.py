"""RegistryClient: the verbs of the OCI distribution API over one :class:`Transport`.

Spec sections followed: OCI distribution-spec v1.1 "Pulling manifests", "Pulling blobs",
"Listing tags", "Pushing blobs" (monolithic POST then PUT), "Pushing manifests",
"Deleting manifests"; Distribution's ``/v2/_catalog``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ..errors import (
    CatalogUnavailable,
    InvalidResponse,
    RegistryError,
)
from ..settings import DEFAULTS
from . import mediatypes as mt
from .auth.credentials import Credentials, resolve_credentials
from .blobs import download_blob
from .cache import HttpCache, identity_label
from .deletes import Deleter, DeleteResult
from .models import Descriptor, ImageConfig, Manifest, TagDetails, manifest_digest, parse_manifest
from .names import (
    is_digest,
    normalize_registry,
    validate_digest,
    validate_reference,
    validate_repository,
)
from .pagination import next_page
from .push import PushVerbs, pull_scope
from .responses import redact_url
from .transport import Transport
from .walk import fetch_details
from .workers import WorkerPool

log = logging.getLogger("registry_insights")

CATALOG_SCOPE = "registry:catalog:*"
#: Entries asked per catalog page (Distribution refuses more than 1000).
CATALOG_PAGE_SIZE = 1000
#: Pages of one list followed at most (a million tags at Distribution's page size of 100).
MAX_PAGES = 10_000


@dataclass(frozen=True)
class ClientSettings:
    """A :class:`RegistryClient`'s registry, credentials and options, to build the same
    client elsewhere (:meth:`connect`). Pickles with the credentials (a worker needs them);
    the repr hides the secret."""

    registry: str
    credentials: Credentials
    options: dict = field(default_factory=dict)

    def connect(self) -> RegistryClient:
        """A new client with these settings (its own session, connection pool and cache)."""
        return RegistryClient(self.registry, credentials=self.credentials, **self.options)


class RegistryClient(PushVerbs):
    """A client of one registry (OCI distribution-spec v2) for one identity.

    Parameters
    ----------
    registry : str
        ``host[:port]`` or ``https://host[:port]``, with a path for a registry served under one
        (``https://host/reg``: the API is at ``/reg/v2/``). Plain http only for loopback hosts
        or with ``insecure=True``.
    username, password : str, optional
        Explicit credentials; else the docker configuration (``$DOCKER_CONFIG/config.json``),
        else anonymous. The password never appears in reprs, logs, caches or errors.
    cache : "default", None, path or requests-cache backend
        The HTTP cache (see :mod:`registry_insights.registry.cache`): one persistent SQLite store
        per (registry, identity) under the user cache directory by default; None disables it.
    freshness : float
        Seconds a catalog, tag list or manifest-by-tag answer is reused before it is revalidated.
    max_workers : int
        Concurrent requests (and connection pool size).
    timeout : float
        Seconds per request (connect and read).
    verify : bool or str
        TLS verification (or a CA bundle path).
    insecure : bool
        Allow plain http to a non-loopback host.
    retries : int
        Retries of 429, 502, 503, 504 and connection errors (urllib3 ``Retry``, exponential
        backoff with jitter).
    max_retry_after : float
        Seconds a ``Retry-After`` (seconds or HTTP-date) is honoured up to; a longer wait raises
        :class:`~registry_insights.errors.RateLimited` at once, carrying ``retry_after``.
    credentials : Credentials, optional
        Resolved credentials to use as they are (instead of ``username``/``password`` or the
        docker configuration); what :meth:`settings` carries to other processes.
    verbose : bool
        Log one line per request (method, URL, status, time, cache or network) on the
        ``registry_insights`` logger at INFO, adding a stderr handler if it has none.

    Raises
    ------
    InvalidReference
        When ``registry`` is not a host or http(s) URL.
    """

    def __init__(
        self,
        registry: str,
        username: str | None = None,
        password: str | None = None,
        *,
        cache: Any = "default",
        freshness: float = DEFAULTS.freshness,
        max_workers: int = DEFAULTS.max_workers,
        timeout: float = DEFAULTS.timeout,
        verify: bool | str = True,
        insecure: bool = False,
        verbose: bool = False,
        retries: int = DEFAULTS.retries,
        max_retry_after: float = DEFAULTS.max_retry_after,
        credentials: Credentials | None = None,
    ):
        self.registry = normalize_registry(registry, insecure=insecure)
        self.host = urlsplit(self.registry).netloc  # host[:port]: credentials are by host
        self.credentials = credentials if credentials is not None else \
            resolve_credentials(self.host, username, password)
        self.max_workers = max(int(max_workers), 1)
        portable_cache = cache if cache is None or isinstance(cache, (str, Path)) else None
        self._options = {"cache": portable_cache, "freshness": freshness,
                         "max_workers": self.max_workers, "timeout": timeout, "verify": verify,
                         "insecure": insecure, "retries": retries,
                         "max_retry_after": max_retry_after}
        secret = None if self.credentials.username else self.credentials.identity_token
        self.cache = HttpCache(cache, self.registry,
                               identity_label(self.credentials.identity, secret), freshness)
        self._transport = Transport(
            self.registry, self.credentials, self.cache, max_workers=self.max_workers,
            timeout=timeout, verify=verify, retries=retries, max_retry_after=max_retry_after,
        )
        self.catalog_page_size = CATALOG_PAGE_SIZE
        #: Pages followed at most per list (catalog, tags) before stopping with a warning.
        self.max_pages = MAX_PAGES
        self.workers = WorkerPool(self.max_workers)
        self._deleter = Deleter(self)
        self._configs: dict[str, ImageConfig] = {}
        self._config_locks: dict[str, threading.Lock] = {}
        #: one bound method shared by every light config (not one closure each)
        self._read_blob = self.blob_bytes
        self._config_guard = threading.Lock()
        if verbose:
            _enable_verbose_logging()

    # -- housekeeping ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"RegistryClient({self.registry!r}, identity={self.credentials.identity!r}, "
                f"auth={self._transport.scheme!r})")

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and worker threads."""
        self.workers.close()
        self._transport.close()

    def settings(self, **overrides) -> ClientSettings:
        """What another process or machine needs to build the same client (its own session,
        connections and cache): picklable, the secret hidden from its repr. ``overrides``
        replace constructor options (``cache=``, ``max_workers=`` ...). A cache given as a
        requests-cache backend object does not travel: the copy then has ``cache=None``."""
        return ClientSettings(self.registry, self.credentials, {**self._options, **overrides})

    def count_requests(self, counts: dict) -> None:
        """Add requests made for this client elsewhere (by its copies in other processes)."""
        self._transport.add_counts(counts)

    @property
    def request_counts(self) -> Counter:
        """Network requests so far by kind (cache hits not counted): ``ping``, ``token``,
        ``catalog``, ``tags``, ``manifest``, ``blob``, ``upload``, ``delete``, ``retry``."""
        return self._transport.request_counts

    @property
    def rate_limit(self) -> dict:
        """The last rate-limit headers the registry sent (``RateLimit-Remaining`` ...)."""
        return dict(self._transport.rate_limit)

    def plan_repositories(self, repositories: Iterable[str]) -> None:
        """Ask for pull tokens covering up to 20 of these repositories at once (bearer auth),
        when the next token is needed; no request is made now."""
        self._transport.auth.plan_scopes([pull_scope(r) for r in repositories])

    @property
    def session(self):
        """The (caching) ``requests`` session in use."""
        return self._transport.session

    def map(self, fn: Callable, items: Iterable, progress=None, desc: str = "") -> list:
        """``[fn(item) for item in items]`` run on ``max_workers`` threads, in input order."""
        return self.workers.map(fn, items, progress, desc)

    # -- listing -----------------------------------------------------------------------------
    def ping(self) -> str | None:
        """Probe ``GET /v2/`` (once per client) and return "basic", "bearer" or None."""
        return self._transport.ping()

    def _pages(self, kind: str, path: str, key: str, scopes: tuple[str, ...],
               page_size: int | None = None, cache: bool | str = True) -> list[str]:
        """Follow ``Link: rel="next"`` pages from ``path``; a page size the registry refuses
        (``PAGINATION_NUMBER_INVALID``, 413) is halved and the first page asked again."""
        while True:
            first = f"{path}?n={page_size}" if page_size else path
            try:
                return self._follow(kind, first, key, scopes, cache)
            except RegistryError as exc:
                too_big = exc.code == "PAGINATION_NUMBER_INVALID" or exc.status == 413
                if not (page_size and too_big and page_size > 10):
                    raise
                page_size //= 2

    def _follow(self, kind: str, first: str, key: str, scopes: tuple[str, ...],
                cache: bool | str = True) -> list[str]:
        """Every item of every page from ``first``, each once, in the order first seen.

        The next-page cursor is opaque, so a registry can link its last page back to the
        first under a new cursor every time: the URL never repeats. The walk therefore stops
        (with a warning) at a page that adds no item not seen before, and after
        :attr:`max_pages` pages.
        """
        out: dict[str, None] = {}
        seen: set[str] = set()
        url: str | None = first
        pages = 0
        while url:
            response = self._transport.request(kind, "GET", url, scopes=scopes, cache=cache)
            pages += 1
            try:
                body = response.json()
            except ValueError:
                raise InvalidResponse(
                    f"{kind} page is not JSON; first bytes: {response.content[:80]!r}",
                    url=response.url, status=response.status_code,
                ) from None
            if not isinstance(body, dict):
                raise InvalidResponse(f"{kind} page is not a JSON object: {body!r:.80}",
                                      url=response.url)
            listed = body.get(key) or []
            if not isinstance(listed, list):
                raise InvalidResponse(f"{kind} page: {key!r} is not a list: {listed!r:.80}",
                                      url=redact_url(response.url))
            items = [i for i in listed if isinstance(i, str)]
            before = len(out)
            out.update(dict.fromkeys(items))
            url = next_page(response, seen)
            if url:
                self._transport.url(url)  # refuses another host
                if pages > 1 and len(out) == before:
                    log.warning("%s: page %d of %s added nothing new but links a next page "
                                "(%s); stopped there", kind, pages, redact_url(first),
                                redact_url(url))
                    break
                if pages >= self.max_pages:
                    log.warning("%s: stopped after %d pages of %s (max_pages); the registry "
                                "still links a next page, the list may be incomplete", kind,
                                pages, redact_url(first))
                    break
        return list(out)

    def repositories(self) -> list[str]:
        """Every repository in the catalog (``GET /v2/_catalog``, pages followed), sorted.

        Raises
        ------
        CatalogUnavailable
            When the registry has no catalog (Docker Hub, GHCR, GCR) or refuses it to this
            identity: pass repositories explicitly (``tags_frame(client, repositories=[...])``).
        """
        try:
            names = self._pages("catalog", "/v2/_catalog", "repositories", (CATALOG_SCOPE,),
                                page_size=self.catalog_page_size)
        except RegistryError as exc:
            refused = exc.status in (403, 404, 405) or (
                exc.status == 401 and self._transport.scheme == "bearer")
            if refused and "/v2/_catalog" in (exc.url or ""):
                raise exc.rewrap(
                    f"the registry offers no catalog to identity "
                    f"{self.credentials.identity!r} ({exc.code or exc.status}); pass the "
                    "repositories explicitly, e.g. tags_frame(client, repositories=[...])",
                    CatalogUnavailable) from None
            raise
        return sorted(set(names))

    def tags(self, repository: str, *, fresh: bool = False) -> list[str]:
        """The tags of ``repository`` (``GET /v2/<name>/tags/list``, pages followed), sorted.

        A tag list of ``null`` (every tag deleted) is an empty list. ``fresh=True`` asks the
        registry for every page (never the cache) and stores the answers.

        Raises
        ------
        InvalidReference
            For an invalid repository name (before any request).
        NotFound
            When the repository does not exist (``NAME_UNKNOWN``).
        """
        validate_repository(repository)
        tags = self._pages("tags", f"/v2/{repository}/tags/list", "tags",
                           (pull_scope(repository),), cache="refresh" if fresh else True)
        return sorted(set(tags))

    # -- manifests ---------------------------------------------------------------------------
    def manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest or index ``repository:reference`` (a tag or digest), verified.

        Sends an ``Accept`` of the OCI index and manifest and Docker manifest list and schema 2
        (and schema 1). The digest is the sha256 of the exact bytes received; it must equal
        ``Docker-Content-Digest`` when present, and the reference when that is a digest.

        Raises
        ------
        InvalidReference, NotFound, DigestMismatch, InvalidResponse
        """
        return self._get_manifest(repository, reference)

    def _get_manifest(self, repository: str, reference: str, cache: bool = True) -> Manifest:
        validate_repository(repository)
        validate_reference(reference)

        def expected(response) -> str | None:
            return reference if is_digest(reference) else \
                response.headers.get("Docker-Content-Digest")

        response, raw, digest = self._transport.get_verified(
            "manifest", f"/v2/{repository}/manifests/{reference}", (pull_scope(repository),),
            {"Accept": mt.MANIFEST_ACCEPT}, expected, f"manifest {repository}:{reference}",
            cache, digest_of=manifest_digest)
        media_type_header = response.headers.get("Content-Type")
        if digest == reference:
            digest = reference  # one string held for both (a walk keeps thousands)
        return parse_manifest(repository, reference, raw, media_type_header, digest)

    def head_manifest(self, repository: str, reference: str) -> Descriptor:
        """Digest, size and media type of a manifest, asked fresh with HEAD (no body).

        Falls back to GET when HEAD is refused or answers without ``Docker-Content-Digest``.

        Raises
        ------
        InvalidReference, NotFound
        """
        validate_repository(repository)
        validate_reference(reference)
        response = self._transport.request(
            "manifest", "HEAD", f"/v2/{repository}/manifests/{reference}",
            scopes=(pull_scope(repository),), headers={"Accept": mt.MANIFEST_ACCEPT},
            ok=(200, 401, 403, 404, 405), cache=False,
        )
        digest = response.headers.get("Docker-Content-Digest")
        if response.status_code == 200 and digest:
            size = response.headers.get("Content-Length", "")
            media_type = (response.headers.get("Content-Type") or "").split(";")[0]
            return Descriptor(media_type, digest, int(size) if size.isdigit() else None)
        # asked fresh too: a cached body must not make a deleted tag look alive
        manifest = self._get_manifest(repository, reference, cache=False)
        return Descriptor(manifest.media_type, manifest.digest, manifest.size)

    def config(self, repository: str, descriptor: Descriptor) -> ImageConfig:
        """The image config a manifest points to, as an :class:`ImageConfig`: a read-only
        mapping that holds ``architecture``, ``os``, ``variant`` and ``created`` and reads
        the rest (``.to_dict()``: all of it) from the cache (or the registry) when asked;
        fetched once per digest per client.

        Raises
        ------
        InvalidResponse
            When the blob is not JSON.
        """
        digest = descriptor.digest
        held = self._configs.get(digest)
        if held is not None:
            return held
        with self._config_guard:
            lock = self._config_locks.get(digest)
            if lock is None:
                lock = self._config_locks[digest] = threading.Lock()
        with lock:
            if digest not in self._configs:
                raw = self.blob_bytes(repository, digest)
                # held light: the fields the frames read; the bytes come back from the
                # HTTP cache (configs are kept forever) when more is asked
                self._configs[digest] = ImageConfig.parse(
                    raw, f"config {digest} of {repository}", digest).light(
                    self._read_blob, repository)
        with self._config_guard:  # fetched: no one waits for this digest any more
            self._config_locks.pop(digest, None)
        return self._configs[digest]

    def tag_details(self, repository: str, tag: str) -> TagDetails:
        """Digest, media type, manifest and per-platform images of ``repository:tag``
        (``tag`` may also be a digest: ``TagDetails.tag`` is then that digest).

        For a single image: one entry in ``images`` with its config, ``created_at`` (UTC) and
        ``layer_size`` (sum of compressed layer sizes, bytes). For an index: one entry per image
        platform; attestations and ``unknown/unknown`` entries go to ``others``.
        """
        return self.details_many([(repository, tag)])[0]

    def details_many(self, pairs: Iterable[tuple[str, str]], progress=None,
                     errors: list | None = None) -> list[TagDetails]:
        """:meth:`tag_details` for many (repository, tag) pairs, concurrently, in input order
        (see :func:`~registry_insights.registry.walk.fetch_details` for the requests made and
        for ``errors``, where tags that cannot be read go instead of raising)."""
        return fetch_details(self, pairs, progress, errors=errors)

    def tags_of_digest(self, repository: str, digest: str) -> list[str]:
        """The tags of ``repository`` that point to ``digest`` now, sorted.

        Reads the tag list and HEADs every tag, fresh (not from the cache), on ``max_workers``
        threads: what deleting ``digest`` would take with it.

        Raises
        ------
        InvalidReference, NotFound
        """
        validate_digest(digest)
        state = self._deleter.read(repository)
        return sorted(t for t, d in state.tags.items() if d.digest == digest)

    # -- blobs -------------------------------------------------------------------------------
    def blob_bytes(self, repository: str, digest: str) -> bytes:
        """A small blob (a config) in memory, verified; cached forever (content addressed)."""
        validate_repository(repository)
        validate_digest(digest)
        _response, data, _actual = self._transport.get_verified(
            "blob", f"/v2/{repository}/blobs/{digest}", (pull_scope(repository),), {},
            lambda _r: digest,
            f"blob {repository}@{digest}")
        return data

    def blob(self, repository: str, digest: str, fileobj: IO[bytes],
             chunk_size: int = 1 << 20, size: int | None = None) -> int:
        """Stream blob ``digest`` into ``fileobj`` (not cached); return the bytes written.

        The sha256 of the bytes is checked as they arrive; they are written as stored, never
        decoded (``Accept-Encoding: identity``). A download that breaks off is resumed with
        ``Range: bytes=<written>-`` (RFC 9110 14.2; OCI distribution-spec, "Pulling blobs"):
        a 206 whose ``Content-Range`` starts there continues it, a 200 (range ignored) starts
        it again (``fileobj`` is rewound with ``seek(0)`` and ``truncate()``), at most
        :data:`~registry_insights.registry.blobs.BLOB_RESUMES` times.

        Parameters
        ----------
        size : int, optional
            The size the blob's descriptor gives (bytes). Reading stops there: a registry
            that announces or sends more is refused without reading the rest.

        Raises
        ------
        DigestMismatch
            When the bytes do not hash to ``digest`` (what was written must then be discarded).
        IncompleteBlob
            When the download kept breaking off, could not be rewound, or the registry sends
            more than ``size`` bytes (what was written must then be discarded).
        """
        validate_repository(repository)
        validate_digest(digest)
        return download_blob(self._transport, repository, digest, fileobj, chunk_size, size)

    def pull(self, repository: str, reference: str, directory: str | Path,
             platform: str | None = None, progress: bool | None = None) -> Path:
        """Pull ``repository:reference`` into an OCI image layout in ``directory``.

        The layout (OCI image-spec, "Image Layout") gets the manifest as received (for an
        index: the index and every platform's manifest, or only ``platform``'s, e.g.
        ``"linux/arm64"``), each config and every layer under ``blobs/sha256/``, each blob
        verified (size and sha256) before it is renamed into place; ``index.json`` gains the
        entry named by the tag once every blob is in place. A pull run again resumes; several
        pulls may share one layout. See :mod:`registry_insights.registry.layout`.
        ``progress``: a progress bar in bytes (default: on in a terminal or notebook).

        Returns
        -------
        pathlib.Path
            The layout directory.

        Raises
        ------
        NotFound
            When the tag, a blob, or the asked platform does not exist.
        DigestMismatch
            When bytes received do not hash to their digest (nothing corrupt is kept).
        Unsupported
            For a Docker schema 1 manifest, which an OCI layout cannot hold.
        FileExistsError
            When ``directory`` holds files but is not an OCI image layout.
        """
        from .layout import pull_layout

        return pull_layout(self, repository, reference, directory, platform=platform,
                           progress=progress)

    # -- deleting (see registry_insights.registry.deletes) ------------------------------------
    def delete(self, repository: str, tag: str | None = None, digest: str | None = None, *,
               children: bool = True, force: bool = False) -> list[str]:
        """Delete one tag, or a manifest by digest; return the tags that went.

        ``tag=`` removes that tag only: its sibling tags (and any index reaching its digest)
        survive; the manifest is deleted by digest when nothing else reaches it, else the tag
        alone goes (OCI tag delete, or on CNCF Distribution 2.8 a swap to a throwaway manifest,
        which needs push rights). ``digest=`` deletes the manifest and **every tag** on it
        (OCI distribution-spec, "Deleting manifests"); a manifest that a tagged index lists is
        refused unless ``force=True`` (the index would keep a dangling entry).
        ``children=True``: what a deleted index lists, to any depth, goes too unless a
        remaining tag reaches it (else the garbage
        collection frees only the index's bytes). Decided on a fresh read of every tag-list
        page, re-read right before the DELETE; see :mod:`registry_insights.registry.deletes`.
        Space is freed only at the registry's next garbage collection.

        Raises
        ------
        InvalidReference
            When neither or both of ``tag`` and ``digest`` are given, or either is malformed.
        NotFound
            When the repository, tag or manifest does not exist (nothing was deleted).
        Unsupported
            When the registry has deletes disabled (405 ``UNSUPPORTED``); nothing was deleted.
        RegistryError
            Nothing was deleted: the throwaway push was refused (the message lists the
            siblings), the digest gained a tag between the read and the delete, or (without
            ``force``) a tagged index lists the digest.
        """
        return self._deleter.delete(repository, tag, digest, children, force)

    def delete_many(self, items: Iterable[tuple], *, children: bool = True,
                    progress: bool | None = None,
                    on_result: Callable[[DeleteResult], None] | None = None
                    ) -> list[DeleteResult]:
        """Delete many tags; return one :class:`DeleteResult` per item, in input order.

        ``items``: (repository, tag) or (repository, tag, digest); with a digest (what the tag
        pointed to when the plan was made) a tag that now points elsewhere is left alone.
        Per repository: one fresh read, one plan by the delete rule
        (:func:`~registry_insights.registry.delete_plan.plan_deletes`), one re-read right before
        deleting. Statuses: ``"deleted"``; ``"absent"`` (already gone, not an error);
        ``"changed"`` (the tag moved, or its digest gained a tag nobody asked for);
        ``"failed"`` (the message says why; the other items go on). ``children`` as in
        :meth:`delete`; ``progress``: a progress bar by tag; ``on_result``: called with each
        result the moment it is decided (to record it before the next request).

        Raises
        ------
        InvalidReference
            For a malformed item (before any request).
        Unsupported
            When the registry has deletes disabled (at the first delete; nothing was deleted).
        """
        return self._deleter.delete_many(items, children, progress, on_result)


def _enable_verbose_logging() -> None:
    """One request a line on stderr, unless the application configured a handler (the
    package's own NullHandler does not count)."""
    if not any(not isinstance(h, logging.NullHandler) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
