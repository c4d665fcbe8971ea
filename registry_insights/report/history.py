"""Snapshots of a walk for the review history, and what the report needs from that history.

``snapshot`` is where an inventory becomes a stored snapshot: it prices the walk (storage
totals from :mod:`registry_insights.analysis`) and writes it with the store of
:mod:`registry_insights.frames.history`. :func:`review_history` gathers what a report shows
about the past: the registry's snapshots, the previous one, the diff to it and the measured
growth.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis.disk import disk_summary
from ..analysis.history import MIN_SNAPSHOTS, SnapshotDiff, diff, measured_growth
from ..analysis.storage import TOTAL, storage_summary
from ..frames.disk import StorageContents, read_storage
from ..frames.history import (
    HistoryError,
    HistoryWarning,
    Snapshot,
    history,
    load_snapshot,
    store_path,
    write_snapshot,
)
from ..frames.inventory import Inventory


def totals_of(tags: pd.DataFrame, layers: pd.DataFrame, repositories=None,
              disk: pd.DataFrame | None = None) -> dict:
    """The registry-wide totals a snapshot records
    (:data:`~registry_insights.frames.history.TOTALS`).

    ``tags`` and ``layers`` with attestation rows (they occupy storage); ``tags`` counts
    distinct (repository, tag), ``images`` distinct image manifests; bytes are distinct blobs.
    ``disk`` is :func:`~registry_insights.analysis.disk.disk_summary`'s row, when read.
    """
    summary = storage_summary(tags, layers, repositories)
    total = summary[summary["repository"] == TOTAL].iloc[0]
    images = tags[tags["is_image"].fillna(True).astype(bool)]
    out = {
        "repositories": int((summary["repository"] != TOTAL).sum()),
        "tags": int(tags[["repository", "tag"]].drop_duplicates().shape[0]),
        "images": int(images["manifest_digest"].nunique()),
        "stored_bytes": int(total["unique_bytes"]),
        "layer_bytes": int(total["layer_bytes"]),
        "config_bytes": int(total["config_bytes"]),
        "manifest_bytes": int(total["manifest_bytes"]),
        "logical_bytes": int(total["logical_bytes"]),
    }
    if disk is not None and len(disk):
        out["disk_bytes"] = int(disk["disk_bytes"].iloc[0])
        out["gc_backlog_bytes"] = int(disk["gc_backlog_bytes"].iloc[0])
    return out


def snapshot(inventory: Inventory, history: str | os.PathLike | None = None, *,
             taken_at: object = None, storage: str | os.PathLike | StorageContents | None = None,
             partial: bool = False) -> Snapshot:
    """Save a snapshot of ``inventory`` into the history store and return it.

    Parameters
    ----------
    inventory : Inventory
        One walk (:func:`~registry_insights.fetch_inventory`); its tags and layers are stored
        with attestation rows.
    history : path, optional
        The store directory; default the user data directory
        (:func:`~registry_insights.frames.history.default_history_dir`).
    taken_at : Timestamp, datetime or str, optional
        When the walk was made; default now (UTC).
    storage : path or StorageContents, optional
        The registry's filesystem storage root (read-only): the snapshot then also records the
        blob bytes on disk and the garbage collection backlog.
    partial : bool, default False
        The inventory holds some repositories only (``fetch_inventory(client, [...])``): the
        snapshot is then compared only with snapshots of the same repositories.

    Returns
    -------
    Snapshot
        As :func:`~registry_insights.load_snapshot` would read it back.

    Raises
    ------
    HistoryError
        When ``history`` is not a directory.
    StorageError
        When ``storage`` is not a Distribution filesystem storage.
    """
    from .. import __version__

    tags = inventory.tags(attestations=True)
    layers = inventory.layers(attestations=True)
    disk = None
    if storage is not None:
        contents = storage if isinstance(storage, StorageContents) else read_storage(storage)
        disk = disk_summary(contents, None)
    totals = totals_of(tags, layers, inventory.repositories, disk)
    return write_snapshot(history, registry=inventory.registry, tags=tags, layers=layers,
                          repositories=inventory.repositories, totals=totals,
                          tool_version=__version__, taken_at=taken_at, partial=partial)


@dataclass
class ReviewHistory:
    """What the report shows about the past of one registry.

    Attributes
    ----------
    store : Path
    current : Snapshot
        The snapshot of this report.
    history : DataFrame
        The registry's snapshots (:func:`~registry_insights.history`), oldest first.
    previous : Snapshot or None
        The snapshot before ``current`` (None for the first one, or when unreadable).
    changes : SnapshotDiff or None
        ``diff(previous, current)``.
    growth : DataFrame or None
        :func:`~registry_insights.analysis.history.measured_growth` with at least
        :data:`~registry_insights.analysis.history.MIN_SNAPSHOTS` snapshots, else None.
    skipped : list of dict
        What the store held that was not a readable snapshot (``path``, ``reason``).
    """

    store: Path
    current: Snapshot
    history: pd.DataFrame = field(repr=False)
    previous: Snapshot | None = None
    changes: SnapshotDiff | None = field(default=None, repr=False)
    growth: pd.DataFrame | None = field(default=None, repr=False)
    skipped: list = field(default_factory=list)


def review_history(store: str | os.PathLike | None, current: Snapshot) -> ReviewHistory:
    """The history of ``current``'s registry in ``store``, the previous snapshot and the diff.

    Only snapshots of the same scope count (the whole catalog, or the same repositories):
    a report on two repositories is not "everything else was deleted". Unreadable entries of
    the store are skipped and listed (``skipped``), never fatal; a previous snapshot whose
    files cannot be read is listed there too and the one before it is used.
    """
    root = store_path(store)
    with warnings.catch_warnings(record=True):  # listed in .skipped instead
        warnings.simplefilter("always", HistoryWarning)
        frame = history(root, registry=current.registry)
    skipped = list(frame.attrs.get("skipped", []))
    frame = frame[frame["scope"] == current.scope].reset_index(drop=True)
    earlier = frame[(frame["taken_at"] < current.taken_at)
                    | ((frame["taken_at"] == current.taken_at)
                       & (frame["snapshot_id"] < current.snapshot_id))]
    previous = None
    for snapshot_id in reversed(earlier["snapshot_id"].tolist()):
        try:
            previous = load_snapshot(root, snapshot_id)
            break
        except HistoryError as error:
            skipped.append({"path": str(root / snapshot_id), "reason": str(error)})
    upto = frame[frame["taken_at"] <= current.taken_at]
    growth = measured_growth(upto) if len(upto) >= MIN_SNAPSHOTS else None
    changes = diff(previous, current) if previous is not None else None
    return ReviewHistory(root, current, frame, previous, changes, growth, skipped)
