"""Review history: what changed between two snapshots, and growth measured across snapshots.

Pure functions (no I/O, no printing, inputs never mutated) on the snapshots and the history
frame of :mod:`registry_insights.frames.history`. Bytes count distinct blobs, as the registry
stores them (see :mod:`registry_insights.analysis.storage`).

Measured growth, unlike :func:`registry_insights.analysis.trends.growth`, does not rebuild the
past from the build dates of the images still present: it takes the stored bytes each snapshot
measured, so deletions and garbage collection show up, as does a push of an old image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..frames.history import Snapshot
from ..frames.schema import (
    BLOB_CHANGES_SCHEMA,
    HISTORY_SCHEMA,
    MEASURED_GROWTH_SCHEMA,
    REPOSITORY_CHANGES_SCHEMA,
    TAG_CHANGES_SCHEMA,
    coerce,
    empty,
)
from .storage import TOTAL, referenced_blobs, storage_summary

#: Snapshots needed before growth and the forecast are measured rather than rebuilt from
#: build dates.
MIN_SNAPSHOTS = 3

_DAY = pd.Timedelta(days=1)


@dataclass
class SnapshotDiff:
    """What changed from ``older`` to ``newer`` (see :func:`diff`).

    Attributes
    ----------
    tags : DataFrame
        :data:`TAG_CHANGES_SCHEMA`: ``change`` is ``"added"``, ``"removed"`` or ``"moved"``
        (the tag points to another digest); ``old_digest``/``new_digest`` what the tag pointed
        to (NA where absent); ``old_bytes``/``new_bytes`` the distinct blobs (manifests,
        configs, layers of every platform) the tag reaches. Sorted by repository, tag.
    repositories : DataFrame
        :data:`REPOSITORY_CHANGES_SCHEMA`: per repository the distinct bytes it references
        before and after and their ``delta_bytes``, its tag counts and how many tags were
        ``added``/``removed``/``moved``; sorted by ``delta_bytes`` (largest growth first),
        then the registry-wide :data:`TOTAL` row (distinct blobs registry-wide).
    blobs : DataFrame
        :data:`BLOB_CHANGES_SCHEMA`: blobs referenced now and not before (``"added"``) or
        before and not now (``"freed"``: garbage collection frees them, or did), with ``kind``
        (``layer``, ``config``, ``manifest``, ``index``) and ``size`` in bytes. The added minus
        the freed bytes is the change of the stored bytes.
    older_id, newer_id : str
    older_at, newer_at : Timestamp
        UTC.
    """

    tags: pd.DataFrame = field(repr=False)
    repositories: pd.DataFrame = field(repr=False)
    blobs: pd.DataFrame = field(repr=False)
    older_id: str = ""
    newer_id: str = ""
    older_at: pd.Timestamp | None = None
    newer_at: pd.Timestamp | None = None

    @property
    def delta_bytes(self) -> int:
        """Change of the stored bytes (distinct blobs registry-wide), newer minus older."""
        total = self.repositories[self.repositories["repository"] == TOTAL]
        return int(total["delta_bytes"].iloc[0]) if len(total) else 0

    def counts(self) -> dict[str, int]:
        """Tags ``added``, ``removed``, ``moved``; blobs ``blobs_added``, ``blobs_freed`` and
        their bytes ``added_bytes``, ``freed_bytes``."""
        change = self.tags["change"]
        blobs = self.blobs
        added = blobs[blobs["change"] == "added"]
        freed = blobs[blobs["change"] == "freed"]
        return {"added": int((change == "added").sum()),
                "removed": int((change == "removed").sum()),
                "moved": int((change == "moved").sum()),
                "blobs_added": len(added), "blobs_freed": len(freed),
                "added_bytes": int(added["size"].sum()), "freed_bytes": int(freed["size"].sum())}


def diff(older: Snapshot, newer: Snapshot) -> SnapshotDiff:
    """What changed between two snapshots of a registry.

    Parameters
    ----------
    older, newer : Snapshot
        As :func:`~registry_insights.snapshot` or :func:`~registry_insights.load_snapshot`
        return them (their ``tags`` frame with attestation rows, and ``layers``).

    Returns
    -------
    SnapshotDiff
        ``.tags``, ``.repositories``, ``.blobs`` (see :class:`SnapshotDiff`).

    Raises
    ------
    ValueError
        When the snapshots are of different registries.
    """
    if older.registry != newer.registry:
        raise ValueError(f"snapshots of different registries: {older.registry!r} and "
                         f"{newer.registry!r}; diff compares two snapshots of one registry")
    old_tags, new_tags = _tag_digests(older), _tag_digests(newer)
    keys = old_tags.index.union(new_tags.index)
    old_digest = old_tags.reindex(keys)
    new_digest = new_tags.reindex(keys)
    change = np.select(
        [old_digest.isna().to_numpy(dtype=bool), new_digest.isna().to_numpy(dtype=bool),
         # plain bools: pandas 2.1 compares string columns into a nullable BooleanArray
         (old_digest.fillna("") != new_digest.fillna("")).to_numpy(dtype=bool)],
        ["added", "removed", "moved"], default="")
    changed = change != ""
    old_size, new_size = _tag_bytes(older), _tag_bytes(newer)
    tags = pd.DataFrame({
        "repository": keys.get_level_values(0)[changed] if len(keys) else [],
        "tag": keys.get_level_values(1)[changed] if len(keys) else [],
        "change": change[changed],
        "old_digest": old_digest.to_numpy()[changed],
        "new_digest": new_digest.to_numpy()[changed],
    })
    index = pd.MultiIndex.from_frame(tags[["repository", "tag"]]) if len(tags) else None
    tags["old_bytes"] = old_size.reindex(index).to_numpy() if index is not None else []
    tags["new_bytes"] = new_size.reindex(index).to_numpy() if index is not None else []
    tags.loc[tags["change"] == "added", "old_bytes"] = pd.NA
    tags.loc[tags["change"] == "removed", "new_bytes"] = pd.NA
    tags = (coerce(tags, TAG_CHANGES_SCHEMA) if len(tags) else empty(TAG_CHANGES_SCHEMA))
    tags = tags.sort_values(["repository", "tag"], kind="stable").reset_index(drop=True)

    repositories = _repository_changes(older, newer, tags)
    old_blobs = _distinct_blobs(older)
    new_blobs = _distinct_blobs(newer)
    # object arrays: pandas' arrow-string isin converts its lookup values one by one
    old_keys = old_blobs["digest"].to_numpy(dtype=object)
    new_keys = new_blobs["digest"].to_numpy(dtype=object)
    added = new_blobs[~pd.Index(new_keys).isin(old_keys)].assign(change="added")
    freed = old_blobs[~pd.Index(old_keys).isin(new_keys)].assign(change="freed")
    blobs = pd.concat([added, freed], ignore_index=True)
    blobs = coerce(blobs, BLOB_CHANGES_SCHEMA) if len(blobs) else empty(BLOB_CHANGES_SCHEMA)
    blobs = blobs[list(BLOB_CHANGES_SCHEMA)].sort_values(
        ["change", "size", "digest"], ascending=[True, False, True], kind="stable")
    return SnapshotDiff(tags, repositories, blobs.reset_index(drop=True), older.snapshot_id,
                        newer.snapshot_id, older.taken_at, newer.taken_at)


def measured_growth(history: pd.DataFrame) -> pd.DataFrame:
    """Growth measured at each snapshot of one registry: the input of
    :func:`~registry_insights.analysis.trends.forecast`.

    Parameters
    ----------
    history : DataFrame
        :func:`~registry_insights.history`'s frame (:data:`HISTORY_SCHEMA`) for one registry.

    Returns
    -------
    DataFrame
        :data:`MEASURED_GROWTH_SCHEMA`, one row per snapshot, oldest first: ``period_end`` is
        the snapshot's time (UTC) and ``period_start`` the previous snapshot's (NaT for the
        first), ``cumulative_bytes`` the stored bytes it measured (distinct blobs, ``Int64``),
        ``new_bytes`` the change since the previous snapshot (negative after a cleanup and
        garbage collection; NA for the first), ``tags`` and ``disk_bytes`` as recorded.
        ``attrs``: ``source`` = ``"snapshots"``, ``snapshots`` (int), ``freq`` None (the
        forecast steps by the snapshots' median spacing).

    Raises
    ------
    ValueError
        When the frame holds snapshots of more than one registry.
    """
    history = coerce(history, HISTORY_SCHEMA)
    registries = history["registry"].dropna().unique()
    if len(registries) > 1:
        raise ValueError(f"history of {len(registries)} registries ({sorted(registries)}): "
                         "pass one registry's rows, e.g. ri.history(store, registry=URL)")
    history = history.sort_values(["taken_at", "snapshot_id"], kind="stable")
    history = history.reset_index(drop=True)
    stored = history["stored_bytes"]
    out = pd.DataFrame({
        "snapshot_id": history["snapshot_id"],
        "period_start": history["taken_at"].shift(1),
        "period_end": history["taken_at"],
        "new_bytes": stored - stored.shift(1),
        "cumulative_bytes": stored,
        "tags": history["tags"],
        "disk_bytes": history["disk_bytes"],
    })
    out = coerce(out, MEASURED_GROWTH_SCHEMA) if len(out) else empty(MEASURED_GROWTH_SCHEMA)
    out.attrs.update(source="snapshots", snapshots=len(out), freq=None)
    return out


def growth_between(older: pd.Series | dict, newer: pd.Series | dict) -> dict[str, float]:
    """Stored bytes growth from one history row to another.

    Returns
    -------
    dict
        ``delta_bytes`` (int), ``days`` (float), ``bytes_per_day`` and ``bytes_per_30_days``
        (float; NaN when no time passed).
    """
    delta = int(newer["stored_bytes"]) - int(older["stored_bytes"])
    days = (pd.Timestamp(newer["taken_at"]) - pd.Timestamp(older["taken_at"])) / _DAY
    rate = delta / days if days > 0 else float("nan")
    return {"delta_bytes": delta, "days": float(days), "bytes_per_day": rate,
            "bytes_per_30_days": rate * 30}


# ----------------------------------------------------------------------------------------------
# helpers


def _tag_digests(snapshot: Snapshot) -> pd.Series:
    """(repository, tag) -> the digest the tag points to."""
    tags = snapshot.tags
    if tags.empty:
        return pd.Series([], dtype="string",
                         index=pd.MultiIndex.from_arrays([[], []], names=["repository", "tag"]))
    first = tags.drop_duplicates(["repository", "tag"])
    return first.set_index(["repository", "tag"])["digest"].astype("string").sort_index()


def _tag_blobs(snapshot: Snapshot) -> pd.DataFrame:
    """Every blob each tag reaches: repository, tag, digest, size."""
    tags, layers = snapshot.tags, snapshot.layers
    parts = [
        tags[["repository", "tag", "digest", "size"]],
        tags[["repository", "tag", "manifest_digest", "manifest_size"]].set_axis(
            ["repository", "tag", "digest", "size"], axis=1),
        tags[["repository", "tag", "config_digest", "config_size"]].set_axis(
            ["repository", "tag", "digest", "size"], axis=1),
        layers[["repository", "tag", "layer_digest", "size"]].set_axis(
            ["repository", "tag", "digest", "size"], axis=1),
    ]
    blobs = pd.concat([p.astype({"digest": "string", "size": "Int64"}) for p in parts],
                      ignore_index=True)
    blobs = blobs[blobs["digest"].notna()]
    return blobs.drop_duplicates(["repository", "tag", "digest"])


def _tag_bytes(snapshot: Snapshot) -> pd.Series:
    blobs = _tag_blobs(snapshot)
    if blobs.empty:
        return pd.Series([], dtype="Int64",
                         index=pd.MultiIndex.from_arrays([[], []], names=["repository", "tag"]))
    return blobs.groupby(["repository", "tag"])["size"].sum().astype("Int64")


def _distinct_blobs(snapshot: Snapshot) -> pd.DataFrame:
    blobs = referenced_blobs(snapshot.tags, snapshot.layers)
    return blobs.drop_duplicates("digest")[["digest", "kind", "size"]]


def _repository_changes(older: Snapshot, newer: Snapshot, tags: pd.DataFrame) -> pd.DataFrame:
    old = storage_summary(older.tags, older.layers, older.repositories).set_index("repository")
    new = storage_summary(newer.tags, newer.layers, newer.repositories).set_index("repository")
    names = sorted((set(old.index) | set(new.index)) - {TOTAL})
    counts = (tags.groupby(["repository", "change"]).size().unstack(fill_value=0)
              if len(tags) else pd.DataFrame())
    rows = []
    for name in [*names, TOTAL]:
        def value(frame, column, name=name):
            return int(frame.at[name, column]) if name in frame.index else 0

        if name == TOTAL:
            changed = {c: int(counts[c].sum()) if c in counts else 0
                       for c in ("added", "removed", "moved")}
        else:
            changed = {c: int(counts.at[name, c]) if name in counts.index and c in counts
                       else 0 for c in ("added", "removed", "moved")}
        rows.append({"repository": name, "old_bytes": value(old, "unique_bytes"),
                     "new_bytes": value(new, "unique_bytes"),
                     "old_tags": value(old, "tags"), "new_tags": value(new, "tags"),
                     **changed})
    out = pd.DataFrame(rows)
    out["delta_bytes"] = out["new_bytes"] - out["old_bytes"]
    out = coerce(out, REPOSITORY_CHANGES_SCHEMA)[list(REPOSITORY_CHANGES_SCHEMA)]
    body = out[out["repository"] != TOTAL].sort_values(
        ["delta_bytes", "repository"], ascending=[False, True], kind="stable")
    return pd.concat([body, out[out["repository"] == TOTAL]], ignore_index=True)
