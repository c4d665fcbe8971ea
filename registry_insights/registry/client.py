"""RegistryClient: the verbs of the OCI distribution API over one :class:`Transport`.

Spec sections followed: OCI distribution-spec v1.1 "Pulling manifests", "Pulling blobs",
"Listing tags", "Pushing blobs" (monolithic POST then PUT), "Pushing manifests",
"Deleting manifests"; Distribution's ``/v2/_catalog``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ..errors import (
    CatalogUnavailable,
    DigestMismatch,
    InvalidReference,
    InvalidResponse,
    NotFound,
    RegistryError,
    Unsupported,
)
from ..progress import progress_bar
from . import mediatypes as mt
from .auth.credentials import resolve_credentials
from .cache import DEFAULT_FRESHNESS, make_session
from .models import (
    UNKNOWN_PLATFORM,
    Descriptor,
    ImageDetails,
    Manifest,
    TagDetails,
    parse_manifest,
)
from .names import (
    is_digest,
    normalize_registry,
    sha256_digest,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)
from .pagination import next_page
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

    def _in_pool(self) -> bool:
        """True on one of this client's worker threads (nested work then runs inline)."""
        return getattr(_worker, "client", None) is self

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="registry",
                    initializer=lambda: setattr(_worker, "client", self))
            return self._executor

    def map(self, fn: Callable, items: Iterable, progress=None, desc: str = "") -> list:
        """``[fn(item) for item in items]`` run on ``max_workers`` threads, in input order."""
        items = list(items)
        if not items:
            return []
        bar = progress_bar(len(items), desc, progress) if desc else None
        if self.max_workers == 1 or len(items) == 1 or self._in_pool():
            out = []
            for item in items:
                out.append(fn(item))
                if bar:
                    bar.update(1)
        else:
            pool = self._pool()
            futures = [pool.submit(fn, item) for item in items]
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
            refused = exc.status in (403, 404, 405) or (
                exc.status == 401 and self._transport.scheme == "bearer")
            if refused and "/v2/_catalog" in (exc.url or ""):
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
        return self._get_manifest(repository, reference)

    def _get_manifest(self, repository: str, reference: str, cache: bool = True) -> Manifest:
        validate_repository(repository)
        validate_reference(reference)
        response = self._transport.request(
            "manifest", "GET", f"/v2/{repository}/manifests/{reference}",
            scopes=(pull_scope(repository),), headers={"Accept": mt.MANIFEST_ACCEPT},
            cache=cache,
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
        # asked fresh too: a cached body must not make a deleted tag look alive
        manifest = self._get_manifest(repository, reference, cache=False)
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

    @staticmethod
    def _image_config(manifest: Manifest, entry: Descriptor | None) -> Descriptor | None:
        """The config blob an image row reads: images only (not attestations), image config
        media types only; None otherwise."""
        cfg = manifest.config
        if entry is not None and entry.is_attestation:
            return None
        if cfg is None or not cfg.digest or cfg.media_type not in mt.IMAGE_CONFIGS:
            return None
        return cfg

    def _image(self, repository: str, manifest: Manifest, descriptor: Descriptor | None
               ) -> ImageDetails:
        is_image = not (descriptor is not None and descriptor.is_attestation)
        if manifest.is_schema1:
            arch = manifest.data.get("architecture") or "unknown"
            return ImageDetails(f"linux/{arch}", manifest.digest, manifest.media_type,
                                manifest.size, None, None, {}, (), None, is_image)
        cfg = manifest.config
        wanted = self._image_config(manifest, descriptor)
        config: dict = self.config(repository, wanted) if wanted is not None else {}
        if descriptor is not None and descriptor.platform is not None:
            platform_text = str(descriptor.platform)
        elif config.get("os") and config.get("architecture"):
            platform_text = "/".join(p for p in (config["os"], config["architecture"],
                                                 config.get("variant")) if p)
        else:
            platform_text = str(UNKNOWN_PLATFORM)
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
        """Digest, media type, manifest and per-platform images of ``repository:tag``
        (``tag`` may also be a digest: ``TagDetails.tag`` is then that digest).

        For a single image: one entry in ``images`` with its config, ``created_at`` (UTC) and
        ``layer_size`` (sum of compressed layer sizes, bytes). For an index: one entry per image
        platform; attestations and ``unknown/unknown`` entries go to ``others``.
        """
        return self.details_many([(repository, tag)])[0]

    def details_many(self, pairs: Iterable[tuple[str, str]], progress=None) -> list[TagDetails]:
        """:meth:`tag_details` for many (repository, tag) pairs, concurrently, in input order.

        Requests: one manifest per tag, one per platform manifest of an index, one config blob
        per distinct config digest (shared configs are fetched once, even concurrently). The
        walk is pipelined: a tag's platform manifests and config are asked for as soon as its
        manifest arrives, on the same ``max_workers`` threads, with no stage waiting for
        another.
        """
        pairs = list(pairs)
        for repository, tag in pairs:
            validate_repository(repository)
            validate_reference(tag)
        if not pairs:
            return []
        self.plan_repositories(r for r, _ in pairs)
        tops: dict[int, Manifest] = {}
        children: dict[tuple[str, str], Manifest] = {}
        started: set = set()
        guard = threading.Lock()
        bar = progress_bar(len(pairs), "tags", progress)
        pipeline = _Pipeline(None if self._in_pool() else self._pool())

        def first_time(key) -> bool:
            with guard:
                if key in started:
                    return False
                started.add(key)
                return True

        def want_config(repository: str, manifest: Manifest, entry: Descriptor | None) -> None:
            cfg = self._image_config(manifest, entry)
            if (cfg is not None and cfg.digest not in self._configs
                    and first_time(("config", cfg.digest))):
                pipeline.submit(self.config, repository, cfg)

        def fetch_child(repository: str, entry: Descriptor) -> None:
            manifest = self.manifest(repository, entry.digest)
            children[(repository, entry.digest)] = manifest
            want_config(repository, manifest, entry)

        def fetch_top(i: int, repository: str, tag: str) -> None:
            top = self.manifest(repository, tag)
            tops[i] = top
            bar.update(1)
            if top.is_index:
                for entry in top.manifests:
                    if first_time(("child", repository, entry.digest)):
                        pipeline.submit(fetch_child, repository, entry)
            else:
                want_config(repository, top, None)

        try:
            for i, (repository, tag) in enumerate(pairs):
                pipeline.submit(fetch_top, i, repository, tag)
            pipeline.wait()
        finally:
            bar.close()
        out = []
        for i, (repository, tag) in enumerate(pairs):
            top = tops[i]
            if top.is_index:
                images = [self._image(repository, children[(repository, d.digest)], d)
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

    def tags_of_digest(self, repository: str, digest: str) -> list[str]:
        """The tags of ``repository`` that point to ``digest`` now, sorted.

        Reads the tag list and HEADs every tag, fresh (not from the cache), on ``max_workers``
        threads: what deleting ``digest`` would take with it.

        Raises
        ------
        InvalidReference, NotFound
        """
        validate_digest(digest)
        return sorted(t for t, d in self._tag_map(repository).items() if d.digest == digest)

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
            stream=True, cache=False, headers={"Accept-Encoding": "identity"},
        )
        hasher = hashlib.sha256()
        written = 0
        with response:
            # the bytes as stored, never decoded: a blob store that labels a .tar.gz layer
            # "Content-Encoding: gzip" must not turn it into the tar (the digest is of the blob)
            for chunk in response.raw.stream(chunk_size, decode_content=False):
                hasher.update(chunk)
                fileobj.write(chunk)
                written += len(chunk)
        actual = "sha256:" + hasher.hexdigest()
        if digest.startswith("sha256:") and actual != digest:
            raise DigestMismatch(f"blob {repository}@{digest} hashes to {actual}",
                                 method="GET", url=response.url)
        return written

    def pull(self, repository: str, reference: str, directory: str | Path,
             platform: str | None = None, progress: bool | None = None) -> Path:
        """Pull ``repository:reference`` into an OCI image layout in ``directory``.

        The layout (OCI image-spec, "Image Layout") holds the manifest as received (and, for an
        index, the index and every platform's manifest, or only the one ``platform`` names,
        e.g. ``"linux/arm64"``, which ``index.json`` then points to), each config and every
        layer under ``blobs/sha256/``. Each blob is streamed to a temporary file, its size and
        sha256 checked, then renamed into place; blobs already present are verified (hashed),
        not downloaded again, and replaced when corrupt; temporary files left by an
        interrupted pull are removed, so a pull run again ends identical to a clean one.
        ``index.json`` gains (or replaces) the entry whose ``org.opencontainers.image.ref.name``
        is the tag, written atomically once every blob is in place. Several pulls may share
        one layout.

        Parameters
        ----------
        progress : bool, optional
            A progress bar in bytes (default: on in a terminal or notebook).

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

    def delete(self, repository: str, tag: str | None = None, digest: str | None = None, *,
               children: bool = True) -> list[str]:
        """Delete one tag, or a manifest by digest; return the tags that went.

        ``tag=`` removes that tag only; the other tags on its digest (its siblings) survive:

        - when no other tag points to the digest and no remaining index of the repository
          lists it as a platform, the manifest is deleted by digest;
        - otherwise the OCI tag delete (``DELETE /v2/<name>/manifests/<tag>``) is tried, and
          where the registry refuses it (CNCF Distribution 2.8 answers 400 ``DIGEST_INVALID``)
          the tag is moved to a unique throwaway manifest (an OCI manifest with the empty
          config ``application/vnd.oci.empty.v1+json`` and no layers), which is then deleted by
          digest. That needs push rights: when the push is refused, :class:`RegistryError` lists
          the sibling tags and nothing was deleted.

        ``digest=`` deletes the manifest and with it **every tag** of ``repository`` that points
        to it (OCI distribution-spec, "Deleting manifests"); the list returned names them. An
        index that lists it as a platform is left with a dangling entry: that is asked for.

        ``children=True``: when an index (multi-arch) goes, its platform manifests that no
        remaining tag of the repository reaches (directly or through another index) are deleted
        too. CNCF Distribution would otherwise keep them as untagged manifests, and its garbage
        collection (without ``--delete-untagged``) would free only the index's own bytes.

        Space is freed only at the registry's next garbage collection. This client's cached
        answers for the tag list and the affected manifests are dropped at once.

        Raises
        ------
        InvalidReference
            When neither or both of ``tag`` and ``digest`` are given, or either is malformed.
        NotFound
            When the repository, tag or manifest does not exist (nothing was deleted).
        Unsupported
            When the registry has deletes disabled (405 ``UNSUPPORTED``); nothing was deleted.
        RegistryError
            ``tag=`` with siblings on a registry without tag deletion that refuses the throwaway
            push: the message lists the siblings; nothing was deleted. Denied, Unauthorized.
        """
        validate_repository(repository)
        if (tag is None) == (digest is None):
            raise InvalidReference("delete needs exactly one of tag= or digest=")
        if digest is not None:
            validate_digest(digest)
            current = self._tag_map(repository)
            target = self.head_manifest(repository, digest)  # NotFound: nothing to delete
            kids = self._index_children(repository, target) if children else []
            self._delete_manifest(repository, digest)
            tags_before = sorted(t for t, d in current.items() if d.digest == digest)
            for t in tags_before:
                del current[t]
            gone = self._delete_children(repository, kids, current)
            self._forget(repository, digest, *tags_before, *gone)
            return tags_before
        validate_tag(tag)
        current = self._tag_map(repository)
        target = current.get(tag)
        if target is None:
            raise NotFound(f"tag {repository}:{tag} does not exist; nothing was deleted",
                           status=404, code="MANIFEST_UNKNOWN")
        siblings = sorted(t for t, d in current.items() if d.digest == target.digest and t != tag)
        if siblings:
            self._untag(repository, tag, target, f"tags {siblings}")
            return [tag]
        listed_by = self._listed_by(repository, {t: d for t, d in current.items() if t != tag})
        if target.digest in listed_by:
            self._untag(repository, tag, target,
                        f"the index tags {listed_by[target.digest]}, which list it")
            return [tag]
        kids = self._index_children(repository, target) if children else []
        self._delete_manifest(repository, target.digest)
        del current[tag]
        gone = self._delete_children(repository, kids, current)
        self._forget(repository, target.digest, tag, *gone)
        return [tag]

    def delete_many(self, items: Iterable[tuple], *, children: bool = True,
                    progress: bool | None = None) -> list[DeleteResult]:
        """Delete many tags; return one :class:`DeleteResult` per item, in input order.

        Parameters
        ----------
        items : iterable of (repository, tag) or (repository, tag, digest)
            With a digest (what the tag pointed to when the plan was made), a tag that now
            points elsewhere is left alone (status ``"changed"``).
        children : bool
            As in :meth:`delete`: platform manifests of deleted indexes that no remaining tag
            reaches are deleted too.
        progress : bool, optional
            A progress bar by tag.

        Per repository the tags are read fresh once. The tags of a digest that every one of
        its tags is to lose go with one delete by digest; a tag whose digest keeps other tags,
        or that a remaining index lists, is removed alone (see :meth:`delete`). Statuses:
        ``"deleted"``; ``"absent"`` (404: the tag or manifest was already gone, not an error);
        ``"changed"``; ``"failed"`` (the message says why; the other items go on).

        Raises
        ------
        InvalidReference
            For a malformed item (before any request).
        Unsupported
            When the registry has deletes disabled (at the first delete; nothing was deleted).
        """
        wanted: list[tuple[str, str, str | None]] = []
        for item in items:
            repository, tag, *rest = item
            expected = rest[0] if rest and rest[0] else None
            validate_repository(repository)
            validate_tag(tag)
            if expected is not None:
                validate_digest(expected)
            wanted.append((repository, tag, expected))
        results: list[DeleteResult | None] = [None] * len(wanted)
        by_repository: dict[str, list[int]] = {}
        for i, (repository, _tag, _expected) in enumerate(wanted):
            by_repository.setdefault(repository, []).append(i)
        bar = progress_bar(len(wanted), "deleting", progress, unit="tag")
        try:
            for repository, indices in by_repository.items():
                self._delete_in(repository, [(i, *wanted[i][1:]) for i in indices], children,
                                results)
                bar.update(len(indices))
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _delete_in(self, repository: str, items: list[tuple[int, str, str | None]],
                   children: bool, results: list) -> None:
        """:meth:`delete_many` for the items of one repository (fills ``results``)."""
        def done(i: int, tag: str, digest: str | None, status: str, message: str) -> None:
            results[i] = DeleteResult(repository, tag, digest, status, message)

        try:
            current = self._tag_map(repository)
        except NotFound:
            for i, tag, expected in items:
                done(i, tag, expected, "absent", f"repository {repository} not found")
            return
        except RegistryError as exc:
            for i, tag, expected in items:
                done(i, tag, expected, "failed", f"could not read the tags: {exc}")
            return
        groups: dict[str, list[tuple[int, str]]] = {}
        for i, tag, expected in items:
            desc = current.get(tag)
            if desc is None:
                done(i, tag, expected, "absent", "tag not found (already deleted?)")
            elif expected is not None and desc.digest != expected:
                done(i, tag, expected, "changed",
                     f"tag now points to {desc.digest}, not {expected}: left alone")
            else:
                groups.setdefault(desc.digest, []).append((i, tag))
        kids: list[str] = []
        forget: list[str] = []
        leaving = {tag for members in groups.values() for _i, tag in members}
        try:
            listed_by = self._listed_by(repository,
                                        {t: d for t, d in current.items() if t not in leaving})
        except RegistryError as exc:
            for members in groups.values():
                for i, tag in members:
                    done(i, tag, current[tag].digest, "failed",
                         f"could not read the remaining indexes: {exc}")
            return
        for digest, members in groups.items():
            names = {tag for _i, tag in members}
            holders = {t for t, d in current.items() if d.digest == digest}
            if holders <= names and digest not in listed_by:
                try:
                    found = (self._index_children(repository, current[members[0][1]])
                             if children else [])
                    self._delete_manifest(repository, digest)
                    status, message = "deleted", f"manifest {digest} deleted"
                    kids += found
                except NotFound:
                    status, message = "absent", f"manifest {digest} already gone"
                except Unsupported:
                    raise
                except RegistryError as exc:
                    status, message = "failed", str(exc)
                if status != "failed":
                    for t in holders:
                        current.pop(t, None)
                    forget += [digest, *holders]
                for i, tag in members:
                    done(i, tag, digest, status, message)
                continue
            for i, tag in members:
                siblings = sorted(t for t in holders if t != tag)
                kept_for = (f"tags {siblings}" if siblings else
                            f"the index tags {listed_by.get(digest)}, which list it")
                try:
                    self._untag(repository, tag, current[tag], kept_for)
                    done(i, tag, digest, "deleted", f"tag only; {digest} kept for {kept_for}")
                    holders.discard(tag)
                    current.pop(tag, None)
                except NotFound:
                    done(i, tag, digest, "absent", "tag not found (already deleted?)")
                except Unsupported:
                    raise
                except RegistryError as exc:
                    done(i, tag, digest, "failed", str(exc))
        if kids:
            try:
                forget += self._delete_children(repository, kids, current)
            except Unsupported:
                raise
            except RegistryError as exc:
                log.warning("platform manifests of deleted indexes in %s not deleted: %s",
                            repository, exc)
        if forget:
            self._forget(repository, *dict.fromkeys(forget))

    def _untag(self, repository: str, tag: str, target: Descriptor, kept_for: str) -> None:
        """Remove ``tag`` alone while ``target`` stays (for ``kept_for``, e.g. sibling tags).

        OCI tag delete first; where refused, move the tag to a unique throwaway manifest and
        delete that by digest (the tag is put back if that delete fails).
        """
        try:
            self._transport.request(
                "delete", "DELETE", f"/v2/{repository}/manifests/{tag}",
                scopes=(delete_scope(repository),), ok=(202, 200), cache=False,
            )
            self._forget(repository, tag)
            return
        except RegistryError as exc:
            refused = exc.status in (400, 405) or exc.code in ("UNSUPPORTED", "DIGEST_INVALID")
            if not refused:
                raise
            if exc.status == 405 or exc.code == "UNSUPPORTED":
                self._check_deletes_enabled(repository)
        original = self.manifest(repository, target.digest)
        raw = json.dumps({
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
            "layers": [],
            "annotations": {THROWAWAY_ANNOTATION: f"{repository}:{tag} {secrets.token_hex(16)}"},
        }, separators=(",", ":")).encode()
        try:
            if not self.blob_exists(repository, EMPTY_JSON_DIGEST):
                self.upload_blob(repository, b"{}", EMPTY_JSON_DIGEST)
            throwaway = self.put_manifest(repository, tag, raw, mt.OCI_MANIFEST)
        except RegistryError as exc:
            raise RegistryError(
                f"tag {repository}:{tag} points to {target.digest}, kept for {kept_for}; "
                "this registry has no tag deletion, and moving the tag to a throwaway manifest "
                f"(which needs push rights) was refused ({exc}). Nothing was deleted.",
                method=exc.method, url=exc.url, status=exc.status, code=exc.code,
                errors=exc.errors,
            ) from None
        try:
            self._delete_manifest(repository, throwaway)
        except RegistryError as exc:
            self.put_manifest(repository, tag, original.raw, original.media_type)
            raise type(exc)(
                f"could not delete the throwaway manifest {throwaway} that {repository}:{tag} "
                f"was moved to ({exc}); the tag was put back on {target.digest}. Nothing was "
                "deleted.",
                method=exc.method, url=exc.url, status=exc.status, code=exc.code,
                errors=exc.errors,
            ) from None
        finally:
            self._forget(repository, tag, throwaway)

    def _check_deletes_enabled(self, repository: str) -> None:
        """Raise Unsupported when the registry refuses every delete (probe: a digest that
        cannot exist, which answers 404 where deletes are enabled)."""
        self._delete_manifest(repository, "sha256:" + "0" * 64, ok=(202, 200, 404))

    def _listed_by(self, repository: str, tags: dict[str, Descriptor]) -> dict[str, list[str]]:
        """Platform manifest digest -> the index tags (among ``tags``) that list it."""
        by_digest: dict[str, list[str]] = {}
        for tag, desc in sorted(tags.items()):
            by_digest.setdefault(desc.digest, []).append(tag)
        listed: dict[str, list[str]] = {}
        for names in by_digest.values():
            for child in self._index_children(repository, tags[names[0]]):
                listed.setdefault(child, []).extend(names)
        return listed

    def _index_children(self, repository: str, descriptor: Descriptor) -> list[str]:
        """Digests of the manifests an index lists (empty for an image manifest)."""
        if descriptor.media_type in mt.IMAGE_MANIFESTS or descriptor.media_type in mt.SCHEMA1:
            return []
        manifest = self.manifest(repository, descriptor.digest)
        return [d.digest for d in manifest.manifests] if manifest.is_index else []

    def _delete_children(self, repository: str, children: list[str],
                         remaining: dict[str, Descriptor]) -> list[str]:
        """Delete the ``children`` (platform manifests of deleted indexes) that no remaining tag
        reaches, directly or through a remaining index; return the digests deleted."""
        candidates = list(dict.fromkeys(children))
        if not candidates:
            return []
        reached = {d.digest for d in remaining.values()}
        for desc in {d.digest: d for d in remaining.values()}.values():
            reached.update(self._index_children(repository, desc))
        gone = []
        for child in candidates:
            if child in reached:
                continue
            try:
                self._delete_manifest(repository, child)
            except NotFound:
                continue
            gone.append(child)
        return gone

    def _tag_map(self, repository: str) -> dict[str, Descriptor]:
        """Every tag of ``repository`` and what it points to, asked fresh (HEAD per tag)."""
        self._forget(repository)
        tags = self.tags(repository)
        heads = self.map(lambda t: self._head_fresh(repository, t), tags)
        return {t: d for t, d in zip(tags, heads) if d is not None}

    def _head_fresh(self, repository: str, tag: str) -> Descriptor | None:
        try:
            return self.head_manifest(repository, tag)
        except NotFound:
            return None

    def _delete_manifest(self, repository: str, digest: str, ok=(202, 200)) -> None:
        """``DELETE /v2/<name>/manifests/<digest>``; 405 becomes a clear Unsupported."""
        try:
            self._transport.request(
                "delete", "DELETE", f"/v2/{repository}/manifests/{digest}",
                scopes=(delete_scope(repository),), ok=ok, cache=False,
            )
        except Unsupported as exc:
            raise Unsupported(
                f"deletes are disabled on {self.registry} (CNCF Distribution: "
                "storage.delete.enabled is false); nothing was deleted",
                method=exc.method, url=exc.url, status=exc.status, code=exc.code,
                errors=exc.errors,
            ) from None


#: ``{}``, the OCI empty descriptor's blob (image-spec "Guidance for an empty descriptor").
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#: Annotation of the throwaway manifests :meth:`RegistryClient.delete` moves a tag to.
THROWAWAY_ANNOTATION = "io.github.registry-insights.deleted-tag"


@dataclass(frozen=True)
class DeleteResult:
    """What :meth:`RegistryClient.delete_many` did with one tag.

    ``status``: ``"deleted"``, ``"absent"`` (already gone: 404), ``"changed"`` (the tag points
    to another digest than planned: left alone) or ``"failed"``; ``message`` says more.
    """

    repository: str
    tag: str
    digest: str | None
    status: str
    message: str = ""

    @property
    def ok(self) -> bool:
        """True unless the delete failed."""
        return self.status != "failed"


_worker = threading.local()


class _Pipeline:
    """Tasks that may submit more tasks, on one executor; :meth:`wait` returns when none is
    left. Workers never wait for other tasks (no deadlock on a bounded pool); after the first
    error the tasks still queued are skipped and :meth:`wait` raises that error."""

    def __init__(self, executor: ThreadPoolExecutor | None):
        self._executor = executor  # None: run each task inline, at once
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None

    def submit(self, fn: Callable, *args) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        if self._executor is None:
            self._run(fn, args)
        else:
            self._executor.submit(self._run, fn, args)

    def _run(self, fn: Callable, args: tuple) -> None:
        try:
            if self._error is None:
                fn(*args)
        except BaseException as exc:  # handed to wait()
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    def wait(self) -> None:
        self._idle.wait()
        if self._error is not None:
            raise self._error


def _enable_verbose_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
