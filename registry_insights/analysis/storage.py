"""Capacity analysis: pure ``frame -> frame`` functions on the tags and layers frames.

No I/O, no printing, inputs never mutated; the frame comes first so ``.pipe`` works.
Storage follows how a registry stores content (CNCF Distribution, OCI distribution-spec):
every manifest, index, config and layer is a blob stored once per registry, whatever the number
of repositories and tags referencing it; garbage collection frees only blobs that no remaining
manifest references. So "how big" and "what a cleanup frees" are sums over *distinct* blobs,
never per-tag sums (those are given next to them as ``logical_bytes`` for comparison).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ..frames.schema import BLOBS_SCHEMA, SUMMARY_SCHEMA, coerce, empty, tag_rows
from ..registry import mediatypes as mt

#: The ``repository`` label of the registry-wide row of :func:`storage_summary`.
TOTAL = "(total)"



def referenced_blobs(tags: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """Every blob each repository references, once per (repository, digest).

    Built from the tags frame (indexes, platform manifests, configs) and the layers frame.
    Attestations and nested indexes count only if the frames were built with
    ``attestations=True``. Foreign layers (``foreign``: the registry does not store them) are
    left out.

    Returns
    -------
    DataFrame
        :data:`~registry_insights.schema.BLOBS_SCHEMA`: repository, digest, kind
        (``index``/``manifest``/``config``/``layer``), size (bytes, ``Int64``).
    """
    parts = []
    if len(tags):
        index_rows = tags[tags["media_type"].isin(list(mt.INDEXES))]
        parts.append(pd.DataFrame({"repository": index_rows["repository"],
                                   "digest": index_rows["digest"], "kind": "index",
                                   "size": index_rows["size"]}))
        parts.append(pd.DataFrame({"repository": tags["repository"],
                                   "digest": tags["manifest_digest"], "kind": "manifest",
                                   "size": tags["manifest_size"]}))
        cfg = tags[tags["config_digest"].notna()]
        parts.append(pd.DataFrame({"repository": cfg["repository"],
                                   "digest": cfg["config_digest"], "kind": "config",
                                   "size": cfg["config_size"]}))
    if len(layers) and "foreign" in layers.columns:
        layers = layers[~layers["foreign"].fillna(False).astype(bool)]
    if len(layers):
        parts.append(pd.DataFrame({"repository": layers["repository"],
                                   "digest": layers["layer_digest"], "kind": "layer",
                                   "size": layers["size"]}))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty(BLOBS_SCHEMA)
    blobs = coerce(pd.concat(parts, ignore_index=True), BLOBS_SCHEMA)
    blobs = blobs[blobs["digest"].notna()]
    return blobs.drop_duplicates(["repository", "digest"]).reset_index(drop=True)


def _foreign(layers: pd.DataFrame) -> pd.DataFrame:
    """(repository, digest, size) of the foreign layers, once per repository and digest."""
    if not len(layers) or "foreign" not in layers.columns:
        return pd.DataFrame({"repository": [], "digest": [], "size": []})
    rows = layers[layers["foreign"].fillna(False).astype(bool)]
    out = pd.DataFrame({"repository": rows["repository"], "digest": rows["layer_digest"],
                        "size": rows["size"].fillna(0).astype("int64")})
    return out.drop_duplicates(["repository", "digest"])


def storage_summary(tags: pd.DataFrame, layers: pd.DataFrame,
                    repositories: Iterable[str] | None = None) -> pd.DataFrame:
    """Storage per repository, and a registry-wide row labelled :data:`TOTAL`.

    Parameters
    ----------
    tags, layers : DataFrame
        The tags and layers frames (build both with ``attestations=True`` to count
        attestations' blobs; tag counts and logical bytes use image rows only).
    repositories : iterable of str, optional
        Repositories to list even when they hold no tag (they get zero rows).

    Returns
    -------
    DataFrame
        :data:`SUMMARY_SCHEMA`, all sizes in bytes (``Int64``), sorted by unique bytes:

        - ``tags``: distinct tags; ``manifests``: distinct digests the tags point to (on the
          total row both are summed over repositories);
        - ``logical_bytes``: sum of ``layer_size`` over (tag, platform) rows, the naive total;
        - ``unique_bytes``: distinct blobs (layers, configs, manifests) the repository
          references; on the total row, distinct blobs registry-wide: what the registry stores;
        - ``exclusive_bytes``: blobs no other repository references (what deleting the whole
          repository would free); ``shared_bytes`` = ``unique_bytes - exclusive_bytes``;
          on the total row, exclusive sums the repositories' and shared counts each blob
          referenced by two or more repositories once, so they add up to ``unique_bytes``;
        - ``layer_bytes``, ``config_bytes``, ``manifest_bytes`` (indexes included): the
          unique bytes by kind;
        - ``foreign_bytes``: distinct foreign layers the repository's manifests name (Docker
          foreign layers, OCI non-distributable ones, descriptors with ``urls``): fetched from
          elsewhere, never stored by the registry, so not in any figure above.

        Tags and logical bytes count image rows, and artifact tags (Helm charts, SBOMs,
        signatures) by their own rows (:func:`tag_rows`).
    """
    blobs = referenced_blobs(tags, layers)
    images = tag_rows(tags)
    names = set(blobs["repository"].dropna().unique()) | set(
        images["repository"].dropna().unique())
    names = sorted(names | set(repositories or ()))
    users = blobs.groupby("digest")["repository"].transform("nunique")
    size = blobs["size"].fillna(0).astype("int64")
    kind = blobs["kind"].replace({"index": "manifest"})
    per_blob = pd.DataFrame({
        "repository": blobs["repository"],
        "unique_bytes": size,
        "exclusive_bytes": size.where(users.eq(1).to_numpy(), 0),
        "layer_bytes": size.where((kind == "layer").to_numpy(), 0),
        "config_bytes": size.where((kind == "config").to_numpy(), 0),
        "manifest_bytes": size.where((kind == "manifest").to_numpy(), 0),
    })
    by_repo = per_blob.groupby("repository").sum()
    counts = images.groupby("repository").agg(
        tags=("tag", "nunique"), manifests=("digest", "nunique"),
        logical_bytes=("layer_size", "sum"),
    ) if len(images) else pd.DataFrame(columns=["tags", "manifests", "logical_bytes"])
    per_repo = pd.DataFrame(index=pd.Index(names, name="repository"))
    foreign = _foreign(layers)
    per_repo = per_repo.join(counts).join(by_repo).join(
        foreign.groupby("repository")["size"].sum().rename("foreign_bytes")
        if len(foreign) else pd.Series(dtype="int64", name="foreign_bytes"),
    ).fillna(0).reset_index()
    per_repo["shared_bytes"] = per_repo["unique_bytes"] - per_repo["exclusive_bytes"]
    per_repo = coerce(per_repo, SUMMARY_SCHEMA)[list(SUMMARY_SCHEMA)]
    per_repo = per_repo.sort_values(["unique_bytes", "repository"], ascending=[False, True])
    total = _total_row(per_repo, per_blob.assign(digest=blobs["digest"]), foreign)
    out = pd.concat([per_repo, coerce(pd.DataFrame([total]), SUMMARY_SCHEMA)],
                    ignore_index=True)
    return coerce(out, SUMMARY_SCHEMA)


def _total_row(per_repo: pd.DataFrame, per_blob: pd.DataFrame, foreign: pd.DataFrame) -> dict:
    """The registry-wide row: each blob once (``per_blob`` has one row per repository and
    blob), exclusive bytes summed over repositories."""
    distinct = per_blob.drop_duplicates("digest")
    unique_total = int(distinct["unique_bytes"].sum())
    exclusive_total = int(per_repo["exclusive_bytes"].sum())
    return {
        "repository": TOTAL, "tags": int(per_repo["tags"].sum()),
        "manifests": int(per_repo["manifests"].sum()),
        "logical_bytes": int(per_repo["logical_bytes"].sum()),
        "unique_bytes": unique_total, "exclusive_bytes": exclusive_total,
        "shared_bytes": unique_total - exclusive_total,
        "layer_bytes": int(distinct["layer_bytes"].sum()),
        "config_bytes": int(distinct["config_bytes"].sum()),
        "manifest_bytes": int(distinct["manifest_bytes"].sum()),
        "foreign_bytes": int(foreign.drop_duplicates("digest")["size"].sum())
        if len(foreign) else 0,
    }


def repository_summary(tags: pd.DataFrame, layers: pd.DataFrame,
                       repositories: Iterable[str] | None = None) -> pd.DataFrame:
    """:func:`storage_summary` without the total row (one row per repository)."""
    summary = storage_summary(tags, layers, repositories)
    return summary[summary["repository"] != TOTAL].reset_index(drop=True)


#: One row per kind of content (:func:`content_kinds`): ``rows`` of the tags frame (for
#: foreign layers, of the layers frame), distinct ``tags`` and ``manifests``, ``bytes``
#: (distinct blobs: manifests, configs, layers; for foreign layers the bytes named but not
#: stored) and ``counted``: how storage, retention and reclaim count it, in words.
KINDS_SCHEMA: dict[str, str] = {
    "kind": "string",
    "rows": "Int64",
    "tags": "Int64",
    "manifests": "Int64",
    "bytes": "Int64",
    "counted": "string",
}

_COUNTED = {
    "image": "stored bytes; ranked and aged by retention",
    "artifact": "stored bytes; a tag of its own, aged by its config's created or its "
                "org.opencontainers.image.created annotation",
    "accessory": "stored bytes; never ranked or aged alone: deleted and reclaimed with its "
                 "subject",
    "nested index": "stored bytes of the index itself; the images it lists are image rows",
    "index entry": "stored bytes (attestations, unknown/unknown); part of their index",
    "unread": "as its index describes it (the GC keeps what an index lists); its tag is "
              "never planned",
    "foreign layer": "not stored by the registry: left out of stored, unique and reclaimable "
                     "bytes (foreign_bytes) and skipped by pull",
}


def _kind(row) -> str:
    if row.is_image is not None and bool(row.is_image):
        return "image"
    if isinstance(row.subject, str):
        return "accessory"
    unread_tag = row.complete is not None and not bool(row.complete)
    if unread_tag and not isinstance(row.config_digest, str) \
            and row.manifest_media_type not in mt.INDEXES and row.layer_count == 0:
        return "unread"
    if isinstance(row.parent_digest, str):
        return "nested index" if row.manifest_media_type in mt.INDEXES else "index entry"
    return "artifact" if isinstance(row.artifact_type, str) else "index entry"


def content_kinds(tags: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """How much of each kind of content the frames hold, and how each is counted.

    Kinds: ``image``, ``artifact`` (Helm charts, SBOMs and other manifests whose
    ``artifact_type`` is not an image config, with a tag of their own), ``accessory``
    (``subject`` set: signatures, attestations, SBOMs and referrers fallback tags),
    ``nested index``, ``index entry`` (attestations and ``unknown/unknown`` entries),
    ``unread`` (listed by an index, not readable) and ``foreign layer``. Build the frames with
    ``attestations=True`` to see every kind.

    Returns
    -------
    DataFrame
        :data:`KINDS_SCHEMA`, kinds with no row left out; bytes in bytes.
    """
    rows = []
    if len(tags):
        frame = tags.assign(
            is_image=tags["is_image"].astype(object).where(tags["is_image"].notna(), None),
            complete=tags["complete"].astype(object).where(tags["complete"].notna(), None)
            if "complete" in tags.columns else True)
        for column in ("subject", "parent_digest", "artifact_type"):
            if column not in frame.columns:
                frame[column] = None
        for column in ("subject", "parent_digest", "artifact_type", "config_digest",
                       "manifest_media_type", "layer_count"):
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna(), None)
        kinds = [_kind(r) for r in frame.itertuples(index=False)]
        frame = frame.assign(kind=kinds)
        stored = layers
        if len(layers) and "foreign" in layers.columns:
            stored = layers[~layers["foreign"].fillna(False).astype(bool)]
        for kind in [k for k in _COUNTED if k in set(kinds)]:
            part = frame[frame["kind"] == kind]
            manifests = part.drop_duplicates("manifest_digest")
            configs = part.dropna(subset=["config_digest"]).drop_duplicates("config_digest")
            size = int(pd.to_numeric(manifests["manifest_size"]).fillna(0).sum()
                       + pd.to_numeric(configs["config_size"]).fillna(0).sum())
            if len(stored):
                mine = stored[stored["manifest_digest"].isin(set(part["manifest_digest"]))]
                size += int(mine.drop_duplicates("layer_digest")["size"].fillna(0).sum())
            rows.append({"kind": kind, "rows": len(part),
                         "tags": len(set(zip(part["repository"], part["tag"]))),
                         "manifests": part["manifest_digest"].nunique(), "bytes": size,
                         "counted": _COUNTED[kind]})
    foreign = _foreign(layers)
    if len(foreign):
        rows.append({"kind": "foreign layer", "rows": len(foreign), "tags": None,
                     "manifests": None,
                     "bytes": int(foreign.drop_duplicates("digest")["size"].sum()),
                     "counted": _COUNTED["foreign layer"]})
    return coerce(pd.DataFrame(rows), KINDS_SCHEMA) if rows else empty(KINDS_SCHEMA)
