"""What the disk holds against what the API shows, and what garbage collection would free now.

Pure functions on :class:`~registry_insights.frames.disk.StorageContents` (read from a CNCF
Distribution registry's filesystem storage by :func:`~registry_insights.frames.disk.read_storage`).

Garbage collection, as Distribution 2.8's ``registry garbage-collect`` does it (mark and
sweep, ``registry/storage/garbagecollect.go``):

- mark: for every repository, every manifest revision whose blob exists is marked with the blobs
  it references (an index's manifests; an image's config and layers). With
  ``--delete-untagged``, a revision no tag points to is not marked (and is deleted), even
  when a tagged index lists it: its config and layers go unless something else marks them;
- sweep: every blob on disk that is not marked is deleted.

The backlog is what that sweep would delete now: bytes the disk holds and the registry would
give back. It grows after deletes and overwritten tags until the next garbage collection.
"""

from __future__ import annotations

import pandas as pd

from ..frames.disk import StorageContents
from ..frames.schema import DISK_SUMMARY_SCHEMA, GC_BACKLOG_SCHEMA, coerce, empty


def marked_blobs(storage: StorageContents, delete_untagged: bool = False) -> set[str]:
    """The digests garbage collection keeps (its mark set)."""
    manifests = storage.manifests
    if delete_untagged:
        manifests = manifests[manifests["tagged"].fillna(False).astype(bool)]
    roots = set(manifests["digest"].dropna())
    refs = storage.references
    children = refs.loc[refs["manifest_digest"].isin(list(roots)), "digest"].dropna()
    return roots | set(children)


def gc_backlog(storage: StorageContents, delete_untagged: bool = False) -> pd.DataFrame:
    """The blobs ``garbage-collect`` would delete now, and their bytes.

    Parameters
    ----------
    storage : StorageContents
    delete_untagged : bool, default False
        As ``garbage-collect --delete-untagged``: manifests no tag points to go too. On
        Distribution 2.8 that includes the platform manifests of tagged multi-arch images
        (their index is tagged, they are not), so their layers are counted here as it would
        delete them.

    Returns
    -------
    DataFrame
        :data:`GC_BACKLOG_SCHEMA`: ``digest``, ``size`` (bytes on disk), ``kind``
        (``"manifest"`` for a manifest revision of some repository, else ``"blob"``), largest
        first.
    """
    keep = marked_blobs(storage, delete_untagged)
    blobs = storage.blobs
    gone = blobs[~blobs["digest"].isin(list(keep))]
    if gone.empty:
        return empty(GC_BACKLOG_SCHEMA)
    manifests = set(storage.manifests["digest"].dropna())
    out = pd.DataFrame({"digest": gone["digest"], "size": gone["size"],
                        "kind": ["manifest" if d in manifests else "blob"
                                 for d in gone["digest"]]})
    out = coerce(out, GC_BACKLOG_SCHEMA)
    return out.sort_values(["size", "digest"], ascending=[False, True],
                           kind="stable").reset_index(drop=True)


def disk_summary(storage: StorageContents, api_stored_bytes: int | None = None
                 ) -> pd.DataFrame:
    """What the disk holds, what garbage collection would free, and the API's view beside it.

    Parameters
    ----------
    storage : StorageContents
    api_stored_bytes : int, optional
        The stored bytes by the API's view (distinct blobs the tags reference, the ``(total)``
        ``unique_bytes`` of :func:`~registry_insights.analysis.storage.storage_summary`).

    Returns
    -------
    DataFrame
        One row, :data:`DISK_SUMMARY_SCHEMA` (bytes, ``Int64``): ``disk_bytes`` (every blob's
        ``data`` file), ``blobs``; ``gc_backlog_bytes`` / ``gc_backlog_blobs``: what
        ``garbage-collect`` frees now; ``untagged_bytes``: what ``--delete-untagged`` would
        free on top (manifests no tag points to, and what only they reference);
        ``untagged_manifests``: (repository, manifest) revisions no tag points to;
        ``upload_bytes``: unfinished uploads; ``api_stored_bytes``; ``difference_bytes`` =
        ``disk_bytes - api_stored_bytes`` (NA without the API figure): the part of the disk
        the API's view does not show.
    """
    plain = gc_backlog(storage)
    untagged = gc_backlog(storage, delete_untagged=True)
    disk = storage.disk_bytes
    manifests = storage.manifests
    row = {
        "disk_bytes": disk, "blobs": len(storage.blobs),
        "gc_backlog_bytes": int(plain["size"].sum()), "gc_backlog_blobs": len(plain),
        "untagged_bytes": int(untagged["size"].sum()) - int(plain["size"].sum()),
        "untagged_manifests": int((~manifests["tagged"].fillna(False).astype(bool)).sum()),
        "upload_bytes": storage.upload_bytes,
        "api_stored_bytes": api_stored_bytes,
        "difference_bytes": None if api_stored_bytes is None else disk - int(api_stored_bytes),
    }
    return coerce(pd.DataFrame([row]), DISK_SUMMARY_SCHEMA)
