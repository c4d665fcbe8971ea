"""The capacity report: CSV files, PNG plots and one self-contained HTML page from one walk.

Files written to the output directory (sizes are integer bytes, times ISO 8601 UTC with ``Z``):

- ``tags.csv``: one row per (repository, tag, platform), the tags frame's columns without
  ``config`` (image configs carry ``Env`` and build arguments, where secrets hide: a report is
  meant to be shared), times ISO 8601 UTC (``...Z``), sizes integer bytes.
- ``repositories.csv``: per repository ``tags``, ``manifests``, ``logical_bytes``,
  ``unique_bytes``, ``exclusive_bytes``, ``shared_bytes`` and unique bytes by kind, then the
  registry-wide row ``(total)`` whose ``unique_bytes`` counts every blob once: what the registry
  stores (see :func:`registry_insights.analysis.storage_summary`).
- ``growth.csv``: :func:`registry_insights.trends.growth` per month; the bytes of images of
  unknown date are not on the timeline (the last ``cumulative_bytes`` plus
  ``Report.growth.attrs["undated_bytes"]`` is the registry total).
- ``forecast.csv``: :func:`registry_insights.trends.forecast` (history, then forecast rows),
  fitted bytes rounded to whole bytes.
- ``stale_tags.csv``: :func:`registry_insights.trends.stale_tags` without ``config``, oldest
  first, with ``age_days`` at the report's ``now``.
- ``shared_layers.csv``: :func:`registry_insights.trends.shared_layers`, the layers referenced
  by two or more repositories, by bytes saved.
- Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return: registry values such as a config's ``os``) get a single
  quote in front (OWASP's advice against CSV injection); ``raw_csv=True`` keeps them as they
  are, for programs. Numbers are never changed. Lines end in CRLF (RFC 4180), so a cell
  holding a line break is always quoted and never starts a row of its own.
- With a history store (``history=``; the CLI's default): ``history.csv`` (the registry's
  snapshots, :func:`registry_insights.history`), ``changes_tags.csv`` and
  ``changes_repositories.csv`` (:func:`registry_insights.diff` to the previous snapshot) and,
  from 3 snapshots on, ``measured_growth.csv`` (growth and forecast are then measured).
- With ``storage=`` (a Distribution filesystem storage root): ``disk.csv``
  (:func:`registry_insights.disk_summary`: blob bytes on disk, the garbage collection
  backlog, the difference to the API's view).
- With ``plots=True``: ``storage_by_repository.png``, ``growth_forecast.png``,
  ``tag_age_histogram.png``, ``shared_layers.png``, ``size_distribution.png`` (drawn on
  :class:`matplotlib.figure.Figure` objects rendered by Agg; the pyplot backend is left alone).
- With ``html=True``: ``report.html``, one page with those plots embedded as ``data:`` URIs and
  the summary tables; it loads nothing from anywhere (a Content-Security-Policy says so), runs
  no script, and every string from the registry is HTML-escaped. Mail it as it is.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape as _escape_html
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..analysis import trends
from ..analysis.storage import TOTAL, content_kinds, storage_summary
from ..frames.inventory import Inventory
from ..frames.schema import ERRORS_SCHEMA, coerce, empty, image_rows, utc
from ..units import format_bytes, parse_bytes, short_digest

#: The plots of the report: file stem -> title in the HTML page.
PLOTS: dict[str, str] = {
    "storage_by_repository": "Storage by repository",
    "growth_forecast": "Growth and forecast",
    "tag_age_histogram": "Tag age",
    "shared_layers": "Most shared layers",
    "size_distribution": "Image size distribution",
}
#: Rows shown in the HTML page's candidate tables (the CSVs have every row).
TOP_CANDIDATES = 10
OLDEST_STALE = 20
TOP_SHARED = 10
_DPI = 110


@dataclass
class Report:
    """What :func:`write_report` wrote, and the frames behind it.

    ``tags`` are the image rows; ``layers`` and ``summary`` count attestations' blobs when the
    report was asked to (the default). ``growth``, ``forecast``, ``stale``, ``ages`` and
    ``shared`` are the :mod:`~registry_insights.trends` frames (with their ``attrs``); ``now``
    is the UTC time ages are measured at; ``capacity`` is in bytes (or None).
    """

    directory: Path
    files: dict[str, Path]
    tags: pd.DataFrame = field(repr=False)
    layers: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    registry: str = ""
    now: pd.Timestamp | None = None
    capacity: int | None = None
    stale_after: pd.Timedelta = field(default_factory=lambda: pd.Timedelta("180D"))
    growth: pd.DataFrame | None = field(default=None, repr=False)
    forecast: pd.DataFrame | None = field(default=None, repr=False)
    stale: pd.DataFrame | None = field(default=None, repr=False)
    ages: pd.DataFrame | None = field(default=None, repr=False)
    shared: pd.DataFrame | None = field(default=None, repr=False)
    unknown_date_rows: int = 0
    scenarios: pd.DataFrame | None = field(default=None, repr=False)
    #: "snapshots" (growth and forecast measured at 3 or more snapshots) or "build dates".
    growth_source: str = "build dates"
    #: Where the growth figure comes from and, from build dates, why it is weaker.
    growth_note: str = ""
    #: The review history (snapshots, previous snapshot, diff), when a history store is used.
    review: object = field(default=None, repr=False)
    #: :func:`~registry_insights.analysis.disk.disk_summary`'s row, when the storage was read.
    disk: pd.DataFrame | None = field(default=None, repr=False)
    #: Why no snapshot was saved although one was asked for (the default store unwritable).
    history_error: str = ""
    #: What the walk could not read (``Inventory.errors``; ERRORS_SCHEMA), empty if all was.
    errors: pd.DataFrame | None = field(default=None, repr=False)
    #: How each kind of content is counted (:func:`~registry_insights.analysis.storage.
    #: content_kinds`).
    kinds: pd.DataFrame | None = field(default=None, repr=False)

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


def _plain(value):
    """A mapping (an :class:`~registry_insights.registry.models.ImageConfig`) as a dict."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return value.to_dict() if hasattr(value, "to_dict") else dict(value)
    return value


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"): a cell of text
#: starting with one of these gets a single quote in front, so it stays text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """``value`` made safe for a spreadsheet cell: text starting with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a single quote in front (OWASP's advice against CSV
    injection); anything else, numbers included, is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_ready(frame: pd.DataFrame, raw: bool = False) -> pd.DataFrame:
    """A copy for CSV: dicts as compact JSON, UTC times as ISO 8601 with ``Z``, Int64 as ints.

    Text that a spreadsheet would run as a formula (a config's ``os`` of ``=HYPERLINK(...)``,
    a platform of ``+cmd|...``, ``@SUM(...)``) is neutralised by :func:`csv_safe` in every text
    column; numbers stay numbers (a negative count is not text). Every CSV this package writes
    goes through here. ``raw=True`` keeps the values exactly as the registry gave them, for
    programs that read the CSV (never open such a file in a spreadsheet).
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = values.map(_iso_utc).astype("string")
        elif values.dtype == object and values.map(
                lambda v: isinstance(v, (Mapping, list))).any():
            out[column] = values.map(
                lambda v: json.dumps(_plain(v), sort_keys=True, separators=(",", ":"))
                if isinstance(v, (Mapping, list)) else v
            )
        if raw:
            continue
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            out[column] = values.map(csv_safe, na_action="ignore")
    return out


#: Line ends of every CSV written (RFC 4180): with CRLF, the csv writer quotes every cell that
#: holds a CR or LF; with LF alone it leaves a bare CR unquoted, which a spreadsheet reads as a
#: new row whose first cell (``=1+1``) would run as a formula.
CSV_LINE_END = "\r\n"


def csv_text(frame: pd.DataFrame, raw: bool = False) -> str:
    """``frame`` as CSV text through :func:`csv_ready` (no index, CRLF line ends)."""
    return csv_ready(frame, raw=raw).to_csv(index=False, lineterminator=CSV_LINE_END)


def write_report(inventory: Inventory, directory, attestations_in_storage: bool = True, *,
                 plots: bool = True, html: bool = True, capacity: int | str | None = None,
                 now: object = None, stale_after: str | pd.Timedelta = "180D",
                 horizon: str | pd.Timedelta = "365D", freq: str = "MS",
                 history: str | os.PathLike | bool | None = None,
                 storage: str | os.PathLike | None = None,
                 taken_at: object = None, partial: bool = False,
                 raw_csv: bool = False) -> Report:
    """Write the report of ``inventory`` into ``directory`` (see the module docstring).

    Storage counts the blobs of attestations (they occupy the registry's disk); the tag rows of
    ``tags.csv`` and the ages are images only.

    Parameters
    ----------
    inventory : Inventory
        One walk of the registry (:func:`~registry_insights.inventory.fetch_inventory`).
    directory : path
        Created if missing; files of the same names are replaced. Every file is written
        first into a staging directory inside it, then moved into place (``report.html``
        last): a report that fails or is stopped before then leaves the previous one as it
        was. Files an earlier report wrote that this one does not (``history.csv`` without
        a history store, say) are left alone.
    attestations_in_storage : bool, default True
        Count attestations' blobs in storage and growth.
    plots, html : bool, default True
        Write the PNG plots; write ``report.html`` (which embeds the plots, drawn for it even
        with ``plots=False``).
    capacity : int or str, optional
        Storage capacity in bytes or as ``"500GiB"`` / ``"2TB"``: the forecast says when the
        trend reaches it.
    now : Timestamp, datetime or str, optional
        The time ages are measured at (naive means UTC); default the current UTC time.
    stale_after : str or Timedelta, default "180D"
        A tag built longer ago than this is stale.
    horizon : str or Timedelta, default "365D"
        How far past the last observation the forecast runs.
    freq : str, default "MS"
        The growth periods (a pandas offset alias; "MS" is calendar months).
    history : path or bool, optional
        A history store: the walk is saved there as a snapshot
        (:func:`~registry_insights.snapshot`), the report shows what changed since the
        previous snapshot of the registry, and with 3 or more snapshots growth and the forecast
        are measured from them. True: the default store (the user data directory). None or
        False (default): no snapshot, growth from build dates.
    storage : path, optional
        The registry's filesystem storage root (CNCF Distribution, read-only): the report adds
        what the disk holds and what garbage collection would free now.
    taken_at : Timestamp, datetime or str, optional
        The snapshot's time; default now (UTC).
    partial : bool, default False
        The inventory holds some repositories only: its snapshot is compared only with
        snapshots of the same repositories.
    raw_csv : bool, default False
        Write text cells exactly as the registry gave them; by default a cell a spreadsheet
        would run as a formula is neutralised (see :func:`csv_ready`).

    Raises
    ------
    ValueError
        When ``capacity`` is not a size, or a duration or ``freq`` is invalid.
    HistoryError, StorageError
        When ``history`` is not a directory, or ``storage`` not a Distribution storage.
    """
    from ..analysis.disk import disk_summary
    from ..frames.disk import read_storage

    contents = read_storage(storage) if storage is not None else None
    review, history_error = _review(inventory, history, taken_at, contents, partial)
    disk = None if contents is None else disk_summary(contents, _stored_bytes(inventory, review))
    return report_from_frames(
        inventory.tags(attestations=attestations_in_storage),
        inventory.layers(attestations=attestations_in_storage), directory,
        repositories=inventory.repositories, registry=inventory.registry, plots=plots,
        html=html, capacity=capacity, now=now, stale_after=stale_after, horizon=horizon,
        freq=freq, review=review, disk=disk, history_error=history_error,
        raw_csv=raw_csv, errors=inventory.errors)


def _review(inventory: Inventory, history, taken_at, contents, partial: bool):
    """Save the snapshot and compare it with the previous one: ``(review or None, a note
    when the default store could not be written)``."""
    from .history import review_history, snapshot

    if history is None or history is False:
        return None, ""
    store = None if history is True else history
    try:
        current = snapshot(inventory, store, taken_at=taken_at, storage=contents,
                           partial=partial)
    except OSError as error:
        if history is not True:  # a store the caller named: say so, loudly
            raise
        # the default store (user data directory) cannot be written: report without it
        return None, (f"no snapshot saved: the default history store cannot be written "
                      f"({error.strerror or error}: {error.filename or ''}); give --history DIR")
    return review_history(store, current), ""


def _stored_bytes(inventory: Inventory, review) -> int:
    """What the registry stores by the API's view (the snapshot's total, else computed)."""
    totals = review.current.totals if review is not None else None
    if totals and totals.get("stored_bytes") is not None:
        return totals["stored_bytes"]
    from .history import totals_of

    return totals_of(inventory.tags(attestations=True), inventory.layers(attestations=True),
                     inventory.repositories)["stored_bytes"]


def report_from_frames(tags: pd.DataFrame, layers: pd.DataFrame, directory, *,
                       repositories: Iterable[str] | None = None, registry: str = "",
                       plots: bool = True, html: bool = True,
                       capacity: int | str | None = None, now: object = None,
                       stale_after: str | pd.Timedelta = "180D",
                       horizon: str | pd.Timedelta = "365D", freq: str = "MS",
                       review=None, disk: pd.DataFrame | None = None,
                       history_error: str = "", raw_csv: bool = False,
                       errors: pd.DataFrame | None = None) -> Report:
    """:func:`write_report` from a tags and a layers frame (attestation rows included or not).

    ``repositories`` are listed even without tags; ``registry`` names the registry in the page.
    ``review`` (:class:`~registry_insights.report.history.ReviewHistory`) adds "since the last
    review" and, with 3 or more snapshots, measured growth; ``disk``
    (:func:`~registry_insights.analysis.disk.disk_summary`) adds what the disk holds.
    ``errors`` (``Inventory.errors``) is what the walk could not read: ``errors.csv`` and
    the page's "Could not read" section list it.
    """
    capacity = None if capacity is None else parse_bytes(capacity)
    now = utc(now)
    stale_after = _duration(stale_after, "stale_after")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    images = image_rows(tags).reset_index(drop=True)
    summary = storage_summary(tags, layers, repositories)
    grown = trends.growth(tags, layers, freq=freq)
    source, note, fitted = _growth_and_forecast(grown, review, horizon, capacity)
    stale = trends.stale_tags(images, older_than=stale_after, now=now)
    ages = trends.age_breakdown(images, now=now)
    unknown = int(trends.tag_ages(images, now)["age_days"].isna().sum())
    shared = trends.shared_layers(layers, top=None)
    shared = shared[shared["repositories"] > 1].reset_index(drop=True)
    scenarios = cleanup_scenarios(tags, layers, now=now)
    errors = coerce(errors, ERRORS_SCHEMA) if errors is not None else empty(ERRORS_SCHEMA)
    report = Report(directory, {}, images, layers, summary, registry=str(registry or ""),
                    now=now, capacity=capacity, stale_after=stale_after, growth=grown,
                    forecast=fitted, stale=stale, ages=ages, shared=shared,
                    unknown_date_rows=unknown, scenarios=scenarios, growth_source=source,
                    growth_note=note, review=review, disk=disk,
                    history_error=history_error, errors=errors,
                    kinds=content_kinds(tags, layers))

    contents: dict[str, bytes] = {}  # file name -> bytes, in the order they are put in place
    for name, frame in [
        ("tags", images.drop(columns=["config"])),
        ("repositories", summary),
        ("growth", grown),
        ("forecast", _whole_bytes(fitted, ["bytes", "trend", "lower", "upper"])),
        ("stale_tags", stale.drop(columns=["config"])),
        ("shared_layers", shared),
        ("cleanup_scenarios", scenarios),
        *_history_csvs(review, disk),
        ("errors", errors),
        ("content_kinds", report.kinds),
    ]:
        report.files[name] = directory / f"{name}.csv"
        contents[f"{name}.csv"] = csv_text(frame, raw=raw_csv).encode("utf-8")
    pngs = render_plots(report) if plots or html else {}
    if plots:
        for name, data in pngs.items():
            report.files[f"{name}.png"] = directory / f"{name}.png"
            contents[f"{name}.png"] = data
    if html:
        report.files["html"] = directory / "report.html"
        contents["report.html"] = render_html(report, pngs).encode("utf-8")
    _put_in_place(directory, contents)
    return report


def _put_in_place(directory: Path, contents: dict[str, bytes]) -> None:
    """Write every file of a report into a staging directory inside ``directory``, then move
    each into place with ``os.replace`` (one step per file on POSIX file systems), in the
    order given (``report.html`` last). A report that fails or is stopped before the moves
    leaves the previous files as they were; the staging directory is removed (unless the
    process is killed outright)."""
    import shutil
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=directory))
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
        for name in contents:
            os.replace(staging / name, directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _growth_and_forecast(grown: pd.DataFrame, review, horizon, capacity):
    """(source, note, forecast): measured at the snapshots when there are enough, else from
    the build dates, with the reason it is weaker."""
    from ..analysis.history import MIN_SNAPSHOTS

    if review is not None and review.growth is not None:
        measured = review.growth
        fitted = trends.forecast(measured, horizon=horizon, capacity=capacity)
        first, last = measured["period_end"].iloc[0], measured["period_end"].iloc[-1]
        note = (f"Growth and forecast measured from the stored bytes of {len(measured)} "
                f"snapshots ({_when(first)} to {_when(last)}): deletions, garbage "
                "collection and pushes of old images are included.")
        fitted.attrs["source"] = "snapshots"
        return "snapshots", note, fitted
    fitted = trends.forecast(grown, horizon=horizon, capacity=capacity)
    count = 0 if review is None else len(review.history)
    why = ("no history store used" if review is None
           else f"{count} snapshot{'s' if count != 1 else ''} of this registry so far, "
                f"{MIN_SNAPSHOTS} are needed")
    note = (f"Growth and forecast rebuilt from the build dates of the images still in the "
            f"registry ({why}). That figure is weaker: images deleted since are missing from "
            "the past, cleanups and garbage collection are not seen, and a build date is not a "
            "push date. Every report saves a snapshot; from the third one on, growth is "
            "measured.")
    fitted.attrs["source"] = "build dates"
    return "build dates", note, fitted


def _history_csvs(review, disk) -> list[tuple[str, pd.DataFrame]]:
    out = []
    if review is not None:
        out.append(("history", review.history.drop(columns=["path"])))
        if review.growth is not None:
            out.append(("measured_growth", review.growth))
        if review.changes is not None:
            out.append(("changes_tags", review.changes.tags))
            out.append(("changes_repositories", review.changes.repositories))
    if disk is not None:
        out.append(("disk", disk))
    return out


#: The cleanup policies the report prices: (label, retention_plan keyword arguments).
SCENARIOS: tuple[tuple[str, dict], ...] = (
    ("keep the 10 newest digests per repository", {"keep_last": 10}),
    ("keep the 5 newest digests per repository", {"keep_last": 5}),
    ("delete tags older than 180 days, keep the 3 newest", {"keep_last": 3,
                                                             "older_than": "180D"}),
)


def cleanup_scenarios(tags: pd.DataFrame, layers: pd.DataFrame, now: object = None,
                      scenarios=SCENARIOS) -> pd.DataFrame:
    """What common cleanup policies would free: one row per policy.

    Each policy is a :func:`~registry_insights.retention.retention_plan` (``latest``
    protected, a digest a kept tag uses never deleted) priced by
    :func:`~registry_insights.reclaim.reclaimable`: ``reclaimable_bytes`` is what the registry's
    garbage collection would free after the deletes (distinct blobs no remaining manifest
    references), ``logical_bytes`` the per-tag sum of the deleted tags, for comparison.

    Returns
    -------
    DataFrame
        Columns ``policy`` (string), ``deleted_tags``, ``deleted_manifests``, ``logical_bytes``,
        ``reclaimable_bytes`` (``Int64``; bytes).
    """
    from ..analysis.reclaim import reclaimable
    from ..analysis.retention import retention_plan

    rows = []
    for label, options in scenarios:
        plan = retention_plan(tags, now=now, **options)
        total = reclaimable(tags, layers, plan)
        total = total[total["repository"] == TOTAL].iloc[0]
        rows.append({"policy": label, "deleted_tags": total["deleted_tags"],
                     "deleted_manifests": total["deleted_manifests"],
                     "logical_bytes": total["logical_bytes"],
                     "reclaimable_bytes": total["reclaimable_bytes"]})
    frame = pd.DataFrame(rows, columns=["policy", "deleted_tags", "deleted_manifests",
                                        "logical_bytes", "reclaimable_bytes"])
    return frame.astype({"policy": "string", "deleted_tags": "Int64",
                         "deleted_manifests": "Int64", "logical_bytes": "Int64",
                         "reclaimable_bytes": "Int64"})




def _duration(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}={value!r} is not a duration: give e.g. '180D'") from error
    if pd.isna(delta) or delta <= pd.Timedelta(0):
        raise ValueError(f"{name}={value!r}: give a positive duration such as '180D'")
    return delta


def _whole_bytes(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = out[column].round().astype("Int64")
    return out


# ----------------------------------------------------------------------------------------------
# plots


def render_plots(report: Report) -> dict[str, bytes]:
    """The report's plots as PNG bytes, by :data:`PLOTS` name.

    Each is drawn on its own :class:`matplotlib.figure.Figure` and rendered by Agg through
    ``savefig``: no pyplot, no global backend change, nothing left open.
    """
    from matplotlib.figure import Figure

    from ..ui import plots

    shown_shared = report.shared.head(20)
    repositories = int((report.summary["repository"] != TOTAL).sum())
    draw: dict[str, tuple[tuple[float, float], Callable]] = {
        "storage_by_repository": (
            (9.0, _bar_height(min(repositories, 15))),
            lambda ax: plots.storage_by_repository(report.summary, ax=ax)),
        "growth_forecast": ((9.0, 4.6), lambda ax: _growth_plot(plots, report, ax)),
        "tag_age_histogram": (
            (6.0, 3.9), lambda ax: plots.tag_age_histogram(report.tags, ax=ax, now=report.now)),
        "shared_layers": (
            (9.0, _bar_height(len(shown_shared))),
            lambda ax: plots.shared_layers(shown_shared, ax=ax)),
        "size_distribution": (
            (9.0, 3.6), lambda ax: plots.size_distribution(report.tags, ax=ax)),
    }
    out = {}
    for name, (size, plot) in draw.items():
        figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
        plot(figure.add_subplot())
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
        out[name] = buffer.getvalue()
    return out


# ----------------------------------------------------------------------------------------------
# HTML


def _growth_plot(plots, report: Report, ax):
    """:func:`plots.growth_forecast`, with room above a capacity line for it and the legend.

    The legend moves to the lower right, which a rising trend leaves empty.
    """
    ax = plots.growth_forecast(report.forecast, ax=ax)
    if report.capacity is not None:
        low, high = ax.get_ylim()
        ax.set_ylim(low, max(high, low + (report.capacity - low) * 1.08))
    if ax.get_legend() is not None and report.forecast.attrs.get("slope_bytes_per_day", 0) > 0:
        ax.legend(loc="lower right")
    return ax


def _bar_height(bars: int) -> float:
    """Figure height (inches) for horizontal bars: room for labels, not slabs."""
    return float(min(max(1.3 + 0.32 * bars, 2.6), 7.0))


def escape(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes (None/NA as "")."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.api.types.is_scalar(value)
                         and pd.isna(value)):
        return ""
    return _escape_html(str(value), quote=True)


@dataclass(frozen=True)
class _Cell:
    text: object
    numeric: bool = False
    title: object = None
    ident: str | None = None


def _num(value: object, title: object = None, ident: str | None = None) -> _Cell:
    return _Cell(value, True, title, ident)


def _bytes_cells(value: object) -> list[_Cell]:
    """Human (binary units) and exact integer bytes, as two numeric cells."""
    if value is None or pd.isna(value):
        return [_num("n/a"), _num("")]
    return [_num(format_bytes(value)), _num(int(value))]


def _table(headers: Sequence[str | tuple[str, bool]], rows: Iterable[Sequence[object]],
           ident: str | None = None, caption: str | None = None,
           row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; every header and cell is escaped. Headers ``(text, numeric)``."""
    heads = [h if isinstance(h, tuple) else (h, False) for h in headers]
    out = [f'<table id="{escape(ident)}">' if ident else "<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    numeric_class = ' class="num"'
    out.append("<thead><tr>" + "".join(
        f'<th scope="col"{numeric_class if numeric else ""}>{escape(text)}</th>'
        for text, numeric in heads) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and i < len(row_classes) else ""
        cells = []
        for value in row:
            cell = value if isinstance(value, _Cell) else _Cell(value)
            attrs = ' class="num"' if cell.numeric else ""
            if cell.title is not None:
                attrs += f' title="{escape(cell.title)}"'
            if cell.ident:
                attrs += f' id="{escape(cell.ident)}"'
            cells.append(f"<td{attrs}>{escape(cell.text)}</td>")
        out.append((f'<tr class="{escape(cls)}">' if cls else "<tr>") + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _when(value: object, time: bool = True) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC" if time else "%Y-%m-%d")


def _percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f} %" if whole else "n/a"


def _figure(name: str, pngs: dict[str, bytes], alt: str) -> str:
    if name not in pngs:
        return ""
    data = base64.b64encode(pngs[name]).decode("ascii")
    return (f'<figure><img id="plot-{escape(name)}" alt="{escape(alt)}" '
            f'src="data:image/png;base64,{data}"></figure>')


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", Arial,
       sans-serif; color: #1d232a; background: #fff; margin: 0; font-size: 15px;
       line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #d7dde3; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p { margin: 6px 0; }
.meta { color: #4c5661; margin: 0 0 14px; }
.note { color: #4c5661; font-size: 13.5px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 16px 0 4px; }
.card { border: 1px solid #d7dde3; border-radius: 6px; padding: 10px 14px; background: #f7f9fb; }
.card .label { font-size: 13px; color: #4c5661; }
.card .value { font-size: 21px; font-weight: 600; }
.card .exact { font-size: 12.5px; color: #4c5661; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13.5px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e8ec; text-align: left;
         vertical-align: top; }
th { background: #eef2f5; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f9fafb; }
tr.total td { font-weight: 600; border-top: 2px solid #9aa5b1; background: #eef2f5; }
figure { margin: 10px 0 16px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e8ec; }
.pair { display: flex; flex-wrap: wrap; gap: 6px 22px; align-items: flex-start; }
code { font-size: 12.5px; }
footer { margin-top: 30px; color: #4c5661; font-size: 13px; }
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")


def render_html(report: Report, pngs: dict[str, bytes] | None = None) -> str:
    """The report page: summary tables and the ``pngs`` (from :func:`render_plots`) inline.

    Self-contained: no external resource, no script; a Content-Security-Policy forbids loading
    anything but ``data:`` images. Every string (repository names, tags, digests, the registry
    URL) is HTML-escaped. Bytes are shown in binary units (1 KiB = 1024 B) and as exact
    integers; times are UTC.
    """
    pngs = pngs or {}
    s = report.summary
    per_repo = s[s["repository"] != TOTAL]
    total = s[s["repository"] == TOTAL].iloc[0]
    unique = int(total["unique_bytes"])
    fc = report.forecast
    attrs = fc.attrs if fc is not None else {}
    grown = report.growth
    stale = report.stale
    now = report.now
    generated = pd.Timestamp.now(tz="UTC")
    stale_days = int(report.stale_after / pd.Timedelta(days=1))
    registry = report.registry or "registry"

    c = SimpleNamespace(pngs=pngs, s=s, per_repo=per_repo, total=total, unique=unique,
                        fc=fc, attrs=attrs, grown=grown, stale=stale, now=now,
                        generated=generated, stale_days=stale_days, registry=registry,
                        report=report)
    parts = _head_html(c)
    for section in (_storage_html, _growth_html, _ages_html, _reclaimable_html,
                    _sharing_html):
        parts.extend(section(c))
    return "\n".join(p for p in parts if p)


def _head_html(c: SimpleNamespace) -> list[str]:
    """The page's head, the key figures, what changed since the last review and the disk."""
    (per_repo, total, unique, attrs, stale, now, generated, stale_days, registry, report) = (
        c.per_repo, c.total, c.unique, c.attrs, c.stale, c.now, c.generated, c.stale_days,
        c.registry, c.report)
    slope = attrs.get("slope_bytes_per_day", np.nan)
    cards = [
        ("Stored (unique blobs)", format_bytes(unique), f"{unique} bytes", "total-unique-bytes"),
        ("Naive per-tag sum", format_bytes(total["logical_bytes"]),
         f"{int(total['logical_bytes'])} bytes", None),
        ("Repositories / tags", f"{len(per_repo)} / {int(total['tags'])}",
         f"{len(report.tags)} image rows (tag x platform)", None),
        ("Growth (measured at snapshots)" if report.growth_source == "snapshots"
         else "Growth (from build dates)",
         f"{format_bytes(slope * 30)} / 30 days" if np.isfinite(slope)
         else "n/a", f"{_round(slope)} bytes/day", None),
        (f"Projected {_when(attrs.get('horizon_end'), time=False)}",
         format_bytes(attrs.get("projected_bytes")), f"{_round(attrs.get('projected_bytes'))} "
         "bytes", None),
        ("Capacity reached", capacity_status(report),
         f"capacity {format_bytes(report.capacity)} = {report.capacity} bytes"
         if report.capacity is not None else "no capacity given (--capacity)", None),
        (f"Stale tags (> {stale_days} days)", f"{_distinct_tags(stale)}",
         f"{len(stale)} image rows; {report.unknown_date_rows} of unknown date apart", None),
        ("Largest reclaimable repository",
         format_bytes(per_repo["exclusive_bytes"].max()) if len(per_repo) else "n/a",
         _top_exclusive_name(per_repo), None),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Registry capacity report: {escape(registry)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Registry capacity report: {escape(registry)}</h1>",
        f'<p class="meta">Ages as of <strong id="as-of">{escape(_when(now))}</strong>; '
        f"generated {escape(_when(generated))}. All times are UTC. Sizes in binary units "
        "(1 KiB = 1024 bytes, MiB, GiB, TiB), with exact integer bytes beside them. "
        "Stored bytes count each blob (layer, config, manifest) once, as the registry stores "
        "it; garbage collection frees only blobs no remaining manifest references.</p>",
        '<div class="cards" id="key-figures">',
    ]
    for label, value, exact, ident in cards:
        value_html = (f'<span id="{ident}" data-bytes="{unique}">{escape(value)}</span>'
                      if ident else escape(value))
        parts.append(f'<div class="card"><div class="label">{escape(label)}</div>'
                     f'<div class="value">{value_html}</div>'
                     f'<div class="exact">{escape(exact)}</div></div>')
    parts.append("</div>")
    parts.extend(_since_last_review_html(report))
    parts.extend(_disk_html(report))
    return parts


def _storage_html(c: SimpleNamespace) -> list[str]:
    """Storage by repository, by kind of blob, by kind of content; what could not be read."""
    pngs, s, total, unique, report = c.pngs, c.s, c.total, c.unique, c.report
    parts: list[str] = []
    # storage ---------------------------------------------------------------------------------
    parts.append("<h2>Storage by repository</h2>")
    parts.append(_figure("storage_by_repository", pngs,
                         "Horizontal bars of exclusive and shared bytes per repository"))
    rows, classes = [], []
    for row in s.itertuples(index=False):
        rows.append([row.repository, _num(row.tags), _num(row.manifests),
                     *_bytes_cells(row.unique_bytes), *_bytes_cells(row.exclusive_bytes),
                     *_bytes_cells(row.shared_bytes), _num(format_bytes(row.logical_bytes),
                                                           title=f"{row.logical_bytes} bytes")])
        classes.append("total" if row.repository == TOTAL else "")
    parts.append(_table(
        ["repository", ("tags", True), ("manifests", True), ("unique", True),
         ("unique bytes", True), ("exclusive", True), ("exclusive bytes", True),
         ("shared", True), ("shared bytes", True), ("naive per-tag sum", True)],
        rows, ident="storage", row_classes=classes))
    parts.append(
        '<p class="note">unique: distinct blobs the repository references; exclusive: blobs no '
        "other repository references (what deleting the whole repository frees after garbage "
        f"collection); shared = unique - exclusive. On the {escape(TOTAL)} row, unique counts "
        "each blob once registry-wide and exclusive + shared = unique. The naive per-tag sum "
        "adds every tag's layers and overstates storage.</p>")
    parts.append("<h3>Registry total by kind of blob</h3>")
    kinds = [("layers", total["layer_bytes"]), ("configs", total["config_bytes"]),
             ("manifests and indexes", total["manifest_bytes"]), ("total", unique)]
    parts.append(_table(
        ["kind", ("size", True), ("bytes", True), ("share", True)],
        [[kind, *_bytes_cells(value), _num(_percent(value, unique))] for kind, value in kinds],
        ident="total-by-kind", row_classes=["", "", "", "total"]))

    kinds = report.kinds
    if kinds is not None and len(kinds):
        parts.append("<h3>How each kind of content is counted</h3>")
        parts.append(_table(
            ["kind", ("rows", True), ("tags", True), ("manifests", True), ("size", True),
             ("bytes", True), "counted"],
            [[r.kind, _num(r.rows), _num(r.tags), _num(r.manifests), *_bytes_cells(r.bytes),
              r.counted] for r in kinds.itertuples(index=False)], ident="content-kinds"))
    parts.append(_unread_section(report.errors))
    return parts


def _growth_html(c: SimpleNamespace) -> list[str]:
    """Growth and the forecast."""
    pngs, attrs, grown, report = c.pngs, c.attrs, c.grown, c.report
    parts: list[str] = []
    # growth and forecast ---------------------------------------------------------------------
    parts.append("<h2>Growth and forecast</h2>")
    parts.append(_figure("growth_forecast", pngs,
                         "Cumulative stored bytes over time with trend, band and capacity"))
    parts.append(_table(["", ("value", True), ("exact", True)], _forecast_rows(report),
                        ident="forecast", caption="Forecast"))
    parts.append(f'<p id="growth-source" data-source="{escape(report.growth_source)}">'
                 f"<strong>{escape(report.growth_note)}</strong></p>")
    parts.append(f'<p class="note">Model: {escape(attrs.get("model", "none"))}. Cumulative '
                 "bytes are placed at the end of their period (measured: at the snapshot's "
                 "time); the marked points are the observations.</p>")
    if grown is not None:
        growth_rows = [[_period_label(r.period_start, grown.attrs.get("freq")),
                        *_bytes_cells(r.new_bytes), *_bytes_cells(r.cumulative_bytes),
                        _num(r.tags_pushed), _num(r.images)]
                       for r in grown.itertuples(index=False)]
        parts.append(_table(
            ["period (UTC)", ("new", True), ("new bytes", True), ("stored at end", True),
             ("stored bytes", True), ("tags pushed", True), ("new images", True)],
            growth_rows, ident="growth",
            caption="Growth per period, by the build dates of the images still present"))
        undated = int(grown.attrs.get("undated_bytes", 0))
        last = int(grown["cumulative_bytes"].iloc[-1]) if len(grown) else 0
        parts.append(
            f'<p class="note">A blob is counted in the period of the earliest image using it '
            f"(build time from the image config). Blobs used only by images of unknown date "
            f"(missing, or before 1980 such as reproducible builds' 1970-01-01): "
            f'<span id="undated-bytes">{undated}</span> bytes ({escape(format_bytes(undated))}),'
            f" {int(grown.attrs.get('undated_rows', 0))} rows, not on the timeline; "
            f"{last} + {undated} = {last + undated} bytes stored.</p>")
    return parts


def _ages_html(c: SimpleNamespace) -> list[str]:
    """Tag ages and stale tags."""
    pngs, stale, now, stale_days, report = c.pngs, c.stale, c.now, c.stale_days, c.report
    parts: list[str] = []
    # ages and stale tags ---------------------------------------------------------------------
    parts.append(f"<h2>Tag age and stale tags (older than {stale_days} days)</h2>")
    parts.append('<div class="pair">')
    parts.append(_figure("tag_age_histogram", pngs, "Histogram of image ages in days"))
    if report.ages is not None:
        parts.append("<div>" + _table(
            ["age (build time)", ("image rows", True), ("naive size", True),
             ("naive bytes", True)],
            [[r.age, _num(r.rows), *_bytes_cells(r.layer_size)]
             for r in report.ages.itertuples(index=False)],
            ident="age-breakdown", caption=f"Image rows by age at {_when(now)}") + "</div>")
    parts.append("</div>")
    parts.append(
        f'<p id="stale-counts">Stale: <strong>{_distinct_tags(stale)}</strong> tags '
        f"({len(stale)} image rows, one per platform) in {stale['repository'].nunique()} "
        f"repositories were built more than {stale_days} days before {escape(_when(now))}. "
        f"<strong>{report.unknown_date_rows}</strong> image rows of unknown date (missing or "
        "before 1980, e.g. reproducible builds dated 1970-01-01) are counted apart, never as "
        "stale. Age is build age (the config's <code>created</code>), not push time.</p>")
    return parts


def _reclaimable_html(c: SimpleNamespace) -> list[str]:
    """The top reclaimable candidates."""
    per_repo, unique, stale, report = c.per_repo, c.unique, c.stale, c.report
    parts: list[str] = []
    # reclaimable -----------------------------------------------------------------------------
    parts.append("<h2>Top reclaimable candidates</h2>")
    if report.scenarios is not None and len(report.scenarios):
        parts.append(_table(
            ["cleanup policy", ("tags deleted", True), ("manifests deleted", True),
             ("GC frees", True), ("bytes", True), ("of stored", True),
             ("per-tag sum says", True)],
            [[r.policy, _num(r.deleted_tags), _num(r.deleted_manifests),
              *_bytes_cells(r.reclaimable_bytes), _num(_percent(r.reclaimable_bytes, unique)),
              _num(format_bytes(r.logical_bytes), title=f"{r.logical_bytes} bytes")]
             for r in report.scenarios.itertuples(index=False)],
            ident="cleanup-scenarios",
            caption="What common cleanup policies would free after garbage collection "
                    "(latest protected; a digest a kept tag uses is never deleted; plan and "
                    "apply one with 'registry-insights cleanup')"))
    ranked = per_repo[per_repo["exclusive_bytes"].fillna(0) > 0].sort_values(
        ["exclusive_bytes", "repository"], ascending=[False, True]).head(TOP_CANDIDATES)
    parts.append(_table(
        ["repository", ("tags", True), ("frees (exclusive)", True), ("bytes", True),
         ("of stored", True), ("stale tags", True)],
        [[r.repository, _num(r.tags), *_bytes_cells(r.exclusive_bytes),
          _num(_percent(r.exclusive_bytes, unique)),
          _num(_distinct_tags(stale[stale["repository"] == r.repository]))]
         for r in ranked.itertuples(index=False)],
        ident="reclaimable-repositories",
        caption=f"Repositories by what deleting them would free (top {TOP_CANDIDATES})"))
    oldest = stale.head(OLDEST_STALE)
    parts.append(_table(
        ["repository", "tag", "platform", "built (UTC)", ("age (days)", True),
         ("image size", True), "digest"],
        [[r.repository, r.tag, r.platform, _when(r.created_at), _num(f"{r.age_days:.0f}"),
          _num(format_bytes(r.layer_size), title=f"{r.layer_size} bytes"),
          _Cell(short_digest(r.digest), title=r.digest)]
         for r in oldest.itertuples(index=False)],
        ident="oldest-stale",
        caption=f"Oldest stale tags ({len(oldest)} of {len(stale)} rows; all in "
                "stale_tags.csv)"))
    parts.append(
        '<p class="note">Image size is the sum of the image\'s compressed layers: an upper '
        "bound of what deleting the tag frees, since layers shared with remaining images stay. "
        "Deleting a manifest by digest removes every tag pointing to it; space is freed by the "
        "registry's garbage collection.</p>")
    return parts


def _sharing_html(c: SimpleNamespace) -> list[str]:
    """Layer sharing, image sizes and the footer."""
    pngs, registry, report = c.pngs, c.registry, c.report
    parts: list[str] = []
    # sharing and sizes -----------------------------------------------------------------------
    parts.append("<h2>Layer sharing and image sizes</h2>")
    parts.append(_figure("shared_layers", pngs, "Bars of bytes saved by the most shared layers"))
    if report.shared is not None:
        saved = int(report.shared["saved_bytes"].sum()) if len(report.shared) else 0
        parts.append(_table(
            ["layer digest", ("size", True), ("repositories", True), ("tags", True),
             ("saved", True), ("saved bytes", True)],
            [[_Cell(short_digest(r.layer_digest), title=r.layer_digest), _num(format_bytes(r.size)),
              _num(r.repositories), _num(r.tags), *_bytes_cells(r.saved_bytes)]
             for r in report.shared.head(TOP_SHARED).itertuples(index=False)],
            ident="shared-layers",
            caption=f"Layers shared by several repositories ({len(report.shared)}; saving "
                    f"{format_bytes(saved)} = {saved} bytes in all)"))
    parts.append(_figure("size_distribution", pngs, "Histogram of image sizes, log scale"))

    files = ", ".join(sorted(p.name for p in report.files.values()))
    parts.append(
        f"<footer>Written by registry_insights from {escape(registry)}. Files beside this "
        f"page: {escape(files or 'none')}. CSV sizes are integer bytes, times ISO 8601 UTC."
        "</footer></main></body></html>")
    return parts


def _since_last_review_html(report: Report) -> list[str]:
    """The "Since the last review" section: diff to the previous snapshot, growth since, top
    growing repositories, the tags that changed."""
    from ..analysis.history import growth_between

    review = report.review
    parts = ["<h2>Since the last review</h2>"]
    if review is None:
        why = escape(report.history_error) if report.history_error else "--no-history"
        parts.append('<p id="since-last-review">No history: this report saved no snapshot '
                     f"({why}), so there is nothing to compare with.</p>")
        return parts
    current = review.current
    saved = (f"Snapshot {escape(current.snapshot_id)} saved in "
             f"<code>{escape(str(review.store))}</code>.")
    skipped = ""
    if review.skipped:
        skipped = (f' <span class="note">{len(review.skipped)} entries of the store were not '
                   "readable snapshots and were skipped: "
                   + "; ".join(escape(f"{Path(i['path']).name}: {i['reason']}")
                               for i in review.skipped[:5]) + ".</span>")
    if review.previous is None or review.changes is None:
        parts.append(f'<p id="since-last-review">{saved} This is the first snapshot of '
                     f"{escape(current.registry)}: the next report shows what changed since "
                     f"this one.{skipped}</p>")
        return parts
    changes = review.changes
    counts = changes.counts()
    prev = review.previous
    rate = growth_between({"stored_bytes": prev.totals["stored_bytes"],
                           "taken_at": prev.taken_at},
                          {"stored_bytes": current.totals["stored_bytes"],
                           "taken_at": current.taken_at})
    delta = rate["delta_bytes"]
    per_30 = (format_bytes(rate["bytes_per_30_days"]) if np.isfinite(rate["bytes_per_30_days"])
              else "n/a")
    parts.append(
        f'<p id="since-last-review">{saved} Compared with the snapshot of '
        f"<strong>{escape(_when(prev.taken_at))}</strong> ({escape(prev.snapshot_id)}), "
        f"{rate['days']:.1f} days earlier: stored bytes "
        f'<strong id="since-delta-bytes" data-bytes="{delta}">{"+" if delta >= 0 else "-"}'
        f"{escape(format_bytes(abs(delta)))}</strong> ({delta} bytes; "
        f"{escape(per_30)} per 30 days); tags: "
        f"<span id=\"since-added\">{counts['added']}</span> added, "
        f"<span id=\"since-removed\">{counts['removed']}</span> removed, "
        f"<span id=\"since-moved\">{counts['moved']}</span> moved; blobs: "
        f"{counts['blobs_added']} added ({escape(format_bytes(counts['added_bytes']))}), "
        f"{counts['blobs_freed']} no longer referenced "
        f"({escape(format_bytes(counts['freed_bytes']))}).{skipped}</p>")
    repos = changes.repositories
    top = repos[(repos["repository"] != TOTAL) & (repos["delta_bytes"] != 0)].head(10)
    if top.empty and changes.tags.empty:
        parts.append('<p class="note">No tag and no repository changed.</p>')
        return parts
    parts.append(_table(
        ["repository", ("before", True), ("now", True), ("change", True),
         ("change bytes", True), ("tags added", True), ("removed", True), ("moved", True)],
        [[r.repository, _num(format_bytes(r.old_bytes)), _num(format_bytes(r.new_bytes)),
          _num(("+" if r.delta_bytes >= 0 else "-") + format_bytes(abs(r.delta_bytes))),
          _num(int(r.delta_bytes)), _num(r.added), _num(r.removed), _num(r.moved)]
         for r in top.itertuples(index=False)],
        ident="top-growing", caption="Repositories that changed most (distinct bytes each "
                                     "references; largest growth first)"))
    shown = changes.tags.head(30)
    parts.append(_table(
        ["repository", "tag", "change", "old digest", "new digest", ("size", True)],
        [[r.repository, r.tag, r.change, _digest_cell(r.old_digest),
          _digest_cell(r.new_digest),
          _num(format_bytes(r.new_bytes if not pd.isna(r.new_bytes) else r.old_bytes))]
         for r in shown.itertuples(index=False)],
        ident="changed-tags",
        caption=f"Tags that changed ({len(shown)} of {len(changes.tags)}; all in "
                "changes_tags.csv)"))
    return parts


def _digest_cell(digest: object) -> _Cell:
    if digest is None or pd.isna(digest):
        return _Cell("")
    return _Cell(short_digest(digest), title=digest)


def _disk_html(report: Report) -> list[str]:
    """The "What the disk holds" section (with --storage)."""
    if report.disk is None or not len(report.disk):
        return []
    d = report.disk.iloc[0]
    rows = [
        ["blob bytes on disk", *_bytes_cells(d["disk_bytes"]), _num(f"{d['blobs']} blobs")],
        ["stored by the API's view (tags reference)", *_bytes_cells(d["api_stored_bytes"]),
         _num("")],
        ["difference (disk - API)", *_bytes_cells(d["difference_bytes"]), _num("")],
        ["garbage collection frees now", *_bytes_cells(d["gc_backlog_bytes"]),
         _num(f"{d['gc_backlog_blobs']} blobs")],
        ["--delete-untagged would free on top", *_bytes_cells(d["untagged_bytes"]),
         _num(f"{d['untagged_manifests']} untagged manifests")],
        ["unfinished uploads", *_bytes_cells(d["upload_bytes"]), _num("")],
    ]
    return [
        "<h2>What the disk holds</h2>",
        _table(["", ("size", True), ("bytes", True), ("", True)], rows, ident="disk",
               caption="Read from the registry's filesystem storage (read-only)"),
        '<p class="note">The backlog is what <code>registry garbage-collect</code> deletes now: '
        "blobs no manifest references (after deletes and overwritten tags). With "
        "<code>--delete-untagged</code> manifests no tag points to go too; on Distribution 2.8 "
        "that includes the platform manifests of tagged multi-arch images. Only the filesystem "
        "storage driver is read; S3 and other drivers are out of scope.</p>",
    ]


def _unread_section(errors: pd.DataFrame | None) -> str:
    """The "Could not read" section: what the walk left out, and why."""
    out = ['<h2 id="could-not-read">Could not read</h2>']
    if errors is None or not len(errors):
        out.append('<p class="note">Every repository and tag listed was read.</p>')
        return "".join(out)
    tags = errors.dropna(subset=["tag"])
    out.append(
        f'<p class="note"><strong id="unread-tags">{len(set(zip(tags["repository"], tags["tag"])))}'
        f"</strong> tag(s) and {int(errors['tag'].isna().sum())} repositor(y/ies) could not be "
        "read (errors.csv). A tag that is gone is not in any figure; a tag read in part counts "
        "what could be read and is never planned for deletion.</p>")
    out.append(_table(
        ["repository", "tag", "reference", ("status", True), "code", "message"],
        [[r.repository, r.tag, short_digest(r.reference) if isinstance(r.reference, str)
          and r.reference.startswith("sha256:") else r.reference, _num(r.status), r.code,
          r.message] for r in errors.itertuples(index=False)], ident="unread"))
    return "".join(out)


def _round(value: object) -> str:
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return "n/a"
    return str(int(round(float(value))))


def capacity_status(report: Report) -> str:
    """When the report's capacity is reached: a date (UTC), or why there is none.

    "already exceeded" when the registry stores more than the capacity now, or when the trend
    crossed it before the last observation; "not reached on this trend" when the trend does not
    grow; "not given" without a capacity.
    """
    if report.capacity is None:
        return "not given (--capacity)"
    forecast = report.forecast
    attrs = forecast.attrs if forecast is not None else {}
    when = attrs.get("capacity_date", pd.NaT)
    history = forecast.loc[forecast["kind"] == "history", "date"] if forecast is not None else ()
    last = history.max() if len(history) else pd.NaT
    if report.unique_bytes >= report.capacity:
        return "already exceeded"
    if when is None or pd.isna(when):
        return "not reached on this trend"
    if not pd.isna(last) and when <= last:
        return f"already exceeded (trend crossed {_when(when, time=False)})"
    return _when(when, time=False)


def _distinct_tags(frame: pd.DataFrame | None) -> int:
    if frame is None or frame.empty:
        return 0
    return int(frame[["repository", "tag"]].drop_duplicates().shape[0])


def _top_exclusive_name(per_repo: pd.DataFrame) -> str:
    if per_repo.empty:
        return ""
    top = per_repo.sort_values(["exclusive_bytes", "repository"], ascending=[False, True]).iloc[0]
    return f"{top['repository']}: {int(top['exclusive_bytes'])} bytes"




def _period_label(start: pd.Timestamp, freq: object) -> str:
    if pd.isna(start):
        return "n/a"
    return start.strftime("%Y-%m") if freq in ("MS", "ME", "M") else _when(start, time=False)


def _forecast_rows(report: Report) -> list[list[object]]:
    attrs = report.forecast.attrs if report.forecast is not None else {}
    slope = attrs.get("slope_bytes_per_day", np.nan)
    history = (report.forecast[report.forecast["kind"] == "history"]
               if report.forecast is not None else pd.DataFrame())
    rows: list[list[object]] = [
        ["periods fitted", _num(attrs.get("periods", 0)), _num("")],
        ["slope per day", _num(f"{format_bytes(slope)} / day"), _num(f"{_round(slope)} B/day",
                                                                     ident="slope-per-day")],
        ["slope per 30 days", _num(format_bytes(slope * 30) if np.isfinite(slope) else "n/a"),
         _num(_round(slope * 30))],
    ]
    if len(history):
        last = history.iloc[-1]
        rows.append([f"last observation ({_when(last['date'], time=False)})",
                     *_bytes_cells(_round_or_none(last["bytes"]))])
    rows.append([f"projected at horizon ({_when(attrs.get('horizon_end'), time=False)})",
                 *_bytes_cells(_round_or_none(attrs.get("projected_bytes")))])
    if report.capacity is None:
        rows.append(["capacity", _num(capacity_status(report)), _num("")])
    else:
        rows.append(["capacity", *_bytes_cells(report.capacity)])
        rows.append(["capacity reached", _num(capacity_status(report), ident="capacity-date"),
                     _num("")])
    return rows


def _round_or_none(value: object) -> int | None:
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return None
    return int(round(float(value)))


# ----------------------------------------------------------------------------------------------
# terminal


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
    lines.extend(_since_last_review_lines(report))
    if report.forecast is not None:
        attrs = report.forecast.attrs
        slope = attrs.get("slope_bytes_per_day", np.nan)
        if report.growth_source != "snapshots":
            lines.append("note: " + report.growth_note)
        if np.isfinite(slope):
            how = ("measured at snapshots" if report.growth_source == "snapshots"
                   else "from build dates")
            line = (f"growth: {format_bytes(slope * 30)} per 30 days ({how}); projected "
                    f"{format_bytes(attrs.get('projected_bytes'))} on "
                    f"{_when(attrs.get('horizon_end'), time=False)}")
            if report.capacity is not None:
                line += (f"; capacity {format_bytes(report.capacity)}: "
                         f"{capacity_status(report)}")
            lines.append(line)
    if report.stale is not None:
        days = int(report.stale_after / pd.Timedelta(days=1))
        lines.append(f"stale (built > {days} days before {_when(report.now)}): "
                     f"{_distinct_tags(report.stale)} tags, {len(report.stale)} image rows; "
                     f"{report.unknown_date_rows} rows of unknown date counted apart")
    if report.scenarios is not None:
        for r in report.scenarios.itertuples(index=False):
            lines.append(f"cleanup '{r.policy}': {r.deleted_tags} tags, garbage collection "
                         f"frees {format_bytes(r.reclaimable_bytes)} (the per-tag sum says "
                         f"{format_bytes(r.logical_bytes)})")
    lines.append("files: " + ", ".join(str(p) for p in report.files.values()))
    return "\n".join(lines)


def _since_last_review_lines(report: Report) -> list[str]:
    lines = []
    if report.disk is not None and len(report.disk):
        d = report.disk.iloc[0]
        lines.append(f"disk: {format_bytes(d['disk_bytes'])} of blobs; garbage collection "
                     f"would free {format_bytes(d['gc_backlog_bytes'])} now "
                     f"(+{format_bytes(d['untagged_bytes'])} with --delete-untagged, which on "
                     "Distribution 2.8 also deletes tagged multi-arch images' platform "
                     "manifests); the API "
                     f"shows {format_bytes(d['api_stored_bytes'])}, "
                     f"{format_bytes(d['difference_bytes'])} less than the disk holds")
    review = report.review
    if report.history_error:
        lines.append("note: " + report.history_error)
    if review is None:
        return lines
    lines.append(f"snapshot {review.current.snapshot_id} saved in {review.store}")
    for item in review.skipped:
        lines.append(f"history: skipped {item['path']}: {item['reason']}")
    if review.changes is None:
        lines.append("since the last review: first snapshot of this registry")
        return lines
    counts = review.changes.counts()
    delta = review.changes.delta_bytes
    prev = review.previous
    lines.append(
        f"since the last review ({_when(prev.taken_at)}): stored "
        f"{'+' if delta >= 0 else '-'}{format_bytes(abs(delta))}; tags {counts['added']} added, "
        f"{counts['removed']} removed, {counts['moved']} moved")
    repos = review.changes.repositories
    top = repos[(repos["repository"] != TOTAL) & (repos["delta_bytes"] > 0)].head(3)
    if len(top):
        lines.append("  top growing: " + ", ".join(
            f"{r.repository} +{format_bytes(r.delta_bytes)}" for r in top.itertuples()))
    return lines
