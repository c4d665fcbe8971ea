"""RegistryClient: the verbs of the OCI distribution API over one :class:`Transport`.

Spec sections followed: OCI distribution-spec v1.1 "Pulling manifests", "Pulling blobs",
"Listing tags", "Pushing blobs" (monolithic POST then PUT), "Pushing manifests",
"Deleting manifests"; Distribution's ``/v2/_catalog``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any
from urllib.parse import quote

from . import mediatypes as mt
from .cache_policy import DEFAULT_FRESHNESS, make_session
from .credentials import resolve_credentials
from .errors import (
    CatalogUnavailable,
    DigestMismatch,
    InvalidReference,
    InvalidResponse,
    NotFound,
    RegistryError,
)
from .models import (
    UNKNOWN_PLATFORM,
    Descriptor,
    ImageDetails,
    Manifest,
    TagDetails,
    parse_manifest,
)
from .pagination import next_page
from .progress import progress_bar
from .reference import (
    is_digest,
    normalize_registry,
    sha256_digest,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)
from .transport import Transport

log = logging.getLogger("registry_insights")

CATALOG_SCOPE = "registry:catalog:*"
#: Entries asked per catalog page (Distribution refuses more than 1000).
CATALOG_PAGE_SIZE = 1000


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def delete_scope(repository: str) -> str:
    return f"repository:{repository}:delete"


class RegistryClient:
    """A client of one registry (OCI distribution-spec v2) for one identity.

    Parameters
    ----------
    registry : str
        ``host[:port]`` or ``https://host[:port]``. Plain http only for loopback hosts or with
        ``insecure=True``.
    username, password : str, optional
        Explicit credentials; else the docker configuration (``$DOCKER_CONFIG/config.json``),
        else anonymous. The password never appears in reprs, logs, caches or errors.
    cache : "default", None, path or requests-cache backend
        The HTTP cache (see :mod:`registry_insights.cache_policy`): one persistent SQLite store
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
        freshness: float = DEFAULT_FRESHNESS,
        max_workers: int = 8,
        timeout: float = 30.0,
        verify: bool | str = True,
        insecure: bool = False,
        verbose: bool = False,
        retries: int = 5,
    ):
        self.registry = normalize_registry(registry, insecure=insecure)
        self.host = self.registry.split("://", 1)[1]
        self.credentials = resolve_credentials(self.host, username, password)
        self.max_workers = max(int(max_workers), 1)
        session = make_session(cache, self.registry, self.credentials.identity, freshness)
        self._transport = Transport(
            self.registry, self.credentials, session, max_workers=self.max_workers,
            timeout=timeout, verify=verify, retries=retries,
        )
        self.catalog_page_size = CATALOG_PAGE_SIZE
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._configs: dict[str, dict] = {}
        self._config_locks: dict[str, threading.Lock] = {}
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
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._transport.close()

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
        self._transport.plan_scopes([pull_scope(r) for r in repositories])

    @property
    def session(self):
        """The (caching) ``requests`` session in use."""
        return self._transport.session

    def map(self, fn: Callable, items: Iterable, progress=None, desc: str = "") -> list:
        """``[fn(item) for item in items]`` run on ``max_workers`` threads, in input order."""
        items = list(items)
        if not items:
            return []
        bar = progress_bar(len(items), desc, progress) if desc else None
        if self.max_workers == 1 or len(items) == 1:
            out = []
            for item in items:
                out.append(fn(item))
                if bar:
                    bar.update(1)
        else:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.max_workers,
                                                        thread_name_prefix="registry")
            futures = [self._executor.submit(fn, item) for item in items]
            out = []
            for future in futures:
                out.append(future.result())
                if bar:
                    bar.update(1)
        if bar:
            bar.close()
        return out

    # -- listing -----------------------------------------------------------------------------
    def ping(self) -> str | None:
        """Probe ``GET /v2/`` (once per client) and return "basic", "bearer" or None."""
        return self._transport.ping()

    def _pages(self, kind: str, path: str, key: str, scopes: tuple[str, ...],
               page_size: int | None = None) -> list[str]:
        """Follow ``Link: rel="next"`` pages from ``path``; a page size the registry refuses
        (``PAGINATION_NUMBER_INVALID``, 413) is halved and the first page asked again."""
        while True:
            first = f"{path}?n={page_size}" if page_size else path
            try:
                return self._follow(kind, first, key, scopes)
            except RegistryError as exc:
                too_big = exc.code == "PAGINATION_NUMBER_INVALID" or exc.status == 413
                if not (page_size and too_big and page_size > 10):
                    raise
                page_size //= 2

    def _follow(self, kind: str, first: str, key: str, scopes: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        url: str | None = first
        while url:
            response = self._transport.request(kind, "GET", url, scopes=scopes)
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
            out.extend(body.get(key) or [])
            url = next_page(response, seen)
            if url:
                self._transport.url(url)  # refuses another host
        return out

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
            if exc.status in (401, 403, 404, 405) and "/v2/_catalog" in (exc.url or ""):
                raise CatalogUnavailable(
                    f"the registry offers no catalog to identity "
                    f"{self.credentials.identity!r} ({exc.code or exc.status}); pass the "
                    "repositories explicitly, e.g. tags_frame(client, repositories=[...])",
                    method="GET", url=exc.url, status=exc.status, code=exc.code,
                ) from None
            raise
        return sorted(set(names))

    def tags(self, repository: str) -> list[str]:
        """The tags of ``repository`` (``GET /v2/<name>/tags/list``, pages followed), sorted.

        A tag list of ``null`` (every tag deleted) is an empty list.

        Raises
        ------
        InvalidReference
            For an invalid repository name (before any request).
        NotFound
            When the repository does not exist (``NAME_UNKNOWN``).
        """
        validate_repository(repository)
        tags = self._pages("tags", f"/v2/{repository}/tags/list", "tags",
                           (pull_scope(repository),))
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
        validate_repository(repository)
        validate_reference(reference)
        response = self._transport.request(
            "manifest", "GET", f"/v2/{repository}/manifests/{reference}",
            scopes=(pull_scope(repository),), headers={"Accept": mt.MANIFEST_ACCEPT},
        )
        raw = response.content
        digest = sha256_digest(raw)
        announced = response.headers.get("Docker-Content-Digest")
        media_type_header = response.headers.get("Content-Type")
        expected = reference if is_digest(reference) else announced
        if expected and expected.startswith("sha256:") and expected != digest:
            raise DigestMismatch(
                f"manifest {repository}@{expected} has bytes that hash to {digest}",
                method="GET", url=response.url, status=response.status_code,
            )
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
        manifest = self.manifest(repository, reference)  # raises the precise error
        return Descriptor(manifest.media_type, manifest.digest, manifest.size)

    def config(self, repository: str, descriptor: Descriptor) -> dict:
        """The image config JSON a manifest points to; fetched once per digest per client."""
        digest = descriptor.digest
        if digest in self._configs:
            return self._configs[digest]
        with self._config_guard:
            lock = self._config_locks.setdefault(digest, threading.Lock())
        with lock:
            if digest not in self._configs:
                raw = self.blob_bytes(repository, digest)
                try:
                    parsed = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    raise InvalidResponse(
                        f"config {digest} of {repository} is not JSON; first bytes: {raw[:80]!r}"
                    ) from None
                self._configs[digest] = parsed if isinstance(parsed, dict) else {}
        return self._configs[digest]

    def _image(self, repository: str, manifest: Manifest, descriptor: Descriptor | None
               ) -> ImageDetails:
        platform = descriptor.platform if descriptor and descriptor.platform else None
        is_image = not (descriptor is not None and descriptor.is_attestation)
        if manifest.is_schema1:
            arch = manifest.data.get("architecture") or "unknown"
            return ImageDetails(f"linux/{arch}", manifest.digest, manifest.media_type,
                                manifest.size, None, None, {}, (), None, is_image)
        cfg = manifest.config
        config: dict = {}
        if cfg is not None and cfg.digest and (is_image and cfg.media_type in mt.IMAGE_CONFIGS):
            config = self.config(repository, cfg)
        if platform is None:
            platform_text = "/".join(
                p for p in (config.get("os"), config.get("architecture"), config.get("variant"))
                if p
            ) if config.get("os") and config.get("architecture") else str(UNKNOWN_PLATFORM)
        else:
            platform_text = str(platform)
        return ImageDetails(
            platform=platform_text,
            manifest_digest=manifest.digest,
            manifest_media_type=manifest.media_type,
            manifest_size=manifest.size,
            config_digest=cfg.digest if cfg else None,
            config_size=cfg.size if cfg else None,
            config=config,
            layers=tuple(manifest.layers),
            layer_size=manifest.layer_size,
            is_image=is_image,
        )

    def tag_details(self, repository: str, tag: str) -> TagDetails:
        """Digest, media type, manifest and per-platform images of ``repository:tag``.

        For a single image: one entry in ``images`` with its config, ``created_at`` (UTC) and
        ``layer_size`` (sum of compressed layer sizes, bytes). For an index: one entry per image
        platform; attestations and ``unknown/unknown`` entries go to ``others``.
        """
        return self.details_many([(repository, tag)])[0]

    def details_many(self, pairs: Iterable[tuple[str, str]], progress=None) -> list[TagDetails]:
        """:meth:`tag_details` for many (repository, tag) pairs, concurrently, in input order.

        Requests: one manifest per tag, one per platform manifest of an index, one config blob
        per distinct config digest (shared configs are fetched once, even concurrently).
        """
        pairs = list(pairs)
        for repository, tag in pairs:
            validate_repository(repository)
            validate_tag(tag)
        self.plan_repositories(r for r, _ in pairs)
        tops = self.map(lambda p: self.manifest(*p), pairs, progress, "manifests")
        children: list[tuple[str, Descriptor]] = []
        for (repository, _tag), top in zip(pairs, tops):
            if top.is_index:
                children.extend((repository, d) for d in top.manifests)
        child_keys = list(dict.fromkeys((r, d.digest) for r, d in children))
        fetched = self.map(lambda k: self.manifest(*k), child_keys, progress, "platforms")
        child_by_key = dict(zip(child_keys, fetched))
        # configs: one fetch per distinct digest, from the first repository that uses it
        wanted: dict[str, tuple[str, Descriptor]] = {}
        for (repository, _tag), top in zip(pairs, tops):
            manifests = ([(child_by_key[(repository, d.digest)], d) for d in top.manifests
                          if not d.is_attestation] if top.is_index else [(top, None)])
            for manifest, _desc in manifests:
                cfg = manifest.config
                if (cfg is not None and cfg.media_type in mt.IMAGE_CONFIGS
                        and cfg.digest not in self._configs):
                    wanted.setdefault(cfg.digest, (repository, cfg))
        self.map(lambda item: self.config(*item), list(wanted.values()), progress, "configs")
        out = []
        for (repository, tag), top in zip(pairs, tops):
            if top.is_index:
                images = [self._image(repository, child_by_key[(repository, d.digest)], d)
                          for d in top.manifests]
            else:
                images = [self._image(repository, top, None)]
            out.append(TagDetails(
                repository=repository, tag=tag, digest=top.digest, media_type=top.media_type,
                size=top.size, manifest=top,
                images=tuple(i for i in images if i.is_image),
                others=tuple(i for i in images if not i.is_image),
            ))
        return out

    # -- blobs -------------------------------------------------------------------------------
    def blob_bytes(self, repository: str, digest: str) -> bytes:
        """A small blob (a config) in memory, verified; cached forever (content addressed)."""
        validate_repository(repository)
        validate_digest(digest)
        response = self._transport.request(
            "blob", "GET", f"/v2/{repository}/blobs/{digest}", scopes=(pull_scope(repository),)
        )
        data = response.content
        if digest.startswith("sha256:") and sha256_digest(data) != digest:
            raise DigestMismatch(f"blob {repository}@{digest} hashes to {sha256_digest(data)}",
                                 method="GET", url=response.url)
        return data

    def blob(self, repository: str, digest: str, fileobj: IO[bytes],
             chunk_size: int = 1 << 20) -> int:
        """Stream blob ``digest`` into ``fileobj`` (not cached); return the bytes written.

        The sha256 of the bytes is checked as they arrive.

        Raises
        ------
        DigestMismatch
            When the bytes do not hash to ``digest`` (what was written must then be discarded).
        """
        validate_repository(repository)
        validate_digest(digest)
        response = self._transport.request(
            "blob", "GET", f"/v2/{repository}/blobs/{digest}", scopes=(pull_scope(repository),),
            stream=True, cache=False,
        )
        hasher = hashlib.sha256()
        written = 0
        with response:
            for chunk in response.iter_content(chunk_size):
                hasher.update(chunk)
                fileobj.write(chunk)
                written += len(chunk)
        actual = "sha256:" + hasher.hexdigest()
        if digest.startswith("sha256:") and actual != digest:
            raise DigestMismatch(f"blob {repository}@{digest} hashes to {actual}",
                                 method="GET", url=response.url)
        return written

    # -- pushing (used by the demo seeding and by tag-only deletes) ---------------------------
    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD the blob: True when ``repository`` has it."""
        validate_repository(repository)
        response = self._transport.request(
            "blob", "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(pull_scope(repository),),
            ok=(200, 404), cache=False,
        )
        return response.status_code == 200

    def upload_blob(self, repository: str, data: bytes, digest: str | None = None) -> str:
        """Push ``data`` as a blob (monolithic POST + PUT); return its digest."""
        validate_repository(repository)
        digest = digest or sha256_digest(data)
        scopes = (push_scope(repository),)
        started = self._transport.request(
            "upload", "POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, ok=(202,),
            cache=False,
        )
        location = started.headers.get("Location")
        if not location:
            raise InvalidResponse("blob upload answered 202 without a Location",
                                  method="POST", url=started.url, status=202)
        sep = "&" if "?" in location else "?"
        self._transport.request(
            "upload", "PUT", f"{location}{sep}digest={quote(digest)}", scopes=scopes,
            ok=(201,), cache=False, data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True when mounted, False when the registry wants an upload."""
        validate_repository(repository)
        validate_repository(from_repository)
        response = self._transport.request(
            "upload", "POST",
            f"/v2/{repository}/blobs/uploads/?mount={quote(digest)}&from={from_repository}",
            scopes=(push_scope(repository), pull_scope(from_repository)), ok=(201, 202),
            cache=False,
        )
        if response.status_code == 202 and response.headers.get("Location"):
            # an upload session was opened instead; cancel it
            self._transport.request("upload", "DELETE", response.headers["Location"],
                                    scopes=(push_scope(repository),), ok=(204, 404),
                                    cache=False)
        return response.status_code == 201

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Push manifest bytes under a tag or digest; return the digest of ``raw``."""
        validate_repository(repository)
        validate_reference(reference)
        self._transport.request(
            "upload", "PUT", f"/v2/{repository}/manifests/{reference}",
            scopes=(push_scope(repository),), ok=(201,), cache=False, data=raw,
            headers={"Content-Type": media_type},
        )
        self._forget(repository, reference)
        return sha256_digest(raw)

    # -- deleting ----------------------------------------------------------------------------
    def _forget(self, repository: str, *references: str) -> None:
        """Drop cached answers that a change in ``repository`` made stale: its tag list, the
        given manifests (by tag or digest) and the catalog."""
        import requests

        session = self._transport.session
        cache = getattr(session, "cache", None)
        if cache is None:
            return
        base = self.registry
        wanted = [(f"{base}/v2/{repository}/tags/list", {}),
                  (f"{base}/v2/_catalog?n={self.catalog_page_size}", {})]
        wanted += [(f"{base}/v2/{repository}/manifests/{r}", {"Accept": mt.MANIFEST_ACCEPT})
                   for r in references]
        prepared = [session.prepare_request(requests.Request(method, url, headers=headers))
                    for url, headers in wanted for method in ("GET", "HEAD")]
        cache.delete(requests=prepared)

    def delete(self, repository: str, tag: str | None = None, digest: str | None = None
               ) -> list[str]:
        """Delete a manifest by digest, or one tag; return the tags that went.

        ``digest=``: deletes the manifest, and with it **every tag** of ``repository`` that
        points to it (OCI distribution-spec, "Deleting manifests"). ``tag=``: deletes that tag
        only. The registry frees space only at its next garbage collection.

        Raises
        ------
        InvalidReference
            When neither or both of ``tag`` and ``digest`` are given, or either is malformed.
        NotFound, Unsupported (deletes disabled: 405), Denied, Unauthorized
        RegistryError
            ``tag=`` on a registry without tag deletion when other tags share the digest: the
            message lists those sibling tags, and nothing was deleted.
        """
        validate_repository(repository)
        if (tag is None) == (digest is None):
            raise InvalidReference("delete needs exactly one of tag= or digest=")
        if digest is not None:
            validate_digest(digest)
            tags_before = self._tags_at(repository, digest)
            self._delete_manifest(repository, digest)
            self._forget(repository, digest, *tags_before)
            return tags_before
        validate_tag(tag)
        target = self.head_manifest(repository, tag).digest
        siblings = [t for t in self._tags_at(repository, target) if t != tag]
        if siblings:
            raise RegistryError(
                f"tag {repository}:{tag} shares digest {target} with tags {siblings}; deleting "
                "the digest would delete them too, and this registry has no tag deletion. "
                "Nothing was deleted."
            )
        self._delete_manifest(repository, target)
        self._forget(repository, target, tag)
        return [tag]

    def _tags_at(self, repository: str, digest: str) -> list[str]:
        """Tags of ``repository`` that point to ``digest`` (fresh, not from the cache)."""
        self._forget(repository)
        tags = self.tags(repository)
        found = []
        for tag, desc in zip(tags, self.map(lambda t: self._head_fresh(repository, t), tags)):
            if desc == digest:
                found.append(tag)
        return found

    def _head_fresh(self, repository: str, tag: str) -> str | None:
        try:
            return self.head_manifest(repository, tag).digest
        except NotFound:
            return None

    def _delete_manifest(self, repository: str, digest: str) -> None:
        self._transport.request(
            "delete", "DELETE", f"/v2/{repository}/manifests/{digest}",
            scopes=(delete_scope(repository),), ok=(202, 200), cache=False,
        )


def _enable_verbose_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
