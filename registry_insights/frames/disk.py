"""What the disk of a CNCF Distribution registry holds, read from its filesystem storage.

Read-only: files are listed, stat'ed and manifests read; nothing is ever written, moved or
locked. It follows the storage layout Distribution documents for its ``filesystem`` driver
(``registry/storage/paths.go``), under the driver's ``rootdirectory``::

    docker/registry/v2/blobs/sha256/<2 hex>/<64 hex>/data          every blob, once
    docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
    docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
    docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
    docker/registry/v2/repositories/<name>/_uploads/<uuid>/data     unfinished uploads

Only the filesystem driver is read: S3, GCS, Azure and the other drivers keep the same layout
in a bucket, but reading a bucket is out of scope here (copy or mount it, then point at it).
Run it on a registry that is idle or read-only for an exact answer; on a live one, a push or
delete during the walk shows up as a small difference.

File I/O only, no network. What garbage collection would free is computed from these frames by
:func:`registry_insights.analysis.disk.gc_backlog`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import RegistryInsightsError
from .schema import (
    DISK_BLOBS_SCHEMA,
    DISK_MANIFESTS_SCHEMA,
    DISK_REFERENCES_SCHEMA,
    DISK_TAGS_SCHEMA,
    coerce,
    empty,
)


class StorageError(RegistryInsightsError, ValueError):
    """The directory is not the filesystem storage of a Distribution registry."""


@dataclass
class StorageContents:
    """One read of a registry's storage directory (see :func:`read_storage`).

    Attributes
    ----------
    root : Path
        The ``docker/registry/v2`` directory read.
    blobs, manifests, tags, references : DataFrame
        :data:`DISK_BLOBS_SCHEMA`, :data:`DISK_MANIFESTS_SCHEMA`, :data:`DISK_TAGS_SCHEMA`,
        :data:`DISK_REFERENCES_SCHEMA`.
    upload_bytes : int
        Bytes of unfinished uploads (``_uploads``; purged by the registry's upload purging,
        not by garbage collection).
    problems : list of str
        What could not be read (an unreadable manifest, a broken link), skipped.
    """

    root: Path
    blobs: pd.DataFrame = field(repr=False)
    manifests: pd.DataFrame = field(repr=False)
    tags: pd.DataFrame = field(repr=False)
    references: pd.DataFrame = field(repr=False)
    upload_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def disk_bytes(self) -> int:
        """Bytes of every blob on disk (the sum of the ``data`` files)."""
        return int(self.blobs["size"].sum()) if len(self.blobs) else 0


def storage_root(directory: str | os.PathLike) -> Path:
    """The ``docker/registry/v2`` directory under ``directory`` (or ``directory`` itself).

    Raises
    ------
    StorageError
        When neither holds ``blobs`` or ``repositories``.
    """
    base = Path(directory).expanduser()
    for candidate in (base / "docker" / "registry" / "v2", base):
        if (candidate / "blobs").is_dir() or (candidate / "repositories").is_dir():
            return candidate
    raise StorageError(
        f"{str(base)!r} is not the storage of a CNCF Distribution registry: expected "
        "docker/registry/v2/blobs under it (give the filesystem driver's rootdirectory; S3 "
        "and other drivers are not read)")


def read_storage(directory: str | os.PathLike) -> StorageContents:
    """Read what a Distribution registry's filesystem storage holds, without writing.

    Parameters
    ----------
    directory : path
        The ``rootdirectory`` of the registry's ``filesystem`` storage driver (the one holding
        ``docker/registry/v2``), or that ``v2`` directory.

    Returns
    -------
    StorageContents

    Raises
    ------
    StorageError
        When ``directory`` is not such a storage.
    """
    root = storage_root(directory)
    problems: list[str] = []
    blob_sizes = _blobs(root / "blobs", problems)
    manifest_rows: list[tuple[str, str]] = []
    tag_rows: list[tuple[str, str, str]] = []
    upload_bytes = 0
    repos_dir = root / "repositories"
    for repository, path in _repositories(repos_dir):
        revisions = path / "_manifests" / "revisions"
        for link in revisions.glob("*/*/link"):
            digest = _read_link(link, problems)
            # Distribution enumerates a revision only when its blob exists
            if digest is not None and digest in blob_sizes:
                manifest_rows.append((repository, digest))
        for link in (path / "_manifests" / "tags").glob("*/current/link"):
            digest = _read_link(link, problems)
            if digest is not None:
                tag_rows.append((repository, link.parent.parent.name, digest))
        uploads = path / "_uploads"
        if uploads.is_dir():
            upload_bytes += sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file())

    tags = (coerce(pd.DataFrame(tag_rows, columns=list(DISK_TAGS_SCHEMA)), DISK_TAGS_SCHEMA)
            if tag_rows else empty(DISK_TAGS_SCHEMA))
    tag_counts = tags.groupby(["repository", "digest"]).size() if len(tags) else pd.Series(
        dtype="int64")
    manifests = pd.DataFrame(manifest_rows, columns=["repository", "digest"])
    counts = [int(tag_counts.get((r, d), 0)) for r, d in manifest_rows]
    manifests["tags"] = counts
    manifests["tagged"] = [c > 0 for c in counts]
    manifests = (coerce(manifests, DISK_MANIFESTS_SCHEMA) if manifest_rows
                 else empty(DISK_MANIFESTS_SCHEMA))
    reference_rows = []
    for digest in sorted({d for _, d in manifest_rows}):
        for child in _references(root / "blobs", digest, problems):
            reference_rows.append((digest, child))
    references = (coerce(pd.DataFrame(reference_rows, columns=list(DISK_REFERENCES_SCHEMA)),
                         DISK_REFERENCES_SCHEMA) if reference_rows
                  else empty(DISK_REFERENCES_SCHEMA))
    blobs = (coerce(pd.DataFrame({"digest": list(blob_sizes), "size": list(blob_sizes.values())}),
                    DISK_BLOBS_SCHEMA) if blob_sizes else empty(DISK_BLOBS_SCHEMA))
    return StorageContents(root, blobs, manifests, tags, references, upload_bytes, problems)


def _blobs(directory: Path, problems: list[str]) -> dict[str, int]:
    """``sha256:<hex>`` -> size of its ``data`` file."""
    sizes: dict[str, int] = {}
    if not directory.is_dir():
        return sizes
    for algorithm in sorted(p for p in directory.iterdir() if p.is_dir()):
        for data in algorithm.glob("*/*/data"):
            try:
                sizes[f"{algorithm.name}:{data.parent.name}"] = data.stat().st_size
            except OSError as error:
                problems.append(f"{data}: {error.strerror or error}")
    return sizes


def _repositories(directory: Path):
    """(name, path) of every repository: a directory holding ``_manifests`` or ``_layers``."""
    if not directory.is_dir():
        return
    for current, dirs, _files in os.walk(directory):
        here = Path(current)
        if "_manifests" in dirs or "_layers" in dirs:
            yield here.relative_to(directory).as_posix(), here
        dirs[:] = sorted(d for d in dirs if not d.startswith("_"))


def _read_link(path: Path, problems: list[str]) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{path}: unreadable link ({error})")
        return None
    algorithm, _, hexits = text.partition(":")
    if not algorithm or not hexits:
        problems.append(f"{path}: not a digest link ({text[:80]!r})")
        return None
    return text


def _references(blobs: Path, digest: str, problems: list[str]) -> list[str]:
    """The digests a manifest blob references, as Distribution 2.8's ``References()``."""
    algorithm, _, hexits = digest.partition(":")
    path = blobs / algorithm / hexits[:2] / hexits / "data"
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        problems.append(f"manifest {digest}: unreadable ({error})")
        return []
    if not isinstance(document, dict):
        return []
    out: list[str] = []
    if isinstance(document.get("manifests"), list):  # index / manifest list
        out += [m.get("digest") for m in document["manifests"] if isinstance(m, dict)]
    else:
        config = document.get("config")
        if isinstance(config, dict):
            out.append(config.get("digest"))
        out += [layer.get("digest") for layer in document.get("layers") or []
                if isinstance(layer, dict)]
        out += [layer.get("blobSum") for layer in document.get("fsLayers") or []
                if isinstance(layer, dict)]
    return [d for d in out if isinstance(d, str)]
