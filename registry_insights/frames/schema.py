"""The frames' columns and dtypes, declared once; builders end with :func:`coerce`.

Units: sizes are bytes (``Int64``, nullable), times are UTC (``datetime64[ns, UTC]``; cast
explicitly, since pandas 3 would infer microseconds), text is pandas ``string``.
"""

from __future__ import annotations

import pandas as pd

UTC_NS = "datetime64[ns, UTC]"

#: One row per (repository, tag, platform). ``digest``/``media_type``/``size``: what the tag
#: points to (an image manifest or an index). ``manifest_*``: the platform's own manifest.
#: ``layer_size``: sum of the compressed layer sizes of that manifest (bytes).
#: ``is_image``: False for attestation / ``unknown/unknown`` entries of an index (such rows are
#: only included when asked for, ``attestations=True``). ``config``: the parsed config JSON (dict).
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
}

#: One row per (repository, tag, platform, layer); ``size`` in bytes (compressed, as stored),
#: ``position`` 0-based from the base layer.
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
}

#: One row per (repository, blob) a repository references: ``kind`` is ``index``,
#: ``manifest``, ``config`` or ``layer``; ``size`` bytes as stored by the registry.
BLOBS_SCHEMA: dict[str, str] = {
    "repository": "string",
    "digest": "string",
    "kind": "string",
    "size": "Int64",
}


def empty(schema: dict[str, str]) -> pd.DataFrame:
    """An empty frame with the schema's columns and dtypes."""
    return coerce(pd.DataFrame({c: [] for c in schema}), schema)


def coerce(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """Return ``frame`` with the schema's columns first, in order, cast to their dtypes.

    Missing columns are added as all-missing; extra columns are kept after the schema's.
    Times are parsed as RFC 3339 (``Z``, offsets and nanoseconds) to UTC; unparseable -> NaT.
    """
    out = frame.copy()
    for column, dtype in schema.items():
        if column not in out.columns:
            out[column] = pd.Series([None] * len(out), index=out.index, dtype="object")
        if dtype == UTC_NS:
            values = out[column]
            if not isinstance(values.dtype, pd.DatetimeTZDtype):
                values = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
            out[column] = values.astype(UTC_NS)
        elif dtype == "object":
            out[column] = out[column].astype(object)
        else:
            out[column] = out[column].astype(dtype)
    extra = [c for c in out.columns if c not in schema]
    return out[list(schema) + extra].reset_index(drop=True)
