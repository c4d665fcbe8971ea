"""OCI image layouts on disk: what :meth:`RegistryClient.pull` writes.

OCI image-spec, "Image Layout": a directory holding ``oci-layout`` (``{"imageLayoutVersion":
"1.0.0"}``), ``index.json`` (an image index whose entries carry the tag in the annotation
``org.opencontainers.image.ref.name``) and ``blobs/<algorithm>/<hex>`` (every manifest, config
and layer, content addressed).

How a pull never leaves a lie on disk:

1. ``oci-layout`` is written first (atomically), so an interrupted pull leaves a layout.
2. Temporary files left by an interrupted pull (``blobs/*/.<hex>.<random>.partial``) are
   removed; a file still being written by a live pull is locked (``flock``) and left alone.
3. Each blob is streamed into a new temporary file in the layout while its digest is computed;
   its size and digest are checked, the file is flushed to disk, then renamed into place
   (``os.replace``). A blob already in place is hashed: kept when it matches, downloaded again
   (and replaced in one rename) when it does not. Manifests are written as the exact bytes the
   registry sent.
4. ``index.json`` is rewritten atomically (temporary file + ``os.replace``) only once every blob
   is in place: a pull is visible in the layout only when it is complete.

Several pulls, in threads or processes, may share one layout:

- ``index.json`` is read, changed and written under an exclusive ``flock`` on the layout's lock
  file (:data:`LOCK_FILE`), so no pull's entry is lost to another's write; ``oci-layout`` is
  created under the same lock.
- A temporary file is locked as soon as it is created, and used only when, once locked, its
  name still leads to it: a sweep of leftovers (step 2) that got to it first, before the lock,
  has removed it, and the pull takes a new one. A sweep removes a file only while holding its
  lock and while the name still leads to the file it locked, so it never removes a file in use
  nor one that was just renamed into place.

No pandas here: this sits left of ``inventory`` in the design's flow.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ..errors import InvalidReference, InvalidResponse, NotFound, Unsupported
from ..progress import progress_bar
from . import mediatypes as mt
from .models import Descriptor, Manifest, Platform
from .names import is_digest, validate_digest, validate_reference, validate_repository
from .walk import MAX_INDEX_DEPTH

try:  # POSIX: lock temporary files while they are written
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = "1.0.0"
INDEX_FILE = "index.json"
#: The lock file in the layout's root: held (``flock``) while ``index.json`` or
#: ``oci-layout`` is written. Never removed (removing a lock file races with its users).
LOCK_FILE = ".registry-insights.lock"
#: The annotation that names an ``index.json`` entry (a tag): OCI image-spec, "Annotations".
REF_NAME = "org.opencontainers.image.ref.name"
TEMP_SUFFIX = ".partial"
_CHUNK = 1 << 20


def pull_layout(client, repository: str, reference: str, directory: str | os.PathLike,
                platform: str | None = None, progress: bool | None = None) -> Path:
    """Write ``repository:reference`` into the OCI image layout ``directory``.

    The implementation of :meth:`registry_insights.client.RegistryClient.pull` (see there);
    ``client`` is the RegistryClient to pull with.
    """
    validate_repository(repository)
    validate_reference(reference)
    root = Path(directory)
    blobs_dir = open_layout(root)
    discard_leftovers(root)
    top = client.manifest(repository, reference)
    where = f"{repository}:{reference}" if not is_digest(reference) else f"{repository}@{reference}"
    if top.is_index and platform:
        chosen = choose_platform(top, platform, where,
                                 fetch=lambda d: client.manifest(repository, d.digest))
        image = client.manifest(repository, chosen.digest)
        entry = _entry(image, chosen.platform)
        wanted = image
    else:
        entry = _entry(top, None)
        wanted = top
    manifests: list[Manifest] = []
    configs: dict[str, Descriptor] = {}
    layers: dict[str, Descriptor] = {}
    _collect(client, repository, wanted, manifests, configs, layers, where)
    for digest in configs:
        layers.pop(digest, None)
    blobs = [*configs.values(), *layers.values()]
    total = sum(b.size or 0 for b in blobs) + sum(m.size for m in manifests)
    bar = progress_bar(total, where, progress, unit="B", unit_scale=True, unit_divisor=1024)
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    # The first failed download stops the others: those not started are cancelled, those
    # running stop at their next write (their temporary files removed), and pull() raises
    # only once none of them writes into the layout any more.
    stop = threading.Event()
    failures: list[BaseException] = []

    def fetch(descriptor: Descriptor) -> bool:
        if stop.is_set():
            raise _Cancelled()
        try:
            return ensure_blob(client, repository, blobs_dir, descriptor, advance, cancel=stop)
        except _Cancelled:
            raise
        except BaseException as exc:
            failures.append(exc)
            stop.set()
            raise

    try:
        try:
            client.map(fetch, list(configs.values()))
            if platform and not top.is_index:
                _check_single_platform(blobs_dir, top, platform, where)
            client.map(fetch, list(layers.values()))
        except _Cancelled:
            raise failures[0] from None
        for manifest in manifests:
            write_blob_bytes(blobs_dir, manifest.digest, manifest.raw)
            advance(manifest.size)
    finally:
        bar.close()
    ref_name = None if is_digest(reference) else reference
    add_to_index(root, entry, ref_name)
    return root


# -- the layout ------------------------------------------------------------------------------
def open_layout(root: Path) -> Path:
    """Create or check the layout at ``root``; return its ``blobs`` directory.

    Raises
    ------
    FileExistsError
        When ``root`` holds files but no ``oci-layout``: it is not an image layout.
    ValueError
        When ``oci-layout`` names another version than 1.0.0.
    """
    root.mkdir(parents=True, exist_ok=True)
    marker = root / LAYOUT_FILE
    if not marker.exists():
        # checked before the lock file is made, so a stranger's directory is left as it was;
        # the marker and blobs may be another pull's, which made the layout meanwhile
        _refuse_foreign(root, {LAYOUT_FILE, "blobs"})
        with layout_lock(root):
            if not marker.exists():
                _refuse_foreign(root)
                _atomic_write(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
    try:
        version = json.loads(marker.read_bytes()).get("imageLayoutVersion")
    except (ValueError, AttributeError):
        version = None
    if version != LAYOUT_VERSION:
        raise ValueError(f"{marker} does not say imageLayoutVersion {LAYOUT_VERSION!r} "
                         f"(found {version!r}): not a layout this tool can write to")
    blobs = root / "blobs"
    blobs.mkdir(exist_ok=True)
    return blobs


def _refuse_foreign(root: Path, also: set[str] | frozenset[str] = frozenset()) -> None:
    """Raise FileExistsError when ``root`` holds anything but our lock and temporary files
    (and the names in ``also``)."""
    ours = {LOCK_FILE, *also}
    if any(p.name not in ours and not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))
           for p in root.iterdir()):
        raise FileExistsError(
            f"{root} is not empty and is not an OCI image layout (no {LAYOUT_FILE}): "
            "give a new or empty directory, or an existing layout"
        )


_PROCESS_LOCK = threading.Lock()  # where flock is missing (Windows): threads only


@contextmanager
def layout_lock(root: Path) -> Iterator[None]:
    """Hold the exclusive lock of the layout ``root`` (``flock`` on :data:`LOCK_FILE`).

    Each holder opens the file itself, so threads of one process exclude each other as
    processes do (``flock`` locks belong to the open file).
    """
    if fcntl is None:  # pragma: no cover - Windows
        with _PROCESS_LOCK:
            yield
        return
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_to_index(root: Path, entry: dict, ref_name: str | None) -> dict:
    """Add ``entry`` to ``index.json`` (atomically, under the layout's lock); return the index
    written.

    An entry with the same ``ref_name`` is replaced; without a ref name, an unnamed entry with
    the same digest is. Entries other pulls add at the same time are kept.
    """
    with layout_lock(root):
        return _add_to_index(root, entry, ref_name)


def _add_to_index(root: Path, entry: dict, ref_name: str | None) -> dict:
    path = root / INDEX_FILE
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    if path.exists():
        try:
            index = json.loads(path.read_bytes())
        except ValueError:
            raise ValueError(f"{path} is not JSON: repair or remove it") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ValueError(f"{path} is not an OCI image index (no 'manifests' list)")
    entry = dict(entry)
    if ref_name:
        entry["annotations"] = {**entry.get("annotations", {}), REF_NAME: ref_name}

    def same(old: Any) -> bool:
        if not isinstance(old, dict):
            return False
        name = (old.get("annotations") or {}).get(REF_NAME)
        if ref_name:
            return name == ref_name
        return name is None and old.get("digest") == entry["digest"]

    index["manifests"] = [e for e in index["manifests"] if not same(e)] + [entry]
    _atomic_write(path, (json.dumps(index, indent=2) + "\n").encode())
    return index


def _entry(manifest: Manifest, platform: Platform | None) -> dict:
    entry: dict[str, Any] = {"mediaType": manifest.media_type, "digest": manifest.digest,
                             "size": manifest.size}
    if platform is not None:
        entry["platform"] = {"architecture": platform.architecture, "os": platform.os}
        if platform.variant:
            entry["platform"]["variant"] = platform.variant
    return entry


def choose_platform(index: Manifest, platform: str, where: str = "",
                    fetch=None) -> Descriptor:
    """The entry of ``index`` for ``platform`` (``os/architecture[/variant]``).

    Platforms are compared as containerd normalises them (``linux/arm64/v8`` =
    ``linux/arm64``, ``linux/arm`` = ``linux/arm/v7``, ``x86_64`` = ``amd64``). Without a
    variant, the one entry of that os and architecture (or the one without a variant among
    several) is chosen. Attestations are never chosen. With ``fetch`` (descriptor ->
    :class:`Manifest`), nested indexes are searched too, to :data:`~registry_insights.
    registry.walk.MAX_INDEX_DEPTH` levels.

    Raises
    ------
    InvalidReference
        When ``platform`` is malformed, or several variants match (give the variant).
    NotFound
        When the index has no such platform; the message lists the platforms it has.
    """
    try:
        want = Platform.parse(platform).normalized()
    except ValueError as exc:
        raise InvalidReference(str(exc)) from None
    images = _image_entries(index, fetch, (index.digest,), where)
    found = [d for d in images if _matches(d.platform.normalized(), want)]
    if len(found) > 1:
        plain = [d for d in found if d.platform.normalized().variant is None]
        if len(plain) == 1:
            return plain[0]
        if len({d.digest for d in found}) > 1:
            raise InvalidReference(
                f"{where or index.repository} has several {platform} images "
                f"({', '.join(str(d.platform) for d in found)}): give the variant"
            )
    if not found:
        have = ", ".join(sorted(str(d.platform) for d in images)) or "none"
        raise NotFound(f"{where or index.repository} has no {platform} image; it has: {have}",
                       status=404, code="MANIFEST_UNKNOWN")
    return found[0]


def _matches(have: Platform, want: Platform) -> bool:
    return (have.os == want.os and have.architecture == want.architecture
            and (want.variant is None or have.variant == want.variant))


def _image_entries(index: Manifest, fetch, path: tuple[str, ...],
                   where: str) -> list[Descriptor]:
    """The image entries of ``index`` with a platform, nested indexes followed (depth
    limited, cycles refused) when ``fetch`` is given."""
    out = []
    for entry in index.manifests:
        if entry.media_type in mt.INDEXES and fetch is not None:
            if entry.digest in path or len(path) >= MAX_INDEX_DEPTH:
                raise InvalidResponse(f"{where or index.repository}: indexes nest in a cycle or "
                                      f"deeper than {MAX_INDEX_DEPTH} levels")
            out.extend(_image_entries(fetch(entry), fetch, (*path, entry.digest), where))
        elif entry.platform is not None and not entry.is_attestation \
                and entry.media_type not in mt.INDEXES:
            out.append(entry)
    return out


def _collect(client, repository: str, manifest: Manifest, manifests: list[Manifest],
             configs: dict[str, Descriptor], layers: dict[str, Descriptor], where: str,
             path: tuple[str, ...] = ()) -> None:
    """Every manifest (children first), config and layer ``manifest`` needs, depth first;
    nested indexes are followed (depth limited, cycles refused); foreign layers (Docker
    foreign, OCI non-distributable, ``urls``) are skipped: the registry does not hold them."""
    if manifest.is_schema1:
        raise Unsupported(f"{where} is a Docker schema 1 manifest, which an OCI image layout "
                          "cannot hold")
    if manifest.is_index:
        path = (*path, manifest.digest)
        if len(path) > MAX_INDEX_DEPTH:
            raise InvalidResponse(f"{where}: indexes nest deeper than {MAX_INDEX_DEPTH} levels")
        for entry in manifest.manifests:
            if entry.digest in path:
                raise InvalidResponse(f"{where}: index {manifest.digest} lists {entry.digest}, "
                                      "which contains it (a cycle)")
        children = client.map(lambda d: client.manifest(repository, d.digest),
                              manifest.manifests)
        for child in children:
            _collect(client, repository, child, manifests, configs, layers, where, path)
    else:
        config = manifest.config
        if config is not None and config.digest:
            configs.setdefault(config.digest, config)
        for layer in manifest.layers:
            if not layer.is_foreign:
                layers.setdefault(layer.digest, layer)
    if all(m.digest != manifest.digest for m in manifests):
        manifests.append(manifest)


def _check_single_platform(blobs_dir: Path, manifest: Manifest, platform: str,
                           where: str) -> None:
    """Refuse a single-image tag whose config says another platform than asked."""
    try:
        want = Platform.parse(platform)
    except ValueError as exc:
        raise InvalidReference(str(exc)) from None
    config = manifest.config
    data: dict = {}
    if config is not None and config.digest and config.media_type in mt.IMAGE_CONFIGS:
        try:
            data = json.loads(blob_path(blobs_dir, config.digest).read_bytes())
        except ValueError:
            data = {}
    have_platform = Platform.from_dict(data) if isinstance(data, dict) else None
    if have_platform is None or not _matches(have_platform.normalized(), want.normalized()):
        have = str(have_platform) if have_platform else "unknown"
        raise NotFound(f"{where} is a single {have} image, not {platform}", status=404,
                       code="MANIFEST_UNKNOWN")


# -- blobs -----------------------------------------------------------------------------------
def blob_path(blobs_dir: Path, digest: str) -> Path:
    """``blobs/<algorithm>/<hex>`` of ``digest``."""
    validate_digest(digest)
    algorithm, encoded = digest.split(":", 1)
    return blobs_dir / algorithm / encoded


def _hasher(digest: str):
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise Unsupported(f"digest algorithm {algorithm!r} of {digest} is not supported")
    return hashlib.new(algorithm)


def file_matches(path: Path, digest: str, size: int | None = None) -> bool:
    """True when the file at ``path`` has ``size`` bytes (if given) and hashes to ``digest``."""
    try:
        if size is not None and path.stat().st_size != size:
            return False
        hasher = _hasher(digest)
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                hasher.update(chunk)
    except FileNotFoundError:
        return False
    return f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}" == digest


class _Cancelled(Exception):
    """Another download of the same pull failed: this one stops (internal)."""


class _HashingWriter:
    """File wrapper that hashes, counts and reports the bytes written through it; stops
    (raising ``_Cancelled``) once ``cancel`` is set; rewound by ``seek(0)`` + ``truncate()``
    when a download starts again."""

    def __init__(self, handle: IO[bytes], digest: str, advance,
                 cancel: threading.Event | None = None):
        self.handle = handle
        self.digest = digest
        self.hasher = _hasher(digest)
        self.written = 0
        self.advance = advance
        self.cancel = cancel

    def seek(self, offset: int) -> int:
        if offset != 0:
            raise ValueError("a blob download restarts from its first byte only")
        self.advance(-self.written)
        self.hasher, self.written = _hasher(self.digest), 0
        return self.handle.seek(0)

    def truncate(self) -> int:
        return self.handle.truncate()

    def write(self, data: bytes) -> int:
        if self.cancel is not None and self.cancel.is_set():
            raise _Cancelled()
        self.handle.write(data)
        self.hasher.update(data)
        self.written += len(data)
        self.advance(len(data))
        return len(data)


def _temp_file(target: Path) -> tuple[IO[bytes], str]:
    """A new temporary file next to ``target``, locked, that no sweep of leftovers removed.

    ``mkstemp`` makes a unique name; between its creation and the lock, a pull sweeping
    leftovers (:func:`discard_leftovers`) may lock and remove it. So once locked, the name must
    still lead to this very file; otherwise another is made.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                    dir=target.parent)
        handle = os.fdopen(fd, "wb")
        if fcntl is None:  # pragma: no cover - Windows
            return handle, name
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if _same_file(name, handle.fileno()):
                return handle, name
        except BaseException:
            handle.close()
            raise
        handle.close()  # swept away before it was locked: make another


def _same_file(name: str | Path, fd: int) -> bool:
    """True when the path ``name`` leads to the open file ``fd``."""
    try:
        there = os.stat(name)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _commit(handle: IO[bytes], name: str, target: Path) -> None:
    """Flush and sync the temporary file, then rename it to ``target``."""
    handle.flush()
    os.fsync(handle.fileno())
    if os.name == "posix":
        os.replace(name, target)  # still locked: no other pull can take it for a leftover
        handle.close()
    else:  # pragma: no cover - an open file cannot be renamed on Windows
        handle.close()
        os.replace(name, target)


def _abandon(handle: IO[bytes], name: str) -> None:
    handle.close()
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def ensure_blob(client, repository: str, blobs_dir: Path, descriptor: Descriptor,
                advance=lambda n: None, cancel: threading.Event | None = None) -> bool:
    """Make ``blobs/<alg>/<hex>`` hold the blob; return True when it was downloaded.

    A file already in place is verified (size and digest); a corrupt one is replaced. No more
    than the descriptor's size is read (a registry sending more is refused at once); a
    download that breaks off is resumed (see :meth:`RegistryClient.blob`). Once ``cancel``
    is set the download stops at its next write and its temporary file is removed.

    Raises
    ------
    DigestMismatch, InvalidResponse, IncompleteBlob
        When the registry's bytes do not match the descriptor, or the download kept breaking
        off (nothing is kept).
    """
    target = blob_path(blobs_dir, descriptor.digest)
    if target.exists():
        if file_matches(target, descriptor.digest, descriptor.size):
            advance(descriptor.size or 0)
            return False
        # corrupt or truncated: fetched again and renamed over it (never removed first: a
        # concurrent pull may just have put the good bytes there)
    handle, name = _temp_file(target)
    try:
        writer = _HashingWriter(handle, descriptor.digest, advance, cancel)
        client.blob(repository, descriptor.digest, writer, size=descriptor.size)
        actual = f"{descriptor.digest.split(':', 1)[0]}:{writer.hasher.hexdigest()}"
        if actual != descriptor.digest:
            raise InvalidResponse(f"blob {repository}@{descriptor.digest} hashes to {actual}")
        if descriptor.size is not None and writer.written != descriptor.size:
            raise InvalidResponse(
                f"blob {repository}@{descriptor.digest} has {writer.written} bytes; its "
                f"descriptor says {descriptor.size}"
            )
        _commit(handle, name, target)
    except BaseException:
        _abandon(handle, name)
        raise
    return True


def write_blob_bytes(blobs_dir: Path, digest: str, data: bytes) -> bool:
    """Put ``data`` (already verified against ``digest``) in place; True when written."""
    target = blob_path(blobs_dir, digest)
    if target.exists() and file_matches(target, digest, len(data)):
        return False
    _atomic_write(target, data)
    return True


def discard_leftovers(root: Path) -> list[Path]:
    """Remove the temporary files interrupted pulls left in the layout ``root``; return them.

    A temporary file another live pull is writing is locked, and left alone; a file is
    removed only while this sweep holds its lock and its name still leads to it.
    """
    removed = []
    found = [*root.glob(f".*{TEMP_SUFFIX}"), *root.glob(f"blobs/*/.*{TEMP_SUFFIX}")]
    for path in sorted(found):
        try:
            handle = open(path, "rb")
        except OSError:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live pull holds it
                if not _same_file(path, handle.fileno()):
                    continue  # renamed into place (or replaced) meanwhile: not a leftover
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
        finally:
            handle.close()
    return removed


def _atomic_write(path: Path, data: bytes) -> None:
    handle, name = _temp_file(path)
    try:
        handle.write(data)
        _commit(handle, name, path)
    except BaseException:
        _abandon(handle, name)
        raise
