"""Frames of what a registry holds, built from :class:`~registry_insights.client.RegistryClient`.

The walk: catalog (unless repositories are given) -> tag lists -> one manifest per tag -> the
platform manifests of indexes -> one config per distinct config digest, concurrently, through
the client's HTTP cache (a second walk is answered from it); a first walk does not wait for
every tag list before it asks for tags.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import NotFound
from ..registry.client import RegistryClient
from ..registry.models import TagDetails
from ..registry.walk import ReadError, fetch_repositories, list_pairs
from .schema import ERRORS_SCHEMA, LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty, frame_of

log = logging.getLogger("registry_insights")


@dataclass
class Inventory:
    """The result of one walk: the repositories listed, every readable tag's details and
    what could not be read (:attr:`errors`)."""

    registry: str
    repositories: list[str]
    details: list[TagDetails] = field(repr=False)
    read_errors: list[ReadError] = field(default_factory=list, repr=False)

    @property
    def errors(self) -> pd.DataFrame:
        """What the walk could not read, one row each (:data:`~registry_insights.frames.
        schema.ERRORS_SCHEMA`: registry, repository, tag, reference, status, code,
        message); empty when everything was read."""
        if not self.read_errors:
            return empty(ERRORS_SCHEMA)
        return coerce(pd.DataFrame([{"registry": self.registry, **vars(e)}
                                    for e in self.read_errors]), ERRORS_SCHEMA)

    @property
    def unread_tags(self) -> int:
        """Distinct tags that could not be read, or only in part."""
        return len({(e.repository, e.tag) for e in self.read_errors if e.tag is not None})

    def _images(self, attestations: bool):
        """(details, row) pairs: image rows, a tag's own non-image manifest (artifacts,
        accessories), and with ``attestations`` every non-image row inside an index too."""
        for d in self.details:
            yield from ((d, image) for image in d.images)
            for other in d.others:
                if attestations or other.parent_digest is None:
                    yield d, other

    def tags(self, attestations: bool = False) -> pd.DataFrame:
        """The tags frame (:data:`~registry_insights.schema.TAGS_SCHEMA`)."""
        columns: dict[str, list] = {c: [] for c in TAGS_SCHEMA}
        for d, image in self._images(attestations):
            config = image.config
            values = (
                self.registry, d.repository, d.tag, d.digest, d.media_type, d.size,
                image.platform, image.manifest_digest, image.manifest_media_type,
                image.manifest_size, image.config_digest, image.config_size, image.created,
                image.layer_size, len(image.layers), image.architecture, image.os,
                image.variant, image.is_image,
                config if config or image.config_digest else None,  # an index has no config
                image.artifact_type, image.subject,
                image.parent_digest, d.complete,
            )
            for column, value in zip(columns.values(), values):
                column.append(value)
        return frame_of(columns, TAGS_SCHEMA) if columns["tag"] else empty(TAGS_SCHEMA)

    def layers(self, attestations: bool = False) -> pd.DataFrame:
        """The layers frame (:data:`~registry_insights.schema.LAYERS_SCHEMA`)."""
        rows = list(self._images(attestations))
        counts = np.fromiter((len(image.layers) for _d, image in rows), dtype=np.int64,
                             count=len(rows))
        total = int(counts.sum())
        if not total:
            return empty(LAYERS_SCHEMA)
        # what an image's layers share is made once per image row (cast to its dtype there)
        # and repeated with one take: a million tags have millions of layer rows
        of_image = np.repeat(np.arange(len(rows)), counts)

        def per_image(name: str, values: list) -> pd.api.extensions.ExtensionArray:
            return pd.array(values, dtype=LAYERS_SCHEMA[name]).take(of_image)

        layers = [layer for _d, image in rows for layer in image.layers]
        starts = np.cumsum(counts) - counts
        columns = {
            "registry": pd.array([self.registry], dtype="string").take(np.zeros(total, int)),
            "repository": per_image("repository", [d.repository for d, _i in rows]),
            "tag": per_image("tag", [d.tag for d, _i in rows]),
            "platform": per_image("platform", [image.platform for _d, image in rows]),
            "manifest_digest": per_image("manifest_digest",
                                         [image.manifest_digest for _d, image in rows]),
            "layer_digest": [layer.digest for layer in layers],
            "size": [layer.size for layer in layers],
            "media_type": [layer.media_type for layer in layers],
            "position": np.arange(total) - np.repeat(starts, counts),
            "is_image": per_image("is_image", [image.is_image for _d, image in rows]),
            "foreign": [layer.is_foreign for layer in layers],
        }
        del rows, layers
        return coerce(pd.DataFrame(columns), LAYERS_SCHEMA)


def fetch_inventory(client: RegistryClient, repositories: Iterable[str] | None = None,
                    progress: bool | None = None, *, executor=None,
                    max_processes: int | None = None, shards: int | None = None) -> Inventory:
    """Walk the registry once and keep every tag's details.

    One unreadable tag never sinks the walk: a tag whose manifest (or a platform manifest, or
    a config) is gone or corrupt, or a repository the catalog lists that answers
    ``NAME_UNKNOWN`` (a repository named in ``repositories`` that does not exist raises
    :class:`~registry_insights.errors.NotFound`), is recorded in :attr:`Inventory.errors`
    (and a warning is logged); the rest completes. A tag whose index could be read only in
    part keeps the rows that could be read, with ``complete`` False. Failures of the whole
    identity (401, 403, the registry down) raise.

    Parameters
    ----------
    repositories : iterable of str, optional
        Repositories to read; default every repository of the catalog.
    progress : bool, optional
        A progress bar (tqdm.auto); default on in a terminal or notebook only.
    executor : concurrent.futures.Executor or distributed.Client, optional
        Spread the walk over processes or machines: anything with ``submit(fn, *args)``
        returning futures with ``result()``, e.g. a Dask ``distributed.Client``. The catalog
        and tag lists are read here; the (repository, tag) pairs are split into ``shards``
        by repository (a repository stays in one shard; shards balanced by tag count), and
        each shard is walked by :func:`~registry_insights.registry.walk.walk_shard` on a
        worker, with a client of its own built from ``client.settings()`` (its own session,
        connections and HTTP cache: the same cache directory on one machine, the worker's
        default cache directory elsewhere). registry_insights must be installed on the
        workers; the credentials travel to them pickled (never in a repr or log). The
        details come back in the order of a single-process walk, and the workers' requests
        are added to ``client.request_counts`` (each shard adds its own probe and tokens).
    max_processes : int, optional
        Without ``executor``: walk in that many local processes
        (``concurrent.futures.ProcessPoolExecutor``, spawn), for registries where one
        process's CPU is the limit. 1 or None: in this process, on ``client``'s threads
        (:func:`~registry_insights.registry.walk.fetch_repositories`: a first walk asks for
        a repository's tags as soon as its tag list arrives).
    shards : int, optional
        How many shards; default the executor's worker count (``max_processes``, or the
        Dask cluster's threads), at most one per repository.

    Returns
    -------
    Inventory
        The same whichever way it was walked.
    """
    repos = sorted(set(repositories)) if repositories is not None else client.repositories()
    client.plan_repositories(repos)
    errors: list[ReadError] = []

    def tags_of(repository: str):
        try:
            return client.tags(repository)
        except NotFound as exc:  # NAME_UNKNOWN: listed by the catalog, yet no repository
            if repositories is not None:
                raise  # named by the caller: a mistake to say, not a registry's quirk
            return ReadError.of(repository, None, None, exc)

    if executor is None and (max_processes is None or max_processes <= 1):
        details = fetch_repositories(client, repos, tags_of, progress, errors)
    else:
        pairs = list_pairs(client, repos, tags_of, progress, errors)
        details = _walk_elsewhere(client, pairs, executor, max_processes, shards, progress,
                                  errors)
    inventory = Inventory(client.registry, repos, details, errors)
    if errors:
        _warn_unread(inventory, errors)
    return inventory


def _walk_elsewhere(client: RegistryClient, pairs: list[tuple[str, str]], executor,
                    max_processes: int | None, shards: int | None, progress,
                    errors: list) -> list[TagDetails]:
    """The walk of ``pairs`` on ``executor``, or on ``max_processes`` local processes."""
    if executor is not None:
        return _walk_sharded(client, pairs, executor, shards or _executor_width(executor),
                             progress, errors)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_processes,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return _walk_sharded(client, pairs, pool, shards or max_processes, progress, errors)


def _warn_unread(inventory: Inventory, errors: list[ReadError]) -> None:
    shown = "; ".join(
        f"{e.repository}{':' + e.tag if e.tag else ''}"
        f"{' @' + e.reference if e.reference and e.reference != e.tag else ''}"
        f" ({e.code or e.status})" for e in errors[:5])
    log.warning("%d tag(s) and %d repositor(y/ies) of %s could not be read, and are left "
                "out (Inventory.errors lists them): %s%s", inventory.unread_tags,
                sum(e.tag is None for e in errors), inventory.registry, shown,
                " ..." if len(errors) > 5 else "")


def _executor_width(executor) -> int:
    """Worker threads of a Dask client (``ncores``) or a concurrent.futures executor."""
    ncores = getattr(executor, "ncores", None)
    if callable(ncores):
        try:
            return max(sum(ncores().values()), 1)
        except Exception:  # not a Dask client after all
            pass
    return max(int(getattr(executor, "_max_workers", 2) or 2), 1)


def split_shards(pairs: list[tuple[str, str]], shards: int) -> list[list[tuple[str, str]]]:
    """(repository, tag) pairs in at most ``shards`` groups, whole repositories each, the
    largest repository first into the lightest group (balanced by tag count)."""
    by_repo: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:
        by_repo.setdefault(pair[0], []).append(pair)
    groups: list[list[tuple[str, str]]] = [[] for _ in range(max(min(shards, len(by_repo)), 1))]
    for repo in sorted(by_repo, key=lambda r: (-len(by_repo[r]), r)):
        min(groups, key=len).extend(by_repo[repo])
    return [g for g in groups if g]


def _walk_sharded(client: RegistryClient, pairs: list[tuple[str, str]], executor, shards: int,
                  progress, errors: list) -> list[TagDetails]:
    from ..progress import progress_bar
    from ..registry.walk import walk_shard

    groups = split_shards(pairs, shards)
    settings = client.settings()
    futures = [executor.submit(walk_shard, settings, group) for group in groups]
    found: dict[tuple[str, str], TagDetails] = {}
    read_blob = client.blob_bytes
    bar = progress_bar(len(pairs), "tags", progress)
    try:
        for group, future in zip(groups, futures):
            details, counts, unread = future.result()
            client.count_requests(counts)
            errors.extend(unread)
            for d in details:  # the configs travelled without their way to the bytes
                for image in d.images + d.others:
                    if image.config_digest and hasattr(image.config, "attach"):
                        image.config.attach(read_blob, d.repository)
            found.update(((d.repository, d.tag), d) for d in details)
            bar.update(len(group))
    finally:
        bar.close()
    return [found[pair] for pair in pairs if pair in found]


def tags_frame(client: RegistryClient, repositories: Iterable[str] | None = None,
               progress: bool | None = None, attestations: bool = False) -> pd.DataFrame:
    """One row per (repository, tag, platform): :data:`~registry_insights.schema.TAGS_SCHEMA`.

    Columns: registry, repository, tag, digest (what the tag points to), media_type, size (bytes
    of that manifest), platform (``os/architecture[/variant]``), manifest_digest (the platform's
    own manifest), manifest_media_type, manifest_size, config_digest, config_size, created_at
    (``datetime64[ns, UTC]``, NaT when missing or unparseable), layer_size (``Int64`` bytes,
    compressed), layer_count, architecture, os, variant, is_image, config (an
    ``ImageConfig`` mapping: its frame fields are held, the rest is read back from the HTTP
    cache on use), artifact_type, subject, parent_digest, complete.
    Non-image entries inside an index (attestations, ``unknown/unknown``, nested indexes) only
    with ``attestations=True``; a tag's own artifact (Helm chart, SBOM, signature) always,
    with ``is_image`` False. Tags that could not be read are left out (see
    :func:`fetch_inventory`).

    Raises
    ------
    RegistryError
        As the client raises it (e.g. Unauthorized for the catalog; pass ``repositories``).
    """
    return fetch_inventory(client, repositories, progress).tags(attestations)


def layers_frame(client: RegistryClient, repositories: Iterable[str] | None = None,
                 progress: bool | None = None, attestations: bool = False) -> pd.DataFrame:
    """One row per (repository, tag, platform, layer): :data:`LAYERS_SCHEMA`.

    Served from the client's HTTP cache when the tags were just read (no second round of
    manifest requests while the answers are fresh).
    """
    return fetch_inventory(client, repositories, progress).layers(attestations)
