"""The walk: the details of many tags (manifests, platform manifests, configs), pipelined.

OCI image-spec "Image Manifest", "Image Index" and "Image Configuration"; requests are the
protocol's minimum: one manifest per tag, one per platform manifest of an index, one config
blob per distinct config digest (shared configs are fetched once, even concurrently).
"""

from __future__ import annotations

import json
import queue
import re
import sys
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DigestMismatch, InvalidResponse, NotFound, RegistryError
from ..progress import grow_total, progress_bar
from . import mediatypes as mt
from .models import (
    EMPTY_CONFIG,
    UNKNOWN_PLATFORM,
    Descriptor,
    ImageConfig,
    ImageDetails,
    Manifest,
    Platform,
    TagDetails,
    schema1_config,
    total_size,
)
from .names import validate_reference, validate_repository
from .workers import Pipeline

if TYPE_CHECKING:
    from .client import ClientSettings, RegistryClient

#: How deep indexes may nest (an index listing an index ...) before the walk gives up on the
#: tag; real registries hold two levels at most.
MAX_INDEX_DEPTH = 8
#: What makes one tag unreadable without saying anything about the others: the manifest or a
#: blob is gone (``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``, ``NAME_UNKNOWN``), bytes that are not
#: a manifest, bytes that do not verify. Authentication and connection failures concern the
#: whole identity and are raised.
TAG_ERRORS = (NotFound, InvalidResponse, DigestMismatch)
#: Seconds between two rounds of assembling the tags a threaded walk completed meanwhile.
ASSEMBLE_EVERY = 0.02
#: cosign / notation accessory tags and the OCI referrers fallback tag (distribution-spec 1.1,
#: "Referrers Tag Schema"): ``sha256-<hex>`` with an optional ``.sig``, ``.att``, ``.sbom``.
ACCESSORY_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$")


@dataclass(frozen=True)
class ReadError:
    """Something the walk could not read: a tag (``tag`` set) or a repository's tag list.

    ``reference``: the tag, or the digest of the manifest or blob that failed; ``status`` and
    ``code``: the registry's answer (``404`` ``MANIFEST_UNKNOWN`` ...), None when none came.
    """

    repository: str
    tag: str | None
    reference: str | None
    status: int | None
    code: str | None
    message: str

    @classmethod
    def of(cls, repository: str, tag: str | None, reference: str | None,
           exc: BaseException) -> ReadError:
        if isinstance(exc, RegistryError):
            return cls(repository, tag, reference, exc.status, exc.code, exc.message)
        return cls(repository, tag, reference, None, None, str(exc))


def accessory_subject(tag: str) -> str | None:
    """The digest an accessory tag names (``sha256-<hex>.sig`` -> ``sha256:<hex>``), or None."""
    match = ACCESSORY_TAG.match(tag)
    return f"sha256:{match.group(1)}" if match else None


def platform_of(descriptor: Descriptor | None, config: dict) -> str:
    """``os/architecture[/variant]`` normalised as containerd does: the index entry's
    platform, else the config's fields (non-string fields are unknown), else unknown."""
    if descriptor is not None and descriptor.platform is not None:
        platform = descriptor.platform
    else:
        platform = Platform.from_dict(config) if config else None
        if platform is None or platform.os == "unknown" or platform.architecture == "unknown":
            return str(UNKNOWN_PLATFORM)
    return sys.intern(str(platform.normalized()))  # a fleet has a handful: held once


def image_config(manifest: Manifest, entry: Descriptor | None,
                 cfg: Descriptor | None = None) -> Descriptor | None:
    """The config blob an image row reads: images only (not attestations), image config
    media types only; None otherwise. ``cfg``: the manifest's config descriptor, when the
    caller has parsed it already."""
    cfg = manifest.config if cfg is None else cfg
    if entry is not None and entry.is_attestation:
        return None
    if cfg is None or not cfg.digest or cfg.media_type not in mt.IMAGE_CONFIGS:
        return None
    return cfg


def image_details(config_of: Callable[[str, Descriptor], ImageConfig], repository: str,
                  manifest: Manifest, descriptor: Descriptor | None, subject: str | None = None,
                  parent: str | None = None, shared: dict | None = None) -> ImageDetails:
    """One row's facts: platform, manifest, config (``config_of(repository, descriptor)``,
    e.g. :meth:`RegistryClient.config`), layers.

    ``is_image`` only for real images: an image config (not an ``artifactType``), not an
    attestation entry, not an accessory of another manifest (``subject``). ``shared``: a dict
    that hands out one descriptor object for equal layers (a base layer in 10,000 images is
    one object), kept across the images of a walk."""
    subject = manifest.subject or subject
    attestation = descriptor is not None and descriptor.is_attestation
    if manifest.is_schema1:
        config = schema1_config(manifest.data)
        arch = manifest.data.get("architecture")
        config.setdefault("architecture", arch if isinstance(arch, str) and arch else None)
        config.setdefault("os", "linux")
        return ImageDetails(platform_of(descriptor, config), manifest.digest,
                            manifest.media_type, manifest.size, None, None, config, (), None,
                            not attestation and subject is None, None, subject, parent)
    if manifest.is_index:
        return ImageDetails(platform_of(descriptor, {}), manifest.digest, manifest.media_type,
                            manifest.size, None, None, EMPTY_CONFIG, (), None, False,
                            manifest.artifact_type, subject, parent, manifest.annotations)
    cfg = manifest.config  # each part parsed once per image
    wanted = image_config(manifest, descriptor, cfg)
    config = config_of(repository, wanted) if wanted is not None else EMPTY_CONFIG
    artifact = manifest.artifact_type_of(cfg)
    is_image = (not attestation and subject is None and artifact in mt.IMAGE_CONFIGS
                and not manifest.data.get("artifactType"))
    layers = manifest.layers
    layer_size = total_size(layers)
    if shared is not None:  # only descriptors without annotations (equality ignores them)
        layers = [shared.setdefault(d, d) if not d.annotations else d for d in layers]
    return ImageDetails(
        platform=platform_of(descriptor, config),
        manifest_digest=manifest.digest,
        manifest_media_type=manifest.media_type,
        manifest_size=manifest.size,
        config_digest=cfg.digest or None if cfg else None,
        config_size=cfg.size if cfg else None,
        config=config,
        layers=tuple(layers),
        layer_size=layer_size,
        is_image=is_image,
        artifact_type=artifact,
        subject=subject,
        parent_digest=parent,
        annotations=manifest.annotations,
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


def preload(client: RegistryClient, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """Read from the cache, in bulk, every stored answer the walk of ``pairs`` will ask for:
    the tags' manifests, then the platform manifests and configs they name (by digest; also
    for a tag's manifest that is no longer fresh: its revalidation most likely finds it
    unchanged). The walk's lookups are then answered from memory. Returns ``(answers found,
    requests the walk will still send)``, the second 0 when the cache answers the whole walk
    fresh."""
    cache = client.cache
    if not cache.enabled:
        return 0, len(pairs)
    url = client._transport.url
    tops = [(url(f"/v2/{r}/manifests/{t}"), mt.MANIFEST_ACCEPT) for r, t in pairs]
    found = cache.preload(tops)
    if not found:  # a cold walk: no query per request for answers that are not there
        cache.assume_cold()
        return 0, len(pairs)
    missing = 0
    level = list(zip((r for r, _ in pairs), tops))
    followed = set(tops)  # each followed once: a cached index may list itself (corrupt)
    for _depth in range(MAX_INDEX_DEPTH):  # no deeper than the walk reads (see follow)
        wanted, following = [], []
        for repository, (u, accept) in level:
            held = cache.peek(u, accept)
            if held is None:
                missing += 1
                continue
            body, fresh = held
            if not fresh:  # revalidated: most likely unchanged, and then it names what follows
                missing += 1
            children, config = _digests(body)
            for d in children:
                child = (url(f"/v2/{repository}/manifests/{d}"), mt.MANIFEST_ACCEPT)
                if child not in followed:
                    followed.add(child)
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
                  progress=None, errors: list | None = None) -> list[TagDetails]:
    """:meth:`RegistryClient.tag_details` for many (repository, tag) pairs, concurrently, in
    input order.

    Requests: one manifest per tag, one per platform manifest of an index, one config blob
    per distinct config digest (shared configs are fetched once, even concurrently). The
    walk is pipelined: a tag's platform manifests and config are asked for as soon as its
    manifest arrives, on the same ``max_workers`` threads, with no stage waiting for
    another, and the tags whose parts are all in are assembled on the calling thread while
    the walk goes on. What the HTTP cache holds is read in bulk first (:func:`preload`), so
    a warm walk makes one query per 500 answers instead of one per request. Indexes are
    followed to any depth up to :data:`MAX_INDEX_DEPTH` (an index may list an index); a
    cycle or a deeper nest makes the tag unreadable.

    Parameters
    ----------
    errors : list, optional
        When given, a tag that cannot be read (:data:`TAG_ERRORS`: its manifest, a platform
        manifest or a config is gone or corrupt) gets a :class:`ReadError` here and is left
        out of the result (the others complete), or, when only a part of an index is gone,
        is returned with ``complete=False`` and what could be read. Without it, the first
        such error is raised. Other errors (401, 403, the registry down) always raise.
    """
    pairs = list(pairs)
    for repository, tag in pairs:
        validate_repository(repository)
        validate_reference(tag)
    if not pairs:
        return []
    client.plan_repositories(r for r, _ in pairs)
    bar = progress_bar(len(pairs), "tags", progress)
    # a walk the cache answers whole runs on this thread: no request to overlap, and handing
    # tens of thousands of in-memory answers between threads would cost more than it saves
    _found, missing = preload(client, pairs)
    walk = _Walk(client, client.workers.pipeline() if missing else Pipeline(None), bar,
                 raise_for_tags=errors is None)
    walk.run(walk.submit_top, ((i, r, t) for i, (r, t) in enumerate(pairs)))
    return walk.collect(((i, r, t) for i, (r, t) in enumerate(pairs)), errors)


def fetch_repositories(client: RegistryClient, repositories: list[str],
                       list_tags: Callable[[str], list[str] | ReadError], progress=None,
                       errors: list | None = None) -> list[TagDetails]:
    """The details of every tag ``repositories`` list (in repository order, then tag-list
    order), as :func:`fetch_details` reads them.

    ``list_tags(repository)`` gives the repository's tags, or a :class:`ReadError` for a
    repository that cannot be listed (it goes to ``errors``, before the tags' errors).
    With no content-addressed answer in the HTTP cache (a first walk, or ``cache=None``),
    the tag lists are read on the walk's threads and each repository's tags are asked for as
    soon as its list arrives, with no stage waiting for another (the HTTP cache is not
    queried for answers it cannot hold, :meth:`HttpCache.assume_cold`). Otherwise every
    list is read first (:func:`list_pairs`) and the walk's stored answers are read in bulk
    (:func:`preload`).

    Raises as :func:`fetch_details` does (errors of ``list_tags`` other than a returned
    :class:`ReadError` included).
    """
    cache = client.cache
    if not cache.holds_no_content():
        pairs = list_pairs(client, repositories, list_tags, progress, errors)
        return fetch_details(client, pairs, progress, errors)
    for repository in repositories:
        validate_repository(repository)
    client.plan_repositories(repositories)
    bar = progress_bar(None, "tags", progress)
    cache.assume_cold()
    walk = _Walk(client, client.workers.pipeline(), bar, raise_for_tags=errors is None)
    listed_of: dict[str, list[str] | ReadError] = {}

    def read_list(repository: str) -> None:
        listed = list_tags(repository)
        if not isinstance(listed, ReadError):
            for tag in listed:
                validate_reference(tag)
            grow_total(bar, len(listed), walk.bar_lock)
            for k, tag in enumerate(listed):
                walk.submit_top((repository, k), repository, tag)
        listed_of[repository] = listed

    walk.run(walk.pipeline.submit, ((read_list, r) for r in repositories))
    lists = [listed_of[r] for r in repositories]
    if errors is not None:
        errors.extend(t for t in lists if isinstance(t, ReadError))
    keyed = (((r, k), r, tag) for r, listed in zip(repositories, lists)
             if not isinstance(listed, ReadError) for k, tag in enumerate(listed))
    return walk.collect(keyed, errors)


def list_pairs(client: RegistryClient, repositories: list[str],
               list_tags: Callable[[str], list[str] | ReadError], progress=None,
               errors: list | None = None) -> list[tuple[str, str]]:
    """Every repository's tag list, read on the client's threads before anything else, as
    (repository, tag) pairs in repository order, then tag-list order; a :class:`ReadError`
    that ``list_tags`` returns goes to ``errors``."""
    lists = client.map(list_tags, repositories, progress,
                       "tag lists" if len(repositories) > 20 else "")
    if errors is not None:
        errors.extend(t for t in lists if isinstance(t, ReadError))
    return [(r, tag) for r, listed in zip(repositories, lists)
            if not isinstance(listed, ReadError) for tag in listed]


class _Walk:
    """The state of one pipelined walk: what was fetched (manifests, or the error that kept
    one unread), which requests were started (each is asked once) and the tags assembled.

    Workers post what they finished (a tag's manifest, a platform manifest, a config);
    :meth:`drive`, on the calling thread, assembles every tag whose parts are all in (a tag
    waits on the first part it lacks, and is looked at again when that part arrives), so
    little is left to do when the last answer comes. A walk without workers (the cache
    answers all of it) assembles each tag as soon as its manifest's parts are read. An
    assembled tag keeps only the compact manifest: what a walk holds lives long, and every
    object held is one more for each full garbage collection to go through.
    """

    def __init__(self, client: RegistryClient, pipeline: Pipeline, bar, raise_for_tags: bool):
        self.client, self.pipeline, self.bar = client, pipeline, bar
        self.raise_for_tags = raise_for_tags
        self.tops: dict[Hashable, Manifest | BaseException] = {}
        self.children: dict[tuple[str, str], Manifest | BaseException] = {}
        self.names: dict[Hashable, tuple[str, str]] = {}
        #: key -> (details or None, the error that kept the tag unread or None, missing)
        self.results: dict[Hashable, tuple] = {}
        #: config digest -> the error that kept it unread (each config is asked once)
        self.config_errors: dict[str, BaseException] = {}
        self.bar_lock = threading.Lock()
        self._started: set = set()
        self._guard = threading.Lock()
        self._shared: dict = {}
        self._waiting: dict[tuple, list] = {}
        # what the workers found, for _lacking to look at without parsing again:
        # (repository, index digest) -> its entries; (manifest digest, listed as an
        # attestation) -> the config digest an image row reads, or None
        self._listed: dict[tuple[str, str], list[Descriptor]] = {}
        self._needs: dict[tuple[str, bool], str | None] = {}
        self._threaded = pipeline.threaded
        self._finished: queue.SimpleQueue = queue.SimpleQueue()

    def _post(self, message: tuple) -> None:
        if self._threaded:
            self._finished.put(message)

    def first_time(self, key) -> bool:
        with self._guard:
            if key in self._started:
                return False
            self._started.add(key)
            return True

    def submit_top(self, key: Hashable, repository: str, tag: str) -> None:
        self.names[key] = (repository, tag)
        self.pipeline.submit(self.fetch_top, key, repository, tag)

    def want_config(self, repository: str, manifest: Manifest,
                    entry: Descriptor | None) -> None:
        cfg = image_config(manifest, entry)
        self._needs[(manifest.digest, entry is not None and entry.is_attestation)] = \
            None if cfg is None else cfg.digest
        if (cfg is not None and cfg.digest not in self.client._configs
                and self.first_time(("config", cfg.digest))):
            self.pipeline.submit(self.fetch_config, repository, cfg)

    def fetch_config(self, repository: str, cfg: Descriptor) -> None:
        try:
            self.client.config(repository, cfg)
        except TAG_ERRORS as exc:  # every tag of this config is unreadable, for this reason
            self.config_errors[cfg.digest] = exc
        finally:
            self._post(("config", cfg.digest))

    def config_of(self, repository: str, cfg: Descriptor) -> ImageConfig:
        """The config, as :meth:`RegistryClient.config` gives it; a config this walk could
        not read raises what it raised then (not asked again, once per tag)."""
        failed = self.config_errors.get(cfg.digest)
        if failed is not None:
            raise failed
        return self.client.config(repository, cfg)

    def follow(self, repository: str, index: Manifest, depth: int) -> None:
        """Ask for what ``index`` lists (``depth``: how many indexes are above it). The
        entries of an index :data:`MAX_INDEX_DEPTH` deep are not asked for: assembling gives
        such a tag up when it finds that index."""
        if depth >= MAX_INDEX_DEPTH:
            return
        entries = self._listed[(repository, index.digest)] = index.manifests
        for entry in entries:
            if self.first_time(("child", repository, entry.digest)):
                self.pipeline.submit(self.fetch_child, repository, entry, depth + 1)

    def fetch_child(self, repository: str, entry: Descriptor, depth: int) -> None:
        try:
            manifest = self.client.manifest(repository, entry.digest)
        except TAG_ERRORS as exc:
            self.children[(repository, entry.digest)] = exc
            self._post(("child", repository, entry.digest))
            return
        self.children[(repository, entry.digest)] = manifest
        if manifest.is_index:
            self.follow(repository, manifest, depth)
        else:
            self.want_config(repository, manifest, entry)
        self._post(("child", repository, entry.digest))

    def fetch_top(self, key: Hashable, repository: str, tag: str) -> None:
        try:
            top = self.client.manifest(repository, tag)
        except TAG_ERRORS as exc:
            if self.raise_for_tags:
                raise
            self.tops[key] = exc
            self._post(("top", key))
            return
        finally:
            self.bar.update(1)
        self.tops[key] = top
        if top.is_index:
            self.follow(repository, top, 0)
        else:
            self.want_config(repository, top, None)
        if self._threaded:
            self._post(("top", key))
        else:  # everything below it was fetched inline: assembled now, while it is young
            self._try(key)

    # -- assembling, on the calling thread --------------------------------------------------
    def run(self, submit: Callable[..., None], first: Iterable[tuple]) -> None:
        """``submit(*args)`` for each of the ``first`` tasks, then :meth:`drive`; the bar is
        closed and the HTTP cache released from the walk and flushed, whatever happens."""
        try:
            for args in first:
                submit(*args)
            self.drive()
        finally:
            self.bar.close()
            self.client.cache.release()
            self.client.cache.flush()

    def drive(self) -> None:
        """Wait for the walk to end, assembling every :data:`ASSEMBLE_EVERY` seconds the
        tags completed meanwhile (woken per answer, the calling thread would take the GIL
        from the workers hundreds of times a second); raises the walk's first error (the
        tasks not started then are skipped)."""
        if not self._threaded:  # everything ran inline already
            self.pipeline.wait()
            return
        try:
            while True:
                idle = self.pipeline.wait_idle(ASSEMBLE_EVERY)
                while True:
                    try:
                        message = self._finished.get_nowait()
                    except queue.Empty:
                        break
                    if message[0] == "top":
                        self._try(message[1])
                    else:
                        for key in self._waiting.pop(message, ()):
                            self._try(key)
                if idle:
                    break
        except BaseException as exc:
            self.pipeline.stop(exc)
        self.pipeline.wait()

    def _try(self, key: Hashable) -> None:
        """Assemble the tag ``key`` if every part below it is in; else wait for the first
        part missing."""
        top = self.tops[key]
        if isinstance(top, BaseException):
            return
        wanted = self._lacking(self.names[key][0], top, None, (top.digest,))
        if wanted is None:
            self.results[key] = result = self._assemble(key)
            if result[0] is not None:  # the parsed manifest is not read again: keep the
                self.tops[key] = result[0].manifest  # compact one the details hold
        else:
            self._waiting.setdefault(wanted, []).append(key)

    def _lacking(self, repository: str, manifest: Manifest, entry: Descriptor | None,
                 path: tuple[str, ...]) -> tuple | None:
        """The first part below ``manifest`` that is not in yet (a posted message's shape),
        or None. Cycles and too deep nests count as complete: assembling says what is
        wrong."""
        if not manifest.is_index:
            key = (manifest.digest, entry is not None and entry.is_attestation)
            if key in self._needs:
                digest = self._needs[key]
            else:
                cfg = image_config(manifest, entry)
                digest = None if cfg is None else cfg.digest
            if digest is None or digest in self.client._configs \
                    or digest in self.config_errors:
                return None
            return ("config", digest)
        if len(path) > MAX_INDEX_DEPTH:
            return None
        entries = self._listed.get((repository, manifest.digest))
        for child_entry in manifest.manifests if entries is None else entries:
            child = self.children.get((repository, child_entry.digest))
            if child is None:
                return ("child", repository, child_entry.digest)
            if isinstance(child, BaseException) or child.digest in path:
                continue
            wanted = self._lacking(repository, child, child_entry, (*path, child.digest))
            if wanted is not None:
                return wanted
        return None

    def _assemble(self, key: Hashable) -> tuple:
        repository, tag = self.names[key]
        missing: list[tuple[str, BaseException]] = []
        try:
            details = assemble(self.config_of, repository, tag, self.tops[key],
                               lambda digest: self.children.get((repository, digest)),
                               self._shared, missing)
        except TAG_ERRORS as exc:
            return None, exc, ()
        return details, None, missing

    def collect(self, keyed: Iterable[tuple[Hashable, str, str]],
                errors: list | None) -> list[TagDetails]:
        """Every readable tag's details, in the order of ``keyed`` ((key, repository, tag));
        what could not be read goes to ``errors`` (or the first of it is raised when
        ``errors`` is None). Tags not assembled during the walk are assembled now."""
        out = []
        for key, repository, tag in keyed:
            top = self.tops[key]
            if isinstance(top, BaseException):
                details, exc, missing = None, top, ()
            else:
                details, exc, missing = self.results.get(key) or self._assemble(key)
            if exc is not None:
                if errors is None:
                    raise exc
                errors.append(ReadError.of(repository, tag, tag, exc))
                continue
            if missing:
                if errors is None:
                    raise missing[0][1]
                errors.extend(ReadError.of(repository, tag, ref, e) for ref, e in missing)
            out.append(details)
        return out


def assemble(config_of: Callable[[str, Descriptor], ImageConfig], repository: str, tag: str,
             top: Manifest, child_of: Callable[[str], Manifest | BaseException | None],
             shared: dict | None = None, missing: list | None = None) -> TagDetails:
    """A tag's :class:`TagDetails` from its manifest, what its indexes list
    (``child_of(digest)``: the manifest, or the error that kept it unread, or None), to any
    depth, and configs. The manifest is kept compact (bytes, not parsed); equal layer
    descriptors are shared through ``shared`` (see :func:`image_details`). Children that could
    not be read go to ``missing`` as (reference, error) and the tag is ``complete=False``."""
    missing = [] if missing is None else missing
    subject = top.subject or accessory_subject(tag)
    if top.is_index:
        rows = _expand(config_of, repository, top, child_of, subject, missing, (top.digest,),
                       shared)
        # nothing below could be read (or an empty index): a row for the index itself
        rows = rows or [image_details(config_of, repository, top, None, subject)]
    else:
        rows = [image_details(config_of, repository, top, None, subject, shared=shared)]
    return TagDetails(
        repository=repository, tag=tag, digest=top.digest, media_type=top.media_type,
        size=top.size, manifest=top.compact(),
        images=tuple(r for r in rows if r.is_image),
        others=tuple(r for r in rows if not r.is_image),
        subject=subject, complete=not missing,
    )


def walk_shard(settings: ClientSettings, pairs: list[tuple[str, str]]
               ) -> tuple[list[TagDetails], dict[str, int], list[ReadError]]:
    """One shard of a walk spread over processes or machines: a client of its own built from
    ``settings`` (its own session, connections and cache) fetches the details of ``pairs``.
    Returns ``(details in input order, requests made by kind, tags it could not read)``.
    Runs on the worker: the function a process pool or a Dask cluster is given."""
    errors: list[ReadError] = []
    with settings.connect() as client:
        details = client.details_many(pairs, progress=False, errors=errors)
        return details, dict(client.request_counts), errors


def _expand(config_of, repository: str, index: Manifest, child_of, subject: str | None,
            missing: list, path: tuple[str, ...], shared: dict | None) -> list[ImageDetails]:
    """The rows below ``index``, depth first: each nested index (``is_image`` False) then its
    entries. A child that could not be read goes to ``missing`` (reference, error)."""
    rows: list[ImageDetails] = []
    for entry in index.manifests:
        child = child_of(entry.digest)
        if child is None or isinstance(child, BaseException):
            missing.append((entry.digest, child or NotFound(
                f"{repository}@{entry.digest} was not read", status=404,
                code="MANIFEST_UNKNOWN")))
            rows.append(_unread_row(entry, subject, index.digest))
            continue
        if child.is_index:
            if child.digest in path:
                raise InvalidResponse(f"index {repository}@{index.digest} lists "
                                      f"{child.digest}, which contains it: a cycle")
            if len(path) >= MAX_INDEX_DEPTH:
                raise InvalidResponse(f"indexes of {repository}@{path[0]} nest deeper than "
                                      f"{MAX_INDEX_DEPTH} levels")
            rows.append(image_details(config_of, repository, child, entry, subject,
                                      index.digest))
            rows.extend(_expand(config_of, repository, child, child_of, subject, missing,
                                (*path, child.digest), shared))
        else:
            try:
                rows.append(image_details(config_of, repository, child, entry, subject,
                                          index.digest, shared))
            except TAG_ERRORS as exc:
                missing.append((entry.digest, exc))
                rows.append(_unread_row(entry, subject, index.digest))
    return rows


def _unread_row(entry: Descriptor, subject: str | None, parent: str) -> ImageDetails:
    """A listed manifest that could not be read, as its index describes it (digest, media
    type, size): the garbage collection keeps the blobs an index lists, so storage counts
    it; never an image row."""
    return ImageDetails(platform_of(entry, {}), entry.digest, entry.media_type,
                        entry.size or 0, None, None, EMPTY_CONFIG, (), None, False,
                        entry.artifact_type, subject, parent)
