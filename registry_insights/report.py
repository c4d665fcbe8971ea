"""The capacity report: CSV files (and a printed summary) from one walk of a registry.

Files written to the output directory:

- ``tags.csv``: one row per (repository, tag, platform), the tags frame's columns; ``config`` as
  compact JSON, times ISO 8601 UTC (``...Z``), sizes integer bytes.
- ``repositories.csv``: per repository ``tags``, ``manifests``, ``logical_bytes``,
  ``unique_bytes``, ``exclusive_bytes``, ``shared_bytes`` and unique bytes by kind, then the
  registry-wide row ``(total)`` whose ``unique_bytes`` counts every blob once: what the registry
  stores (see :func:`registry_insights.analysis.storage_summary`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .analysis import TOTAL, storage_summary
from .inventory import Inventory
from .units import format_bytes


@dataclass
class Report:
    """What :func:`write_report` wrote, and the frames behind it."""

    directory: Path
    files: dict[str, Path]
    tags: pd.DataFrame = field(repr=False)
    layers: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)

    @property
    def unique_bytes(self) -> int:
        """Registry-wide bytes of distinct blobs."""
        return int(self.summary.loc[self.summary["repository"] == TOTAL, "unique_bytes"].iloc[0])


def _iso_utc(value) -> str | None:
    """``2024-01-02T03:04:05Z``, with the fraction (to nanoseconds) only when there is one."""
    if pd.isna(value):
        return None
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = value.microsecond * 1000 + value.nanosecond
    return f"{text}.{fraction:09d}".rstrip("0") + "Z" if fraction else text + "Z"


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for CSV: dicts as compact JSON, UTC times as ISO 8601 with ``Z``, Int64 as ints."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = values.map(_iso_utc).astype("string")
        elif values.dtype == object and values.map(lambda v: isinstance(v, (dict, list))).any():
            out[column] = values.map(
                lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"))
                if isinstance(v, (dict, list)) else v
            )
    return out


def write_report(inventory: Inventory, directory, attestations_in_storage: bool = True
                 ) -> Report:
    """Write ``tags.csv`` and ``repositories.csv`` for ``inventory`` into ``directory``.

    Storage counts the blobs of attestations (they occupy the registry's disk); the tag rows of
    ``tags.csv`` are images only.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    all_tags = inventory.tags(attestations=attestations_in_storage)
    layers = inventory.layers(attestations=attestations_in_storage)
    tags = all_tags[all_tags["is_image"].fillna(True).astype(bool)].reset_index(drop=True)
    summary = storage_summary(all_tags, layers, inventory.repositories)
    files = {"tags": directory / "tags.csv", "repositories": directory / "repositories.csv"}
    csv_ready(tags).to_csv(files["tags"], index=False)
    summary.to_csv(files["repositories"], index=False)
    return Report(directory, files, tags, layers, summary)


def summary_text(report: Report) -> str:
    """A short table for the terminal: per repository and the registry total."""
    s = report.summary
    lines = [f"{'repository':32} {'tags':>6} {'logical':>11} {'unique':>11} {'exclusive':>11}"]
    for row in s.itertuples():
        lines.append(
            f"{row.repository[:32]:32} {row.tags:>6} {format_bytes(row.logical_bytes):>11}"
            f" {format_bytes(row.unique_bytes):>11} {format_bytes(row.exclusive_bytes):>11}"
        )
    total = s[s["repository"] == TOTAL].iloc[0]
    lines.append("")
    lines.append(
        f"stored (unique blobs): {format_bytes(total.unique_bytes)} = layers "
        f"{format_bytes(total.layer_bytes)} + configs {format_bytes(total.config_bytes)} + "
        f"manifests {format_bytes(total.manifest_bytes)}; naive per-tag sum: "
        f"{format_bytes(total.logical_bytes)} (binary units)"
    )
    lines.append("files: " + ", ".join(str(p) for p in report.files.values()))
    return "\n".join(lines)
