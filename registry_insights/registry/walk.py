"""The walk: the details of many tags (manifests, platform manifests, configs), pipelined.

OCI image-spec "Image Manifest", "Image Index" and "Image Configuration"; requests are the
protocol's minimum: one manifest per tag, one per platform manifest of an index, one config
blob per distinct config digest (shared configs are fetched once, even concurrently).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..progress import progress_bar
from . import mediatypes as mt
from .models import (
    EMPTY_CONFIG,
    UNKNOWN_PLATFORM,
    Descriptor,
    ImageConfig,
    ImageDetails,
    Manifest,
    TagDetails,
)
from .names import validate_reference, validate_repository
from .workers import Pipeline

if TYPE_CHECKING:
    from .client import ClientSettings, RegistryClient


def image_config(manifest: Manifest, entry: Descriptor | None) -> Descriptor | None:
    """The config blob an image row reads: images only (not attestations), image config
    media types only; None otherwise."""
    cfg = manifest.config
    if entry is not None and entry.is_attestation:
        return None
    if cfg is None or not cfg.digest or cfg.media_type not in mt.IMAGE_CONFIGS:
        return None
    return cfg

def image_details(config_of: Callable[[str, Descriptor], ImageConfig], repository: str,
                  manifest: Manifest, descriptor: Descriptor | None,
                  shared: dict | None = None) -> ImageDetails:
    """One image row's facts: platform, manifest, config (``config_of(repository,
    descriptor)``, e.g. :meth:`RegistryClient.config`), layers. ``shared``: a dict that
    hands out one descriptor object for equal layers (a base layer in 10,000 images is one
    object), kept across the images of a walk."""
    is_image = not (descriptor is not None and descriptor.is_attestation)
    if manifest.is_schema1:
        arch = manifest.data.get("architecture") or "unknown"
        return ImageDetails(f"linux/{arch}", manifest.digest, manifest.media_type,
                            manifest.size, None, None, EMPTY_CONFIG, (), None, is_image)
    cfg = manifest.config
    wanted = image_config(manifest, descriptor)
    config = config_of(repository, wanted) if wanted is not None else EMPTY_CONFIG
    if descriptor is not None and descriptor.platform is not None:
        platform_text = str(descriptor.platform)
    elif config.get("os") and config.get("architecture"):
        platform_text = "/".join(p for p in (config["os"], config["architecture"],
                                             config.get("variant")) if p)
    else:
        platform_text = str(UNKNOWN_PLATFORM)
    layers = manifest.layers
    sizes = [d.size for d in layers]
    if shared is not None:  # only descriptors without annotations (equality ignores them)
        layers = [shared.setdefault(d, d) if not d.annotations else d for d in layers]
    return ImageDetails(
        platform=platform_text,
        manifest_digest=manifest.digest,
        manifest_media_type=manifest.media_type,
        manifest_size=manifest.size,
        config_digest=cfg.digest if cfg else None,
        config_size=cfg.size if cfg else None,
        config=config,
        layers=tuple(layers),
        layer_size=None if manifest.is_index or any(s is None for s in sizes) else sum(sizes),
        is_image=is_image,
    )


def assemble(config_of: Callable[[str, Descriptor], ImageConfig], repository: str, tag: str,
             top: Manifest, children: Callable[[str], Manifest],
             shared: dict | None = None) -> TagDetails:
    """A tag's :class:`TagDetails` from its manifest, its index's platform manifests
    (``children(digest)``) and configs; the manifest is kept compact (bytes, not parsed),
    equal layer descriptors shared through ``shared`` (see :func:`image_details`)."""
    if top.is_index:
        images = [image_details(config_of, repository, children(d.digest), d, shared)
                  for d in top.manifests]
    else:
        images = [image_details(config_of, repository, top, None, shared)]
    return TagDetails(
        repository=repository, tag=tag, digest=top.digest, media_type=top.media_type,
        size=top.size, manifest=top.compact(),
        images=tuple(i for i in images if i.is_image),
        others=tuple(i for i in images if not i.is_image),
    )


def _digests(raw: bytes) -> tuple[list[str], str | None]:
    """``(index entries' digests, config digest)`` of manifest bytes, leniently (a preload
    hint only: the walk parses and verifies everything again)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return [], None
    if not isinstance(data, dict):
        return [], None
    entries = [m.get("digest") for m in data.get("manifests") or [] if isinstance(m, dict)]
    config = data.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    return [d for d in entries if isinstance(d, str)], digest if isinstance(digest, str) else None


def preload(client: RegistryClient, pairs: list[tuple[str, str]]) -> int:
    """Read from the cache, in bulk, every stored answer the walk of ``pairs`` will ask for:
    the tags' manifests, then the platform manifests and configs they name (by digest). The
    walk's lookups are then answered from memory. Returns ``(answers found, requests the
    walk will still send)``: 0 when the cache answers the whole walk fresh."""
    cache = client.cache
    if not cache.enabled:
        return 0, len(pairs)
    url = client._transport.url
    tops = [(url(f"/v2/{r}/manifests/{t}"), mt.MANIFEST_ACCEPT) for r, t in pairs]
    found = cache.preload(tops)
    missing = 0
    level = list(zip((r for r, _ in pairs), tops))
    while level:
        wanted, following = [], []
        for repository, (u, accept) in level:
            hit = cache.lookup("GET", u, accept).hit
            if hit is None:
                missing += 1
                continue
            children, config = _digests(hit.content)
            for d in children:
                child = (url(f"/v2/{repository}/manifests/{d}"), mt.MANIFEST_ACCEPT)
                wanted.append(child)
                following.append((repository, child))
            if config:
                wanted.append((url(f"/v2/{repository}/blobs/{config}"), None))
        if not wanted:
            break
        unique = list(dict.fromkeys(wanted))
        got = cache.preload(unique)
        found += got
        missing += len(unique) - got
        level = following
    return found, missing


def fetch_details(client: RegistryClient, pairs: Iterable[tuple[str, str]],
                  progress=None) -> list[TagDetails]:
    """:meth:`RegistryClient.tag_details` for many (repository, tag) pairs, concurrently, in
    input order.

    Requests: one manifest per tag, one per platform manifest of an index, one config blob
    per distinct config digest (shared configs are fetched once, even concurrently). The
    walk is pipelined: a tag's platform manifests and config are asked for as soon as its
    manifest arrives, on the same ``max_workers`` threads, with no stage waiting for
    another. What the HTTP cache holds is read in bulk first (:func:`preload`), so a warm
    walk makes one query per 500 answers instead of one per request.
    """
    pairs = list(pairs)
    for repository, tag in pairs:
        validate_repository(repository)
        validate_reference(tag)
    if not pairs:
        return []
    client.plan_repositories(r for r, _ in pairs)
    tops: dict[int, Manifest] = {}
    children: dict[tuple[str, str], Manifest] = {}
    started: set = set()
    guard = threading.Lock()
    bar = progress_bar(len(pairs), "tags", progress)
    # a walk the cache answers whole runs on this thread: no request to overlap, and handing
    # tens of thousands of in-memory answers between threads would cost more than it saves
    _found, missing = preload(client, pairs)
    pipeline = client.workers.pipeline() if missing else Pipeline(None)

    def first_time(key) -> bool:
        with guard:
            if key in started:
                return False
            started.add(key)
            return True

    def want_config(repository: str, manifest: Manifest, entry: Descriptor | None) -> None:
        cfg = image_config(manifest, entry)
        if (cfg is not None and cfg.digest not in client._configs
                and first_time(("config", cfg.digest))):
            pipeline.submit(client.config, repository, cfg)

    def fetch_child(repository: str, entry: Descriptor) -> None:
        manifest = client.manifest(repository, entry.digest)
        children[(repository, entry.digest)] = manifest
        want_config(repository, manifest, entry)

    def fetch_top(i: int, repository: str, tag: str) -> None:
        top = client.manifest(repository, tag)
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
        client.cache.release()
        client.cache.flush()
    shared: dict = {}
    return [assemble(client.config, repository, tag, tops[i],
                     lambda digest, r=repository: children[(r, digest)], shared)
            for i, (repository, tag) in enumerate(pairs)]


def walk_shard(settings: ClientSettings, pairs: list[tuple[str, str]]
               ) -> tuple[list[TagDetails], dict[str, int]]:
    """One shard of a walk spread over processes or machines: a client of its own built from
    ``settings`` (its own session, connections and cache) fetches the details of ``pairs``.
    Returns ``(details in input order, requests made by kind)``. Runs on the worker: the
    function a process pool or a Dask cluster is given."""
    with settings.connect() as client:
        details = client.details_many(pairs, progress=False)
        return details, dict(client.request_counts)
