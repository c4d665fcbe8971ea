"""The frames' columns and dtypes, declared once; builders end with :func:`coerce`.

Units: sizes are bytes (``Int64``, nullable), times are UTC (``datetime64[ns, UTC]``; cast
explicitly, since pandas 3 would infer microseconds), text is pandas ``string``.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InvalidValue

UTC_NS = "datetime64[ns, UTC]"

#: Creation times before this instant are unknown, not ages (reproducible builds write the Unix
#: epoch; cosign and ``crane append`` write 0001-01-01).
EARLIEST_KNOWN = pd.Timestamp("1980-01-01", tz="UTC").as_unit("ns")


def utc(value: object = None, name: str = "time") -> pd.Timestamp:
    """``value`` as a UTC Timestamp in nanoseconds (naive means UTC); None is the current time.

    What "now" means everywhere (reports, trends, retention plans, the command line): a
    timestamp, ``datetime`` or ISO 8601 text.

    Raises
    ------
    InvalidValue
        A ``ValueError`` naming ``name`` and the value: when it is not a time, or lies outside
        what nanosecond times hold (1677-09-22 to 2262-04-11).
    """
    if value is None:
        return pd.Timestamp.now(tz="UTC").as_unit("ns")
    out_of_range = InvalidValue(
        f"{name} {value!r} is out of range: give a time between 1677-09-22 and 2262-04-11 "
        "(UTC), the span of nanosecond times")
    try:
        stamp = pd.Timestamp(value)
        if not pd.isna(stamp):
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            stamp = stamp.as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise out_of_range from None
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise InvalidValue(f"{name} {value!r} is not a time: give e.g. 2026-11-01 or "
                           "2026-11-01T12:00:00Z (UTC when no offset)")
    return stamp


def image_mask(frame: pd.DataFrame) -> pd.Series:
    """True for the rows of a tags or layers frame that are images: ``is_image`` not False
    (attestations and other non-image index entries are False; missing counts as an image)."""
    if "is_image" not in frame.columns:
        return pd.Series(True, index=frame.index)
    return frame["is_image"].fillna(True).astype(bool)


def image_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The image rows of a tags or layers frame (see :func:`image_mask`)."""
    return frame[image_mask(frame)] if len(frame) else frame


def tag_rows(tags: pd.DataFrame) -> pd.DataFrame:
    """The rows of a tags frame that stand for their tag: image rows, and every row of a tag
    that has no image row (a Helm chart, an SBOM, a signature: artifacts are tags too).
    Attestations and nested indexes inside an image index are left out."""
    if not len(tags) or "is_image" not in tags.columns:
        return tags
    image = image_mask(tags)
    keys = pd.Series(list(zip(tags["repository"], tags["tag"])), index=tags.index)
    return tags[image | ~keys.isin(set(keys[image]))]


#: One row per (repository, tag, platform). ``digest``/``media_type``/``size``: what the tag
#: points to (an image manifest or an index). ``manifest_*``: the platform's own manifest.
#: ``layer_size``: sum of the compressed layer sizes of that manifest (bytes).
#: ``is_image``: True only for real images; False for artifacts (Helm charts, SBOMs,
#: signatures: ``artifact_type`` says which), accessories (``subject`` set) and, only included
#: when asked for (``attestations=True``), the non-image entries of an index (attestations,
#: ``unknown/unknown``) and nested indexes. ``config``: the image config, a read-only mapping
#: (``ImageConfig``; ``.to_dict()`` for a dict).
#: ``artifact_type``: the manifest's ``artifactType``, else its config media type (NA for an
#: index). ``subject``: the digest an accessory describes (a ``subject`` field, or a
#: ``sha256-<hex>[.sig|.att|.sbom]`` tag). ``parent_digest``: the index that lists the row's
#: manifest directly (NA for a tag's own manifest). ``complete``: False when a part of the
#: tag's index could not be read (see ``Inventory.errors``); retention never plans such tags.
TAGS_SCHEMA: dict[str, str] = {
    "registry": "string",
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "media_type": "string",
    "size": "Int64",
    "platform": "string",
    "manifest_digest": "string",
    "manifest_media_type": "string",
    "manifest_size": "Int64",
    "config_digest": "string",
    "config_size": "Int64",
    "created_at": UTC_NS,
    "layer_size": "Int64",
    "layer_count": "Int64",
    "architecture": "string",
    "os": "string",
    "variant": "string",
    "is_image": "boolean",
    "config": "object",
    "artifact_type": "string",
    "subject": "string",
    "parent_digest": "string",
    "complete": "boolean",
}

#: One row per (repository, tag, platform, layer); ``size`` in bytes (compressed, as stored),
#: ``position`` 0-based from the base layer. ``foreign``: a layer the registry does not store
#: (Docker foreign layer, OCI non-distributable, any descriptor with ``urls``); storage and
#: reclaim leave it out and report it as ``foreign_bytes``.
LAYERS_SCHEMA: dict[str, str] = {
    "registry": "string",
    "repository": "string",
    "tag": "string",
    "platform": "string",
    "manifest_digest": "string",
    "layer_digest": "string",
    "size": "Int64",
    "media_type": "string",
    "position": "Int64",
    "is_image": "boolean",
    "foreign": "boolean",
}

#: One row per thing a walk could not read (``Inventory.errors``): a tag (``tag`` set) or a
#: repository whose tag list failed (``tag`` NA). ``reference``: the tag, or the digest of the
#: manifest or blob that failed; ``status``: the HTTP status (NA when no answer came);
#: ``code``: the registry's error code (``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN`` ...).
ERRORS_SCHEMA: dict[str, str] = {
    "registry": "string",
    "repository": "string",
    "tag": "string",
    "reference": "string",
    "status": "Int64",
    "code": "string",
    "message": "string",
}

#: One row per (repository, blob) a repository references: ``kind`` is ``index``,
#: ``manifest``, ``config`` or ``layer``; ``size`` bytes as stored by the registry.
BLOBS_SCHEMA: dict[str, str] = {
    "repository": "string",
    "digest": "string",
    "kind": "string",
    "size": "Int64",
}


# -- analysis results (analysis/); the CSVs of the report use these columns as they are ----

#: :func:`~registry_insights.analysis.storage.storage_summary`: one row per repository, then
#: the registry-wide ``(total)`` row; bytes. ``logical_bytes``: the per-tag sum (what naive
#: tools report); ``unique_bytes``: each blob once, as stored.
SUMMARY_SCHEMA: dict[str, str] = {
    "repository": "string",
    "tags": "Int64",
    "manifests": "Int64",
    "logical_bytes": "Int64",
    "unique_bytes": "Int64",
    "exclusive_bytes": "Int64",
    "shared_bytes": "Int64",
    "layer_bytes": "Int64",
    "config_bytes": "Int64",
    "manifest_bytes": "Int64",
    "foreign_bytes": "Int64",
}

#: :func:`growth`: one row per period, oldest first.
GROWTH_SCHEMA: dict[str, str] = {
    "period_start": UTC_NS,
    "period_end": UTC_NS,
    "new_bytes": "Int64",
    "cumulative_bytes": "Int64",
    "tags_pushed": "Int64",
    "images": "Int64",
}

#: :func:`forecast`: history rows, then forecast rows.
FORECAST_SCHEMA: dict[str, str] = {
    "date": UTC_NS,
    "kind": "string",
    "bytes": "Float64",
    "trend": "Float64",
    "lower": "Float64",
    "upper": "Float64",
}

#: :func:`age_breakdown` (``age`` is an ordered categorical, youngest bucket first).
AGE_SCHEMA: dict[str, str] = {
    "age": "category",
    "rows": "Int64",
    "layer_size": "Int64",
}

#: :func:`shared_layers`.
SHARED_LAYERS_SCHEMA: dict[str, str] = {
    "layer_digest": "string",
    "size": "Int64",
    "repositories": "Int64",
    "tags": "Int64",
    "saved_bytes": "Int64",
}

#: One row per (repository, tag). ``digest``: what the tag points to; ``platforms``: its
#: platforms, comma separated; ``created_at``: the newest image's creation (UTC);
#: ``layer_size``: compressed layer bytes summed over platforms (the naive per-tag size);
#: ``subject``: for an accessory (signature, attestation, SBOM), the digest it describes;
#: ``complete``: False when the tag could be read only in part (never deleted);
#: ``rank``: 1 for the newest digest among the repository's candidates (NA when not ranked);
#: ``action``: ``keep`` or ``delete``; ``reason``: why, in words.
PLAN_SCHEMA: dict[str, str] = {
    "registry": "string",
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "media_type": "string",
    "platforms": "string",
    "created_at": UTC_NS,
    "layer_size": "Int64",
    "subject": "string",
    "complete": "boolean",
    "rank": "Int64",
    "action": "string",
    "reason": "string",
}

#: One row per repository, then :data:`~registry_insights.analysis.TOTAL`. ``tags``: tags in
#: the frame; ``deleted_tags``: tags the plan deletes; ``deleted_manifests``: manifests deleted
#: by digest (tagged digests, plus platform manifests of deleted indexes with ``children``);
#: ``logical_bytes``: sum of ``layer_size`` over the deleted (tag, platform) rows;
#: ``reclaimable_bytes``: distinct blobs the GC frees that the repository referenced (on the
#: total row: distinct registry-wide, so repositories can add up to more than it, when a freed
#: blob was shared); ``layer_bytes``, ``config_bytes``, ``manifest_bytes`` (indexes included):
#: the reclaimable bytes by kind. All sizes in bytes.
RECLAIM_SCHEMA: dict[str, str] = {
    "repository": "string",
    "tags": "Int64",
    "deleted_tags": "Int64",
    "deleted_manifests": "Int64",
    "logical_bytes": "Int64",
    "reclaimable_bytes": "Int64",
    "layer_bytes": "Int64",
    "config_bytes": "Int64",
    "manifest_bytes": "Int64",
}

#: :class:`~registry_insights.ui.selection.TagSelection` rows, what the TagBrowser's table
#: shows: one per (repository, tag). ``platforms``: the image platforms, comma separated;
#: ``created_at``: the newest build (UTC); ``age_days``: whole days from ``created_at`` to the
#: selection's ``now`` (NA when unknown or before :data:`EARLIEST_KNOWN`); ``layer_size``:
#: compressed layer bytes summed over the platforms.
SELECTION_SCHEMA: dict[str, str] = {
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "media_type": "string",
    "platforms": "string",
    "created_at": UTC_NS,
    "age_days": "Int64",
    "layer_size": "Int64",
}

#: :meth:`TagBrowser.preview_delete <registry_insights.ui.widgets.TagBrowser.preview_delete>`:
#: :data:`PLAN_SCHEMA` and ``age_days`` (as in :data:`SELECTION_SCHEMA`).
PREVIEW_SCHEMA: dict[str, str] = {**PLAN_SCHEMA, "age_days": "Int64"}

#: :attr:`TagBrowser.outcomes <registry_insights.ui.widgets.TagBrowser.outcomes>`: one row per
#: tag a delete concerned. ``outcome``: ``deleted`` (the manifest went), ``deleted (tag only)``
#: (the manifest stays for other tags), ``already gone``, ``refused`` (the tag had moved to
#: another digest, or its digest gained a tag: left alone), ``failed``, or ``kept`` (not
#: selected, shares a selected tag's digest).
OUTCOMES_SCHEMA: dict[str, str] = {
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "outcome": "string",
    "message": "string",
}

#: The range of ``datetime64[ns]``: times outside are unknown (NaT).
_EARLIEST = pd.Timestamp("1677-09-22", tz="UTC")
_LATEST = pd.Timestamp("2262-04-10", tz="UTC")


def utc_ns(values: pd.Series) -> pd.Series:
    """``values`` (RFC 3339 strings, datetimes, timestamps) as ``datetime64[ns, UTC]``.

    Unparseable values and times outside the nanosecond range (``0001-01-01T00:00:00Z``, which
    pandas 3 parses at microsecond resolution) are NaT, on pandas 2 and 3 alike.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) and str(values.dtype) == UTC_NS:
        return values
    if not (isinstance(values.dtype, pd.DatetimeTZDtype)
            or pd.api.types.is_datetime64_dtype(values.dtype)):
        values = pd.Series(values, index=values.index, dtype=object)
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    else:
        parsed = pd.to_datetime(values, utc=True)
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):  # all NaT on pandas 2.1: naive
        parsed = parsed.dt.tz_localize("UTC")
    if str(parsed.dtype) != UTC_NS:  # another unit (pandas 3): may hold what ns cannot
        parsed = parsed.where((parsed >= _EARLIEST) & (parsed <= _LATEST))
    return parsed.astype(UTC_NS)


# -- review history (frames.history, analysis.history) and the disk (frames.disk, analysis.disk)

#: :func:`history`: one row per snapshot, oldest first.
HISTORY_SCHEMA: dict[str, str] = {
    "snapshot_id": "string",
    "taken_at": UTC_NS,
    "registry": "string",
    "repositories": "Int64",
    "tags": "Int64",
    "images": "Int64",
    "stored_bytes": "Int64",
    "layer_bytes": "Int64",
    "config_bytes": "Int64",
    "manifest_bytes": "Int64",
    "logical_bytes": "Int64",
    "disk_bytes": "Int64",
    "gc_backlog_bytes": "Int64",
    "scope": "string",
    "tool_version": "string",
    "path": "string",
}

#: Blobs on disk: ``digest``, ``size`` (bytes of the ``data`` file).
DISK_BLOBS_SCHEMA = {"digest": "string", "size": "Int64"}

#: Manifest revisions per repository: ``tags`` (how many tags' ``current`` link points to it),
#: ``tagged`` (``tags > 0``).
DISK_MANIFESTS_SCHEMA = {"repository": "string", "digest": "string", "tags": "Int64",
                         "tagged": "boolean"}

#: Tags per repository and the digest their ``current`` link points to.
DISK_TAGS_SCHEMA = {"repository": "string", "tag": "string", "digest": "string"}

#: What each manifest on disk references (Distribution's ``Manifest.References()``): an
#: index's manifests; an image manifest's config and layers; a schema 1 manifest's layers.
DISK_REFERENCES_SCHEMA = {"manifest_digest": "string", "digest": "string"}

#: :attr:`SnapshotDiff.tags`: one row per tag that changed.
TAG_CHANGES_SCHEMA: dict[str, str] = {
    "repository": "string",
    "tag": "string",
    "change": "string",
    "old_digest": "string",
    "new_digest": "string",
    "old_bytes": "Int64",
    "new_bytes": "Int64",
}

#: :attr:`SnapshotDiff.repositories`: one row per repository in either snapshot, then
#: :data:`~registry_insights.analysis.storage.TOTAL`.
REPOSITORY_CHANGES_SCHEMA: dict[str, str] = {
    "repository": "string",
    "old_bytes": "Int64",
    "new_bytes": "Int64",
    "delta_bytes": "Int64",
    "old_tags": "Int64",
    "new_tags": "Int64",
    "added": "Int64",
    "removed": "Int64",
    "moved": "Int64",
}

#: :attr:`SnapshotDiff.blobs`: one row per blob referenced in one snapshot and not the other.
BLOB_CHANGES_SCHEMA: dict[str, str] = {
    "digest": "string",
    "kind": "string",
    "size": "Int64",
    "change": "string",
}

#: :func:`measured_growth`: one row per snapshot, oldest first.
MEASURED_GROWTH_SCHEMA: dict[str, str] = {
    "snapshot_id": "string",
    "period_start": UTC_NS,
    "period_end": UTC_NS,
    "new_bytes": "Int64",
    "cumulative_bytes": "Int64",
    "tags": "Int64",
    "disk_bytes": "Int64",
}

#: :func:`gc_backlog`: one row per blob garbage collection would delete.
GC_BACKLOG_SCHEMA: dict[str, str] = {
    "digest": "string",
    "size": "Int64",
    "kind": "string",
}

#: :func:`disk_summary`: one row.
DISK_SUMMARY_SCHEMA: dict[str, str] = {
    "disk_bytes": "Int64",
    "blobs": "Int64",
    "gc_backlog_bytes": "Int64",
    "gc_backlog_blobs": "Int64",
    "untagged_bytes": "Int64",
    "untagged_manifests": "Int64",
    "upload_bytes": "Int64",
    "api_stored_bytes": "Int64",
    "difference_bytes": "Int64",
}


def empty(schema: dict[str, str]) -> pd.DataFrame:
    """An empty frame with the schema's columns and dtypes."""
    return coerce(pd.DataFrame({c: [] for c in schema}), schema)


#: dtypes :func:`frame_of` makes a column at directly from its values.
_MADE_AT_ONCE = frozenset({"string", "Int64", "boolean"})


def frame_of(columns: dict[str, list], schema: dict[str, str]) -> pd.DataFrame:
    """:func:`coerce` of a frame of ``columns`` (name -> values), each text, integer or
    boolean column made at its dtype at once (a frame of objects cast column by column costs
    three times as much); times, objects and columns whose values do not cast that way go
    through :func:`coerce` as they are."""
    arrays: dict[str, object] = {}
    for name, values in columns.items():
        arrays[name] = values
        if schema.get(name) in _MADE_AT_ONCE:
            try:
                arrays[name] = pd.array(values, dtype=schema[name])
            except (TypeError, ValueError, OverflowError):
                pass  # coerce says what is wrong
    return _coerce(pd.DataFrame(arrays), schema, owned=True)


def coerce(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """Return ``frame`` with the schema's columns first, in order, cast to their dtypes.

    Missing columns are added as all-missing; extra columns are kept after the schema's.
    Times are parsed as RFC 3339 (``Z``, offsets and nanoseconds) to UTC; unparseable -> NaT.
    """
    return _coerce(frame, schema, owned=False)


def _coerce(frame: pd.DataFrame, schema: dict[str, str], owned: bool) -> pd.DataFrame:
    """:func:`coerce`; ``owned``: ``frame`` is the caller's own, made for this call, with a
    default index (:func:`frame_of`): when its columns are already in order it is returned
    without the column selection that gives a caller's frame a copy of its own (the first
    selection of a process costs more than the rest of a 270-row frame)."""
    # a shallow copy: the schema's columns are replaced below, never written into, and the
    # column selection at the end gives a frame of its own (pandas 2; lazily under pandas 3's
    # copy on write), so the input is never mutated; a deep copy here copied every column of a
    # frame first, the frames of millions of rows included
    out = frame.copy(deep=False)
    for column, dtype in schema.items():
        if column not in out.columns:
            out[column] = pd.Series([None] * len(out), index=out.index, dtype="object")
        elif dtype in _MADE_AT_ONCE and str(out[column].dtype) == dtype:
            continue  # already cast (see frame_of): astype would only copy it
        if dtype == UTC_NS:
            out[column] = utc_ns(out[column])
        elif dtype == "object":
            out[column] = out[column].astype(object)
        else:
            out[column] = out[column].astype(dtype)
    extra = [c for c in out.columns if c not in schema]
    order = list(schema) + extra
    if owned and list(out.columns) == order:
        return out
    return out[order].reset_index(drop=True)
