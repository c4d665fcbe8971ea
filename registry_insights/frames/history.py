"""The history store: one snapshot of a registry per review, kept as Parquet files.

A store is a directory. Each snapshot is one sub-directory named by its ``snapshot_id``
(``20261101T120000.123456Z-1a2b3c4d``: the UTC time it was taken, then 8 random hex digits):

- ``snapshot.json``: the snapshot's manifest: format, id, time (ISO 8601 UTC), registry, tool
  version, the repositories read, the registry-wide totals (bytes and counts) and the files;
- ``tags.parquet``: the tags frame (:data:`~registry_insights.frames.schema.TAGS_SCHEMA`,
  attestation rows included) without ``config``;
- ``configs.parquet``: one row per distinct ``config_digest`` with the config as compact JSON
  (a config is shared by every tag of its image: stored once);
- ``layers.parquet``: the layers frame (:data:`~registry_insights.frames.schema.LAYERS_SCHEMA`).

A snapshot is written into a hidden temporary directory of the store, flushed to disk, then
renamed to its final name in one step (``os.rename``, atomic on POSIX file systems): a reader
sees a whole snapshot or none. Anything else in the store (a stray file, a directory without a
readable ``snapshot.json``, an interrupted write, a newer format) is reported by
:func:`history` (``attrs["skipped"]`` and a :class:`HistoryWarning`) and skipped, never fatal.
Reading needs only the JSON manifests; :func:`load_snapshot` reads the Parquet files of one.

File I/O only, no network (the layers contract: ``frames`` sits below ``analysis``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import RegistryInsightsError
from .schema import HISTORY_SCHEMA, LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty, utc

#: Version of the on-disk format written in ``snapshot.json`` (``format``).
FORMAT = "registry-insights-snapshot/1"
MANIFEST = "snapshot.json"
_TMP_PREFIX = ".tmp-"

#: Registry-wide totals a snapshot records (bytes are distinct blobs, as the registry stores
#: them; see :func:`registry_insights.analysis.storage_summary`). ``disk_bytes`` and
#: ``gc_backlog_bytes`` are filled only when the storage was read (``--storage``).
TOTALS: tuple[str, ...] = (
    "repositories", "tags", "images", "stored_bytes", "layer_bytes", "config_bytes",
    "manifest_bytes", "logical_bytes", "disk_bytes", "gc_backlog_bytes",
)


#: The ``scope`` of a snapshot of the whole catalog (otherwise ``"repositories:a,b,..."``).
CATALOG = "catalog"

_CONFIGS_SCHEMA = {"config_digest": "string", "config": "string"}


class HistoryError(RegistryInsightsError, ValueError):
    """A snapshot store or a snapshot in it cannot be used (the message says which and why)."""


class HistoryWarning(UserWarning):
    """A file or directory in a history store that is not a readable snapshot was skipped."""


@dataclass
class Snapshot:
    """One snapshot of a registry, as :func:`write_snapshot` wrote it or :func:`load_snapshot`
    read it back.

    Attributes
    ----------
    snapshot_id : str
    taken_at : Timestamp
        UTC.
    registry : str
        The registry's base URL, as the client names it.
    tool_version : str
        The registry_insights version that wrote it.
    repositories : list of str
        The repositories read (empty ones included).
    totals : dict
        :data:`TOTALS`: ints (bytes or counts), None where not measured.
    tags, layers : DataFrame
        The tags frame (``config`` as dicts; attestation rows included, ``is_image`` False) and
        the layers frame.
    path : Path or None
        The snapshot's directory in its store.
    scope : str
        :data:`CATALOG` when the whole catalog was read, else ``"repositories:"`` and the
        names read, comma-separated: only snapshots of one scope compare.
    """

    snapshot_id: str
    taken_at: pd.Timestamp
    registry: str
    tool_version: str
    repositories: list[str]
    totals: dict
    tags: pd.DataFrame = field(repr=False)
    layers: pd.DataFrame = field(repr=False)
    path: Path | None = None
    scope: str = CATALOG


def default_history_dir() -> Path:
    """``<user data dir>/registry_insights/history`` (platformdirs; ``$XDG_DATA_HOME`` on
    Linux, else ``~/.local/share``)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("registry_insights", appauthor=False)) / "history"


def store_path(store: str | os.PathLike | None) -> Path:
    """The store directory: ``store``, or :func:`default_history_dir` when None."""
    return default_history_dir() if store is None else Path(store).expanduser()


def new_snapshot_id(taken_at: pd.Timestamp) -> str:
    """``YYYYmmddTHHMMSS.ffffffZ-<8 hex>``: sorts by time, unique by its random part."""
    return f"{taken_at:%Y%m%dT%H%M%S.%f}Z-{secrets.token_hex(4)}"


def write_snapshot(store: str | os.PathLike | None, *, registry: str, tags: pd.DataFrame,
                   layers: pd.DataFrame, repositories: Iterable[str], totals: dict,
                   tool_version: str, taken_at: object = None,
                   partial: bool = False) -> Snapshot:
    """Write one snapshot into ``store`` atomically (see the module docstring).

    Parameters
    ----------
    store : path or None
        The store directory (created if missing); None: :func:`default_history_dir`.
    registry : str
    tags, layers : DataFrame
        The tags frame (``config`` dicts are stored as compact JSON, once per config digest)
        and the layers frame.
    repositories : iterable of str
    totals : dict
        Values for :data:`TOTALS` (missing keys are stored as null).
    tool_version : str
    taken_at : Timestamp, datetime or str, optional
        Default the current UTC time (naive means UTC).
    partial : bool, default False
        Only ``repositories`` were read, not the whole catalog (the snapshot's ``scope``).

    Returns
    -------
    Snapshot
        What was written, ``path`` set.

    Raises
    ------
    HistoryError
        When ``store`` exists and is not a directory.
    OSError
        When the files cannot be written (nothing is left under the final name).
    """
    root = store_path(store)
    if root.exists() and not root.is_dir():
        raise HistoryError(f"history store {str(root)!r} is a file, not a directory: give a "
                           "directory (--history DIR / history=)")
    root.mkdir(parents=True, exist_ok=True)
    taken = _utc(taken_at)
    snapshot_id = new_snapshot_id(taken)
    tags = coerce(tags, TAGS_SCHEMA)
    layers = coerce(layers, LAYERS_SCHEMA)[list(LAYERS_SCHEMA)]
    configs = _configs_table(tags)
    clean_totals = {name: _int_or_none(totals.get(name)) for name in TOTALS}
    names = sorted(set(repositories))
    scope = "repositories:" + ",".join(names) if partial else CATALOG
    record = {
        "format": FORMAT, "snapshot_id": snapshot_id, "taken_at": _iso(taken),
        "registry": str(registry), "tool_version": str(tool_version),
        "scope": scope, "repositories": names, "totals": clean_totals,
        "files": {"tags": "tags.parquet", "configs": "configs.parquet",
                  "layers": "layers.parquet"},
        "rows": {"tags": len(tags), "configs": len(configs), "layers": len(layers)},
    }
    tmp = root / f"{_TMP_PREFIX}{snapshot_id}-{os.getpid()}"
    tmp.mkdir()
    try:
        tags[list(TAGS_SCHEMA)].drop(columns=["config"]).to_parquet(
            tmp / "tags.parquet", engine="pyarrow", index=False)
        configs.to_parquet(tmp / "configs.parquet", engine="pyarrow", index=False)
        layers.to_parquet(tmp / "layers.parquet", engine="pyarrow", index=False)
        (tmp / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        final = root / snapshot_id
        os.rename(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(snapshot_id, taken, str(registry), str(tool_version),
                    record["repositories"], clean_totals, tags, layers, final, scope)


def history(store: str | os.PathLike | None = None, registry: str | None = None
            ) -> pd.DataFrame:
    """One row per snapshot in ``store``, oldest first.

    Parameters
    ----------
    store : path, optional
        The store directory; default :func:`default_history_dir`. A store that does not exist
        yet has no snapshots (an empty frame).
    registry : str, optional
        Only the snapshots of this registry (its base URL as the client names it, e.g.
        ``https://registry.example.com`` or ``http://127.0.0.1:5000``; a bare host matches
        either scheme).

    Returns
    -------
    DataFrame
        :data:`HISTORY_SCHEMA`: ``snapshot_id``, ``taken_at`` (UTC), ``registry``,
        ``repositories``, ``tags`` (distinct (repository, tag)), ``images`` (distinct image
        manifests), ``stored_bytes`` (distinct blobs the tags reference: what the registry
        stores by the API's view), ``layer_bytes``, ``config_bytes``, ``manifest_bytes`` (the
        stored bytes by kind), ``logical_bytes`` (the naive per-tag sum), ``disk_bytes`` and
        ``gc_backlog_bytes`` (blob bytes on disk and what garbage collection would free, NA
        unless the storage was read), ``scope`` (:data:`CATALOG`, or the repositories read),
        ``tool_version``, ``path``. Sorted by ``taken_at``, then
        id. ``attrs["skipped"]``: a list of ``{"path", "reason"}`` for what was not a readable
        snapshot (each also warned as :class:`HistoryWarning`).

    Raises
    ------
    HistoryError
        When ``store`` is a file.
    """
    root = store_path(store)
    if root.exists() and not root.is_dir():
        raise HistoryError(f"history store {str(root)!r} is a file, not a directory")
    rows, skipped = [], []
    entries = sorted(root.iterdir()) if root.is_dir() else []
    for entry in entries:
        try:
            record = _read_record(entry)
        except HistoryError as error:
            skipped.append({"path": str(entry), "reason": str(error)})
            continue
        if registry is not None and not _same_registry(record["registry"], registry):
            continue
        totals = record.get("totals") or {}
        rows.append({"snapshot_id": record["snapshot_id"], "taken_at": record["taken_at"],
                     "registry": record["registry"],
                     **{name: totals.get(name) for name in TOTALS},
                     "scope": record.get("scope") or CATALOG,
                     "tool_version": record.get("tool_version"), "path": str(entry)})
    out = coerce(pd.DataFrame(rows), HISTORY_SCHEMA) if rows else empty(HISTORY_SCHEMA)
    out = out[list(HISTORY_SCHEMA)].sort_values(["taken_at", "snapshot_id"], kind="stable")
    out = out.reset_index(drop=True)
    out.attrs["skipped"] = skipped
    for item in skipped:
        warnings.warn(f"history store: skipped {item['path']}: {item['reason']}",
                      HistoryWarning, stacklevel=2)
    return out


def load_snapshot(store: str | os.PathLike | None, snapshot_id: str) -> Snapshot:
    """Read one snapshot back: its manifest and its frames.

    Parameters
    ----------
    store : path or None
        The store directory (None: :func:`default_history_dir`).
    snapshot_id : str
        The id as :func:`history` lists it, or a prefix of it that only one snapshot has.

    Returns
    -------
    Snapshot
        ``tags`` (:data:`TAGS_SCHEMA`, ``config`` as dicts: rows of one config share one dict),
        ``layers`` (:data:`LAYERS_SCHEMA`), ``totals``, ``repositories`` ...

    Raises
    ------
    HistoryError
        When no snapshot (or more than one) has that id, or its files cannot be read.
    """
    root = store_path(store)
    path = root / snapshot_id
    if not (path / MANIFEST).is_file():
        matches = ([p for p in root.iterdir() if p.name.startswith(snapshot_id)
                    and not p.name.startswith(_TMP_PREFIX)] if root.is_dir() and snapshot_id
                   else [])
        if len(matches) != 1:
            found = "several match" if matches else "none has that id"
            raise HistoryError(f"snapshot {snapshot_id!r} not found in history store "
                               f"{str(root)!r}: {found} (ri.history(store) lists them)")
        path = matches[0]
    record = _read_record(path)
    files = record.get("files") or {}
    try:
        tags = pd.read_parquet(path / files.get("tags", "tags.parquet"), engine="pyarrow")
        configs = pd.read_parquet(path / files.get("configs", "configs.parquet"),
                                  engine="pyarrow")
        layers = pd.read_parquet(path / files.get("layers", "layers.parquet"),
                                 engine="pyarrow")
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise HistoryError(f"snapshot {str(path)!r} cannot be read: {error}") from error
    parsed = {d: json.loads(text) for d, text in zip(configs["config_digest"],
                                                      configs["config"]) if isinstance(text, str)}
    tags["config"] = [parsed.get(d) if isinstance(d, str) else None
                      for d in tags["config_digest"].astype(object)]
    tags = coerce(tags, TAGS_SCHEMA)
    layers = coerce(layers, LAYERS_SCHEMA)
    return Snapshot(record["snapshot_id"], _utc(record["taken_at"]), record["registry"],
                    str(record.get("tool_version")), list(record.get("repositories") or []),
                    {name: (record.get("totals") or {}).get(name) for name in TOTALS},
                    tags, layers, path, record.get("scope") or CATALOG)


# ----------------------------------------------------------------------------------------------
# helpers


def _read_record(entry: Path) -> dict:
    """The validated ``snapshot.json`` of ``entry``; HistoryError says why it is not one."""
    if entry.name.startswith(_TMP_PREFIX):
        raise HistoryError("an unfinished snapshot (the write was interrupted); safe to delete")
    if not entry.is_dir():
        raise HistoryError("not a snapshot (a file; snapshots are directories)")
    try:
        record = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"not a snapshot (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise HistoryError(f"unreadable {MANIFEST}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise HistoryError(f"format {found!r} is not {FORMAT!r} (written by another tool or "
                           "version)")
    for key in ("snapshot_id", "taken_at", "registry"):
        if not isinstance(record.get(key), str):
            raise HistoryError(f"{MANIFEST} has no {key!r}")
    if record["snapshot_id"] != entry.name:
        raise HistoryError(f"{MANIFEST} names snapshot {record['snapshot_id']!r}, not the "
                           "directory's name")
    if pd.isna(pd.to_datetime(record["taken_at"], utc=True, errors="coerce")):
        raise HistoryError(f"taken_at {record['taken_at']!r} is not a time")
    return record


def _same_registry(stored: str, wanted: str) -> bool:
    if stored == wanted:
        return True
    strip = (lambda url: url.split("://", 1)[-1].rstrip("/"))  # noqa: E731
    return "://" not in wanted and strip(stored) == strip(wanted)


def _configs_table(tags: pd.DataFrame) -> pd.DataFrame:
    seen: dict[str, str] = {}
    for digest, config in zip(tags["config_digest"].astype(object), tags["config"]):
        if isinstance(digest, str) and digest not in seen and isinstance(config,
                                                                          (Mapping, list)):
            if isinstance(config, Mapping) and not isinstance(config, dict):
                config = config.to_dict()  # an ImageConfig: its bytes read back once
            seen[digest] = json.dumps(config, sort_keys=True, separators=(",", ":"))
    frame = pd.DataFrame({"config_digest": list(seen), "config": list(seen.values())})
    return coerce(frame, _CONFIGS_SCHEMA) if seen else empty(_CONFIGS_SCHEMA)


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk (best effort where the OS does not allow it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{stamp.nanosecond:03d}Z"


def _int_or_none(value: object) -> int | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return int(value)


def _utc(value: object) -> pd.Timestamp:
    try:
        return utc(value)
    except ValueError as error:
        raise HistoryError(str(error)) from None
