"""Notebook widgets (ipywidgets 8): :class:`TagBrowser`, a table of a registry's tags to filter,
sort, select, preview, pull and delete.

The state lives in a headless :class:`~registry_insights.ui.selection.TagSelection`
(:attr:`TagBrowser.selection`); the widget draws it and forwards clicks to it. Every button
calls a public method, so what a click does is what a test (or a notebook cell) gets by calling
the method. The two ways differ in how errors surface and in threads:

- **methods raise** (:class:`ConfirmationRequired`, ``ValueError``, the client's
  :class:`~registry_insights.errors.RegistryError` ...) and run in the caller's thread;
- **buttons show**: a click never raises into the notebook, the error goes to the widget's
  message area; pulls and deletes started by a button run on a worker thread with a progress
  bar, so the notebook stays responsive (:meth:`TagBrowser.wait` waits for them).

Deleting is guarded twice: nothing is deleted without an explicit selection *and* the
confirmation ticked, and the confirmation is bound to the exact (repository, tag, digest) rows
selected when it was ticked: another selection, a filter hiding a selected row, or a refresh
that finds a selected tag on another digest clears it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path

import ipywidgets as w
import pandas as pd

from ..analysis.retention import DELETE, KEEP
from ..errors import CatalogUnavailable, ConfirmationRequired
from ..frames.inventory import fetch_inventory
from ..frames.schema import EARLIEST_KNOWN, OUTCOMES_SCHEMA, PREVIEW_SCHEMA
from ..registry.client import DeleteResult, RegistryClient
from ..units import format_bytes, short_digest
from .selection import Pair, TagSelection, names

__all__ = ["TagBrowser", "ConfirmationRequired", "PREVIEW_SCHEMA", "OUTCOMES_SCHEMA",
           "DEFAULT_DIRECTORY", "PAGE_SIZE"]

#: Where :meth:`TagBrowser.pull_selected` writes when no directory is given (relative to the
#: working directory of the kernel).
DEFAULT_DIRECTORY = "layouts"
#: Rows per page of the table.
PAGE_SIZE = 20
#: The table's columns: (key in the selection's rows, header, sort key, CSS width).
_COLUMNS = (
    ("repository", "Repository", "repository", "minmax(6em, 1.5fr)"),
    ("tag", "Tag", "tag", "minmax(5em, 1.2fr)"),
    ("digest", "Digest", "digest", "11.5em"),
    ("platforms", "Platforms", "platforms", "minmax(6em, 1.2fr)"),
    ("created_at", "Built (UTC)", "created_at", "8.5em"),
    ("age_days", "Age", "age_days", "5em"),
    ("layer_size", "Size", "layer_size", "6.5em"),
)
_CSS = "ri-tags"
_STYLE = f"""<style>
.{_CSS} .ri-cell {{overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 28px}}
.{_CSS} .ri-num {{text-align: right; padding-right: 4px}}
.ri-output table td, .ri-output table th {{text-align: left !important}}
.{_CSS} .ri-head button {{font-weight: bold; text-align: left; padding: 0 4px}}
.ri-summary {{line-height: 1.4}}
</style>"""
_ANY = ""  # a dropdown's "any" value


def _style() -> dict:
    return {"description_width": "initial"}


class TagBrowser:
    """Browse the tags of a registry in a table, then pull or delete the ones selected.

    The widget (:attr:`widget`, shown by ``display(browser)`` or as a cell's last value):
    filters (repository, tag text or regular expression, older than N days, platform); a
    table with a checkbox per row and one header button per column (click to sort, again to
    reverse), :data:`PAGE_SIZE` rows a page; "Select all shown" / "Select none" and a live
    summary of the selection (tags, per-tag sum, what garbage collection would free, the
    sibling tags that stay); a directory box and "Pull selected"; "Preview delete";
    "Refresh"; the confirmation and "Delete selected"; a progress bar; a message area.

    Parameters
    ----------
    client : RegistryClient
        The client to read, pull and delete with (deletes need delete rights, and push
        rights for tags that share their digest on CNCF Distribution, see
        :meth:`RegistryClient.delete <registry_insights.registry.client.RegistryClient.delete>`).
    tags : DataFrame, optional
        A tags frame (:data:`~registry_insights.frames.schema.TAGS_SCHEMA`). Default: read now
        with :func:`~registry_insights.frames.inventory.fetch_inventory` (with attestations,
        and the layers frame).
    repositories : iterable of str, optional
        Repositories to show and to read on :meth:`refresh`; default every repository.
    directory : str or path, optional
        Initial value of the directory box for pulls; default ``"layouts"``.
    now : timestamp, optional
        "Now" for the ages shown and the age filter; default the current time, UTC.
    layers : DataFrame, optional
        The layers frame matching ``tags``, for what garbage collection frees (read with the
        tags when ``tags`` is not given; else unknown until :meth:`refresh`). For exact figures
        both frames cover the whole registry and include attestations.

    Attributes
    ----------
    selection : TagSelection
        The headless state (rows, filters, sort, selection, confirmation).
    repository, platform : ipywidgets.Dropdown
    text : ipywidgets.Text
    regex : ipywidgets.Checkbox
        Read the tag filter as a regular expression.
    older_than : ipywidgets.BoundedIntText
        Days; 0 shows every age.
    header : dict of str to ipywidgets.Button
        The column headers, by column key (``repository``, ``tag``, ``digest``, ``platforms``,
        ``created_at``, ``age_days``, ``layer_size``).
    checkboxes : list of ipywidgets.Checkbox
        One per table row of the page.
    confirm : ipywidgets.Checkbox
        Tick it (``confirm.value = True``) to allow :meth:`delete_selected` for the rows
        selected now.
    progress : ipywidgets.IntProgress
    output : ipywidgets.Output
        Messages, results, the preview and outcome tables; :attr:`output_text` is its text.
    outcomes : DataFrame or None
        :data:`OUTCOMES_SCHEMA`, per tag, of the last delete.
    delete_summary : str
        The last delete's tally and what it means for space ("" before a delete).
    widget : ipywidgets.VBox

    Raises
    ------
    RegistryError
        When ``tags`` is not given and reading the registry fails.
    """

    def __init__(self, client: RegistryClient, tags: pd.DataFrame | None = None,
                 repositories: Iterable[str] | None = None, directory=None, now=None, *,
                 layers: pd.DataFrame | None = None):
        self.client = client
        self._scope = sorted(set(repositories)) if repositories is not None else None
        if tags is None:
            tags, layers = self._read(None)
        self.selection = TagSelection(tags, layers, now=now, scope=self._scope)
        self.reclaim: pd.DataFrame | None = None
        self.outcomes: pd.DataFrame | None = None
        self.delete_summary = ""
        self.page = 0
        self._quiet = False
        self._job: threading.Thread | None = None
        self._job_error: BaseException | None = None
        self._lock = threading.RLock()
        self._build(directory)
        self.selection.on_change(self._on_model)

    # -- state (delegated to the selection) ----------------------------------------------------
    @property
    def now(self):
        return self.selection.now

    @property
    def tags(self) -> pd.DataFrame:
        """The tags frame the browser shows (after local removal of deleted tags)."""
        return self.selection.tags

    @property
    def layers(self) -> pd.DataFrame | None:
        """The layers frame used for the garbage collection figures, when known."""
        return self.selection.layers

    @property
    def selected(self) -> list[Pair]:
        """The selected ``(repository, tag)`` pairs (only rows the filters show can be)."""
        return self.selection.selected

    @property
    def visible(self) -> list[Pair]:
        """The ``(repository, tag)`` pairs the filters let through, in the table's order."""
        return self.selection.visible

    @property
    def repositories(self) -> list[str]:
        """The repositories of the tags shown."""
        return self.selection.repositories

    @property
    def output_text(self) -> str:
        """The text of the message area (messages and results, tables as plain text)."""
        parts = []
        for out in self.output.outputs:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"] + "\n")
        return "".join(parts)

    @property
    def page_rows(self) -> list[Pair]:
        """The rows of the table's current page."""
        start = self.page * PAGE_SIZE
        return self.visible[start:start + PAGE_SIZE]

    @property
    def busy(self) -> bool:
        """True while a pull or delete started by a button runs."""
        return self._job is not None and self._job.is_alive()

    def select(self, pairs: Iterable) -> list[Pair]:
        """Select exactly these ``(repository, tag)`` pairs (an empty iterable clears it).

        Raises
        ------
        ValueError
            For a pair that is not in the tags, or that the filters hide (call
            :meth:`filter` first): nothing is selected then.
        """
        return self.selection.select(pairs)

    def select_all_shown(self) -> list[Pair]:
        """Select every row the filters show (every page)."""
        return self.selection.select_all_shown()

    def select_none(self) -> list[Pair]:
        """Clear the selection."""
        return self.selection.select_none()

    def filter(self, repository: str | None = None, text: str = "", *, regex: bool = False,
               older_than: int | None = None, platform: str | None = None) -> list[Pair]:
        """Set every filter (see :meth:`TagSelection.filter
        <registry_insights.ui.selection.TagSelection.filter>`); ``filter()`` shows everything.

        Returns
        -------
        list of (str, str)
            :attr:`visible`.
        """
        visible = self.selection.filter(repository, text, regex=regex, older_than=older_than,
                                        platform=platform)
        self._sync_filters()
        return visible

    def sort(self, column: str, ascending: bool | None = None) -> list[Pair]:
        """Sort the table by ``column`` (a header click: ``ascending=None`` toggles)."""
        return self.selection.sort(column, ascending)

    # -- actions -------------------------------------------------------------------------------
    def preview_delete(self) -> pd.DataFrame:
        """What :meth:`delete_selected` would do, without doing it (no request is made).

        Returns
        -------
        DataFrame
            :data:`PREVIEW_SCHEMA`, one row per tag concerned: the selected tags
            (``action="delete"``) and, kept, the other tags on the same digests; ``reason``
            says which. ``attrs``: ``reclaimable_bytes`` (what the registry's garbage
            collection then frees, each blob once registry-wide; None without the layers
            frame), ``logical_bytes`` (the per-tag sum), ``deleted_manifests``. :attr:`reclaim`
            holds the per-repository figures.

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        preview = self.selection.preview()
        self.reclaim = preview.attrs.pop("reclaim")
        return preview

    def pull_selected(self, progress: Callable[[int, int, str], None] | None = None
                      ) -> list[Path]:
        """Pull every selected tag into its own OCI image layout,
        ``<directory>/<repository>/<tag>`` (``directory`` from the directory box), with
        :meth:`RegistryClient.pull <registry_insights.registry.client.RegistryClient.pull>`
        (verified, resumable).

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(done, total, text)`` after each tag.

        Returns
        -------
        list of pathlib.Path
            One layout per selected tag, in the selection's order.

        Raises
        ------
        ValueError
            When nothing is selected or the directory box is empty.
        RegistryError, OSError
            From the pull (the layouts pulled before it are complete and reported).
        """
        chosen = self.selection.require_selection("pull")
        text = self.directory.value.strip()
        if not text:
            raise ValueError("the directory box is empty: type where the layouts go")
        root = Path(text).expanduser()
        self._clear()
        paths = []
        for i, (repository, tag) in enumerate(chosen):
            try:
                path = self.client.pull(repository, tag, root / repository / tag,
                                        progress=False)
            except Exception:
                self._say(f"pulled {len(paths)} of {len(chosen)}; {repository}:{tag} failed")
                raise
            paths.append(path)
            self._say(f"pulled {repository}:{tag} -> {path}")
            if progress is not None:
                progress(i + 1, len(chosen), f"pulled {repository}:{tag}")
        self._say(f"{len(paths)} layout(s) under {root}")
        return paths

    def delete_selected(self, progress: Callable[[int, int, str], None] | None = None
                        ) -> list[DeleteResult]:
        """Delete the selected tags, once the confirmation is ticked for exactly them.

        Each tag is deleted with :meth:`RegistryClient.delete_many
        <registry_insights.registry.client.RegistryClient.delete_many>` as the table showed
        it (tag and digest), read fresh per repository: a tag that shares its digest with tags
        not selected is removed alone, and they stay; a tag that meanwhile moved to another
        digest is left alone. The confirmation is used up, whatever happens. Per tag outcomes
        go to :attr:`outcomes` and the message area; tags deleted (or already gone) leave the
        table. Space comes back only at the registry's next garbage collection, and only for
        blobs nothing else references.

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(done, total, text)`` after each repository.

        Returns
        -------
        list of DeleteResult
            One per selected tag, in the selection's order; ``status`` in ``deleted``,
            ``absent``, ``changed``, ``failed``.

        Raises
        ------
        ValueError
            When nothing is selected (nothing deleted).
        ConfirmationRequired
            When the confirmation is not ticked, or was ticked for other rows (nothing
            deleted).
        Unsupported
            When the registry has deletes disabled (nothing deleted).
        """
        with self._lock:
            items = self.selection.deletions()
            siblings = self.selection.siblings()
            try:
                summary = self.selection.summary()
            except Exception:  # noqa: BLE001 - the figures are a courtesy, the delete is not
                summary = {"reclaimable_bytes": None}
            self.selection.withdraw()  # used up, whatever happens next
        self._clear()
        by_repository: dict[str, list[tuple]] = {}
        for item in items:
            by_repository.setdefault(item[0], []).append(item)
        results: dict[tuple[str, str], DeleteResult] = {}
        done = 0
        try:
            for repository, group in by_repository.items():
                for result in self.client.delete_many(group, progress=False):
                    results[(result.repository, result.tag)] = result
                done += len(group)
                if progress is not None:
                    progress(done, len(items), f"{repository}: {len(group)} tag(s)")
        finally:
            ordered = [results[(r, t)] for r, t, _d in items if (r, t) in results]
            self._report(ordered, siblings, summary.get("reclaimable_bytes"), len(items))
        return ordered

    def refresh(self) -> pd.DataFrame:
        """Read the registry again (``repositories``, else the whole catalog, else, when the
        registry has no catalog, the repositories of the current tags) and show what is there.

        Selected tags still there stay selected; the confirmation stays only if every
        selected tag is still on the digest it was confirmed on. The client drops its own
        cached answers after its deletes; for a refresh the tag lists and manifests by tag are
        asked afresh.

        Returns
        -------
        DataFrame
            :attr:`tags`, the new tags frame.
        """
        tags, layers = self._read(self.selection.tags)
        with self._lock:
            self.selection.set_frames(tags, layers)
        self._clear()
        self._say(f"read {len(self.selection.rows)} tags in {len(self.repositories)} "
                  "repositories")
        return self.tags

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a pull or delete started by a button; re-raise nothing (errors are shown).

        Raises
        ------
        TimeoutError
            When it still runs after ``timeout`` seconds.
        """
        job = self._job
        if job is not None:
            job.join(timeout)
            if job.is_alive():
                raise TimeoutError(f"the {job.name} still runs after {timeout} s")

    # -- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"TagBrowser({self.client.registry!r}, {len(self.selection.rows)} tags, "
                f"{len(self.selected)} selected)")

    # -- reading -------------------------------------------------------------------------------
    def _read(self, current: pd.DataFrame | None):
        scope = self._scope
        cache = getattr(self.client, "cache", None)
        try:
            if current is not None and cache is not None:  # a refresh asks afresh
                known = current.groupby(current["repository"].astype(str))["tag"]
                tags_of = {r: sorted(set(t.astype(str))) for r, t in known}
                for repository in (scope or sorted(tags_of)):
                    cache.invalidate(repository, tags_of.get(repository, []))
            inv = fetch_inventory(self.client, scope, progress=False)
        except CatalogUnavailable:
            if scope is not None or current is None:
                raise
            inv = fetch_inventory(self.client, sorted(set(current["repository"].dropna())),
                                  progress=False)
        return inv.tags(attestations=True), inv.layers(attestations=True)

    # -- outcome report ------------------------------------------------------------------------
    def _report(self, results: list[DeleteResult], siblings: list[Pair],
                freed: int | None, asked: int) -> None:
        rows = []
        for r in results:
            if r.status == "deleted":
                outcome = "deleted (tag only)" if r.message.startswith("tag only") else "deleted"
            elif r.status == "absent":
                outcome = "already gone"
            elif r.status == "changed":
                outcome = "refused"
            else:
                outcome = "failed"
            rows.append((r.repository, r.tag, r.digest, outcome, r.message))
        gone = {(r.repository, r.tag) for r in results if r.status in ("deleted", "absent")}
        kept = [(r, t) for r, t in siblings if (r, t) not in gone]
        for r, t in kept:
            rows.append((r, t, self.selection.digest((r, t)), "kept",
                         "not selected; shares the digest of a selected tag"))
        self.outcomes = pd.DataFrame(rows, columns=list(OUTCOMES_SCHEMA)).astype(
            OUTCOMES_SCHEMA)
        counts: dict[str, int] = {}
        for _r, _t, _d, outcome, _m in rows:
            counts[outcome] = counts.get(outcome, 0) + 1
        for r, t, _d, outcome, message in rows:
            self._say(f"{r}:{t}: {outcome}: {message}")
        deleted = sum(1 for r in results if r.status == "deleted")
        if len(results) < asked:
            self._say(f"stopped after {len(results)} of {asked} tag(s) (see the error below).")
        tally = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
        if deleted:
            space = ("about " + format_bytes(freed) + " by the selection's figures"
                     if freed is not None else "an amount unknown without the layers frame")
            self.delete_summary = (
                f"{tally}. The registry frees the space of what no manifest references any "
                f"more ({space}) only when its garbage collection runs.")
        else:
            self.delete_summary = (f"{tally or 'no result'}. Nothing was deleted, so no space "
                                   "comes back.")
        self._say(self.delete_summary)
        self.output.outputs += ({
            "output_type": "display_data",
            "data": {"text/plain": self.outcomes.to_string(index=False),
                     "text/html": self.outcomes.to_html(index=False, escape=True)},
            "metadata": {},
        },)
        gone_now = {(r.repository, r.tag) for r in results if r.status in ("deleted", "absent")}
        if gone_now:
            with self._lock:
                self.selection.drop(gone_now)

    # -- building the widget -------------------------------------------------------------------
    def _build(self, directory) -> None:
        sel = self.selection
        self.repository = w.Dropdown(description="Repository", style=_style(),
                                     layout=w.Layout(width="auto", min_width="16em"))
        self.text = w.Text(description="Tag", placeholder="text in the tag name", style=_style(),
                           continuous_update=True, layout=w.Layout(width="16em"))
        self.regex = w.Checkbox(description="regex", indent=False, value=False,
                                layout=w.Layout(width="5.5em"))
        self.older_than = w.BoundedIntText(description="Older than (days)", value=0, min=0,
                                           max=100_000, style=_style(),
                                           layout=w.Layout(width="15em"))
        self.platform = w.Dropdown(description="Platform", style=_style(),
                                   layout=w.Layout(width="auto", min_width="12em"))
        self.filter_message = w.HTML()
        for control, name in ((self.repository, "repository"), (self.text, "text"),
                              (self.regex, "regex"), (self.older_than, "older-than"),
                              (self.platform, "platform")):
            control.add_class("ri-filter")
            control.add_class(f"ri-{name}")
        template = "2em " + " ".join(width for *_x, width in _COLUMNS)
        self.header = {}
        head = [w.HTML("")]
        for key, title, _sort, _width in _COLUMNS:
            button = w.Button(description=title, tooltip=f"sort by {title.lower()}",
                              layout=w.Layout(width="auto"))
            button.add_class("ri-head")
            button.add_class(f"ri-head-{key}")
            button.on_click(lambda _b, key=key: self._run(lambda: self.sort(key)))
            self.header[key] = button
            head.append(button)
        self.checkboxes, self._cells = [], []
        cells: list[w.Widget] = []
        for i in range(PAGE_SIZE):
            box = w.Checkbox(value=False, indent=False, description="",
                             layout=w.Layout(width="2em"))
            box.add_class(f"ri-row-{i}")
            box.observe(lambda change, i=i: self._on_check(i, change), names="value")
            self.checkboxes.append(box)
            row = []
            for key, *_rest in _COLUMNS:
                cell = w.HTML("")
                cell.add_class("ri-cell")
                cell.add_class(f"ri-cell-{key}")
                if key in ("age_days", "layer_size"):
                    cell.add_class("ri-num")
                row.append(cell)
            self._cells.append(row)
            cells += [box, *row]
        self.table = w.GridBox(head + cells, layout=w.Layout(
            grid_template_columns=template, grid_gap="0 6px", width="100%"))
        self.table.add_class(_CSS)
        self.prev_button = w.Button(description="Previous", icon="chevron-left",
                                    layout=w.Layout(width="8em"))
        self.next_button = w.Button(description="Next", icon="chevron-right",
                                    layout=w.Layout(width="8em"))
        self.page_label = w.HTML()
        self.all_button = w.Button(description="Select all shown", icon="check-square",
                                   layout=w.Layout(width="auto"))
        self.none_button = w.Button(description="Select none", icon="square",
                                    layout=w.Layout(width="auto"))
        self.summary = w.HTML()
        self.summary.add_class("ri-summary")
        self.directory = w.Text(value=str(directory if directory is not None
                                          else DEFAULT_DIRECTORY),
                                description="Pull into", style=_style(),
                                layout=w.Layout(width="auto", min_width="20em", flex="1 1 auto"))
        self.pull_button = w.Button(description="Pull selected", icon="download",
                                    tooltip="an OCI image layout per tag, under the directory",
                                    layout=w.Layout(width="auto"))
        self.preview_button = w.Button(description="Preview delete", icon="eye",
                                       tooltip="which tags go, which stay, what GC frees",
                                       layout=w.Layout(width="auto"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="read the registry again",
                                       layout=w.Layout(width="auto"))
        self.confirm = w.Checkbox(value=False, indent=False, description="",
                                  layout=w.Layout(width="auto"))
        self.confirm.add_class("ri-confirm")
        self.delete_button = w.Button(description="Delete selected", icon="trash",
                                      button_style="danger", disabled=True,
                                      tooltip="needs the confirmation ticked",
                                      layout=w.Layout(width="auto"))
        self.progress = w.IntProgress(value=0, min=0, max=1, description="",
                                      layout=w.Layout(width="40%", visibility="hidden"))
        self.progress_label = w.HTML()
        self.output = w.Output(layout=w.Layout(width="100%"))
        self.output.add_class("ri-output")
        for widget, name in ((self.prev_button, "prev"), (self.next_button, "next"),
                             (self.page_label, "page"), (self.all_button, "all"),
                             (self.none_button, "none"), (self.directory, "directory"),
                             (self.pull_button, "pull"), (self.preview_button, "preview"),
                             (self.refresh_button, "refresh"), (self.delete_button, "delete"),
                             (self.progress, "progress"), (self.progress_label, "progress-label")):
            widget.add_class(f"ri-{name}")  # stable names for browser tests and styling
        self.widget = w.VBox([
            w.HTML(f"{_STYLE}<b>Tags of {escape(self.client.registry)}</b> (digest, build date "
                   "UTC and age, compressed layers summed over platforms; click a header to "
                   "sort)"),
            w.HBox([self.repository, self.text, self.regex, self.older_than, self.platform],
                   layout=w.Layout(flex_flow="row wrap")),
            self.filter_message,
            self.table,
            w.HBox([self.prev_button, self.page_label, self.next_button]),
            w.HBox([self.all_button, self.none_button]),
            self.summary,
            w.HBox([self.directory, self.pull_button]),
            w.HBox([self.preview_button, self.refresh_button]),
            self.confirm,
            w.HBox([self.delete_button, self.progress, self.progress_label]),
            self.output,
        ], layout=w.Layout(width="100%"))
        self.widget.add_class("ri-browser")
        for control in (self.repository, self.text, self.regex, self.older_than, self.platform):
            control.observe(self._on_filter, names="value")
        self.confirm.observe(self._on_confirm, names="value")
        self.prev_button.on_click(lambda _b: self._turn(-1))
        self.next_button.on_click(lambda _b: self._turn(1))
        self.all_button.on_click(lambda _b: self._run(self.select_all_shown))
        self.none_button.on_click(lambda _b: self._run(self.select_none))
        self.pull_button.on_click(lambda _b: self._start("pull", self.pull_selected))
        self.preview_button.on_click(lambda _b: self._run(self._preview_and_show))
        self.delete_button.on_click(lambda _b: self._start("delete", self.delete_selected))
        self.refresh_button.on_click(lambda _b: self._run(self.refresh))
        del sel
        self._sync_filters()
        self._render()

    # -- drawing -------------------------------------------------------------------------------
    def _sync_filters(self) -> None:
        """Put the selection's filters (and choices) into the filter widgets."""
        sel = self.selection
        self._quiet = True
        try:
            self.repository.options = [("every repository", _ANY)] + [
                (n, n) for n in sel.repositories]
            self.repository.value = sel.repository or _ANY
            self.platform.options = [("any", _ANY)] + [(p, p) for p in sel.platforms]
            self.platform.value = sel.platform or _ANY
            self.text.value = sel.text
            self.regex.value = sel.regex
            self.older_than.value = sel.older_than or 0
        finally:
            self._quiet = False

    def _render(self) -> None:
        """Draw the page, headers, summary, confirmation and buttons from the selection."""
        with self._lock:
            self._draw()

    def _draw(self) -> None:
        sel = self.selection
        visible = sel.visible
        pages = max(1, -(-len(visible) // PAGE_SIZE))
        self.page = min(self.page, pages - 1)
        page = self.page_rows
        frame = sel._frame_of(page)
        chosen = set(sel.selected)
        self._quiet = True
        try:
            for i, box in enumerate(self.checkboxes):
                shown = i < len(page)
                box.value = shown and page[i] in chosen
                values = self._cell_texts(frame.iloc[i]) if shown else [("", "")] * len(_COLUMNS)
                display = None if shown else "none"  # empty rows of the last page collapse
                box.layout.display = display
                for cell, (text, title) in zip(self._cells[i], values):
                    cell.value = (f'<div title="{escape(title)}">{escape(text)}</div>'
                                  if text else "")
                    cell.layout.display = display
            for key, title, _s, _w in _COLUMNS:
                arrow = (" ▲" if sel.sort_ascending else " ▼") if key == sel.sort_column else ""
                self.header[key].description = title + arrow
            first = self.page * PAGE_SIZE + 1 if visible else 0
            self.page_label.value = (
                f"&nbsp;rows {first}–{self.page * PAGE_SIZE + len(page)} of {len(visible)} shown"
                f" ({len(sel.rows)} tags)&nbsp;")
            self.prev_button.disabled = self.page == 0
            self.next_button.disabled = self.page >= pages - 1
            self.all_button.description = f"Select all {len(visible)} shown"
            self.confirm.value = sel.confirmed
        finally:
            self._quiet = False
        self._render_summary()
        self._update_buttons()

    def _cell_texts(self, row) -> list[tuple[str, str]]:
        digest = None if pd.isna(row["digest"]) else str(row["digest"])
        created = row["created_at"]
        if pd.isna(created):
            built = "unknown"
        else:
            built = f"{created:%Y-%m-%d}"
        age = "?" if pd.isna(row["age_days"]) else f"{int(row['age_days'])} d"
        if not pd.isna(created) and created < EARLIEST_KNOWN:
            age = "? (epoch)"
        platforms = "" if pd.isna(row["platforms"]) else str(row["platforms"])
        size = row["layer_size"]
        return [
            (str(row["repository"]), str(row["repository"])),
            (str(row["tag"]), str(row["tag"])),
            (short_digest(digest, "?" * 19), digest or "unknown"),
            (platforms or "-", platforms or "no image platform"),
            (built, "" if pd.isna(created) else str(created)),
            (age, age),
            ("?" if pd.isna(size) else format_bytes(size),
             "unknown" if pd.isna(size) else f"{int(size)} bytes"),
        ]

    def _render_summary(self) -> None:
        sel = self.selection
        if not sel.selected:
            self.summary.value = "No tag selected."
            return
        try:
            s = sel.summary()
        except Exception as exc:  # noqa: BLE001 - shown, never raised into a redraw
            self.summary.value = (f"{len(sel.selected)} tag(s) selected; figures unavailable: "
                                  f"{escape(str(exc))}")
            return
        freed = ("unknown (no layers frame: press Refresh)" if s["reclaimable_bytes"] is None
                 else format_bytes(s["reclaimable_bytes"]))
        siblings = s["siblings"]
        stay = (f"{len(siblings)} sibling tag(s) on these digests stay: "
                f"{escape(names(siblings[:6]))}{' …' if len(siblings) > 6 else ''}"
                if siblings else "no other tag on these digests")
        self.summary.value = (
            f"<b>{s['tags']} tag(s) selected</b> in {s['repositories']} repository(ies) · "
            f"per-tag sum {format_bytes(s['logical_bytes'])} · garbage collection would free "
            f"<b>{freed}</b> · {stay}")

    def _update_buttons(self) -> None:
        chosen = self.selected
        busy = self.busy
        repos = {r for r, _t in chosen}
        self.confirm.description = (
            f"I understand: deleting these {len(chosen)} selected tag(s) in {len(repos)} "
            "repository(ies) cannot be undone (other tags on the same digests stay)"
            if chosen else "I understand: deleting … (select tags first)")
        self.confirm.disabled = not chosen or busy
        self.delete_button.disabled = not (chosen and self.selection.confirmed) or busy
        self.pull_button.disabled = not chosen or busy
        self.preview_button.disabled = not chosen
        self.refresh_button.disabled = busy

    def _preview_and_show(self) -> pd.DataFrame:
        preview = self.preview_delete()
        self._clear()
        goes = preview[preview["action"] == DELETE]
        stays = preview[preview["action"] == KEEP]
        freed = preview.attrs["reclaimable_bytes"]
        self._say(f"Deleting {len(goes)} tag(s) deletes {preview.attrs['deleted_manifests']} "
                  "manifest(s) (platform manifests of indexes included); "
                  f"{len(stays)} other tag(s) on the same digests stay.")
        if freed is None:
            self._say("What garbage collection frees needs the layers frame: pass layers= "
                      "or press Refresh.")
        else:
            per_tag = format_bytes(preview.attrs["logical_bytes"])
            self._say(f"Garbage collection would then free {format_bytes(freed)} ({freed} "
                      f"bytes); the per-tag sum says {per_tag}.")
            if self._scope is not None:
                self._say("Only the repositories shown were read: blobs they share with other "
                          "repositories look freeable, so the registry may free less.")
        self._say("Nothing is deleted until the confirmation is ticked and 'Delete selected' "
                  "is pressed.")
        shown = pd.DataFrame({
            "repository": preview["repository"], "tag": preview["tag"],
            "digest": [short_digest(d, "?" * 19) for d in preview["digest"]],
            "created (UTC)": preview["created_at"].dt.strftime("%Y-%m-%d"),
            "layers": [format_bytes(n) for n in preview["layer_size"]],
            "action": preview["action"], "reason": preview["reason"],
        })
        self.output.outputs += ({
            "output_type": "display_data",
            "data": {"text/plain": shown.to_string(index=False), "text/html": shown.to_html(
                index=False, escape=True)},
            "metadata": {},
        },)
        return preview

    # -- events --------------------------------------------------------------------------------
    def _on_model(self, kind: str) -> None:
        if kind in ("filter", "sort"):
            self.page = 0
        if kind == "rows":
            self._sync_filters()
        self._render()

    def _on_filter(self, _change) -> None:
        if self._quiet:
            return
        try:
            with self._lock:
                self.selection.filter(self.repository.value or None, self.text.value,
                                      regex=self.regex.value,
                                      older_than=self.older_than.value or None,
                                      platform=self.platform.value or None)
            self.filter_message.value = ""
        except ValueError as exc:  # e.g. a regular expression being typed
            self.filter_message.value = f"<span style='color:#b00'>{escape(str(exc))}</span>"

    def _on_check(self, i: int, change) -> None:
        if self._quiet:
            return
        page = self.page_rows
        if i < len(page):
            with self._lock:
                self._run(lambda: self.selection.toggle(page[i], bool(change["new"])))

    def _on_confirm(self, change) -> None:
        if self._quiet:
            return
        if change["new"]:
            try:
                self.selection.confirm()
            except ValueError as exc:
                self._quiet = True
                self.confirm.value = False
                self._quiet = False
                self._say(f"error: {exc}")
        else:
            self.selection.withdraw()
        self._update_buttons()

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self._render()

    def _run(self, action) -> None:
        """A button's handler: run ``action``; show an error instead of raising it."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - a click shows what went wrong
            self._say(f"error: {exc}")

    def _start(self, name: str, action) -> None:
        """Run a pull or delete on a worker thread with the progress bar; errors are shown."""
        if self.busy:
            self._say(f"error: a {self._job.name} still runs; wait for it")
            return
        try:  # refusals (nothing selected, not confirmed) are said at once, on this thread
            if name == "delete":
                self.selection.deletions()
            else:
                self.selection.require_selection(name)
        except Exception as exc:  # noqa: BLE001 - a click shows what went wrong
            self._say(f"error: {exc}")
            return
        total = len(self.selected)
        self.progress.max, self.progress.value = max(total, 1), 0
        self.progress.layout.visibility = "visible"
        self.progress_label.value = f"{name}: 0 of {total} tag(s)"

        def step(done: int, of: int, text: str) -> None:
            self.progress.value = done
            self.progress_label.value = f"{name}: {done} of {of} tag(s) ({escape(text)})"

        def work() -> None:
            try:
                action(progress=step)
                self.progress_label.value = f"{name}: done"
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self._job_error = exc
                self._say(f"error: {exc}")
                self.progress_label.value = f"{name}: stopped by an error"
            finally:
                self._job = None
                self._render()

        self._job = threading.Thread(target=work, name=name, daemon=True)
        self._update_buttons()
        self._job.start()

    def _clear(self) -> None:
        self.output.outputs = ()

    def _say(self, text: str) -> None:
        self.output.append_stdout(text.rstrip("\n") + "\n")
