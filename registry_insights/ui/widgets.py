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

from ..analysis.cleanup import delete_per_repository
from ..errors import CatalogUnavailable, ConfirmationRequired
from ..frames.inventory import fetch_inventory
from ..frames.schema import OUTCOMES_SCHEMA, PREVIEW_SCHEMA
from ..registry.client import DeleteResult, RegistryClient
from .actions import ActionBar, Worker, summary_html
from .filter_bar import FilterBar
from .messages import MessageArea, delete_report, preview_lines, preview_table
from .selection import Pair, TagSelection
from .tag_table import PAGE_SIZE, STYLE, TagTable

__all__ = ["TagBrowser", "ConfirmationRequired", "PREVIEW_SCHEMA", "OUTCOMES_SCHEMA",
           "DEFAULT_DIRECTORY", "PAGE_SIZE"]

#: Where :meth:`TagBrowser.pull_selected` writes when no directory is given (relative to the
#: working directory of the kernel).
DEFAULT_DIRECTORY = "layouts"


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
            tags, layers = read_frames(client, self._scope, None)
        self.selection = TagSelection(tags, layers, now=now, scope=self._scope)
        self.reclaim: pd.DataFrame | None = None
        self.outcomes: pd.DataFrame | None = None
        self.delete_summary = ""
        self._lock = threading.RLock()
        self._build(str(DEFAULT_DIRECTORY if directory is None else directory))
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
        return self._messages.text

    @property
    def page(self) -> int:
        """The table's page shown, from 0."""
        return self._table.page

    @page.setter
    def page(self, value: int) -> None:
        self._table.page = value

    @property
    def page_rows(self) -> list[Pair]:
        """The rows of the table's current page."""
        return self._table.page_rows(self.visible)

    @property
    def busy(self) -> bool:
        """True while a pull or delete started by a button runs."""
        return self._worker.busy

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
        results: dict[tuple[str, str], DeleteResult] = {}
        done = 0
        try:  # the apply step of the cleanup use case, one repository at a time
            for repository, group, deleted in delete_per_repository(
                    items, lambda group: self.client.delete_many(group, progress=False)):
                results.update({(r.repository, r.tag): r for r in deleted})
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
        tags, layers = read_frames(self.client, self._scope, self.selection.tags)
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
        self._worker.wait(timeout)

    # -- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"TagBrowser({self.client.registry!r}, {len(self.selection.rows)} tags, "
                f"{len(self.selected)} selected)")

    # -- outcome report ------------------------------------------------------------------------
    def _report(self, results: list[DeleteResult], siblings: list[Pair],
                freed: int | None, asked: int) -> None:
        self.outcomes, lines, self.delete_summary = delete_report(
            results, siblings, self.selection.digest, freed, asked)
        for line in lines:
            self._say(line)
        self._say(self.delete_summary)
        self._messages.show(self.outcomes)
        gone_now = {(r.repository, r.tag) for r in results if r.status in ("deleted", "absent")}
        if gone_now:
            with self._lock:
                self.selection.drop(gone_now)

    # -- building the widget -------------------------------------------------------------------
    def _build(self, directory: str) -> None:
        """Make the parts and lay them out; the widgets stay reachable under their old names."""
        self._filters = FilterBar(self._apply_filter)
        self._table = TagTable(on_sort=lambda key: self._run(lambda: self.sort(key)),
                               on_check=self._on_check, on_turn=self._turn,
                               on_all=lambda: self._run(self.select_all_shown),
                               on_none=lambda: self._run(self.select_none))
        self._actions = ActionBar(directory, self._on_confirm)
        self._messages = MessageArea()
        self._worker = Worker(self._actions.progress, self._actions.progress_label,
                              self._say, self._render)
        f, t, a = self._filters, self._table, self._actions
        self.repository, self.text, self.regex = f.repository, f.text, f.regex
        self.older_than, self.platform, self.filter_message = f.older_than, f.platform, f.message
        self.header, self.checkboxes, self._cells = t.header, t.checkboxes, t.cells
        self.table = t.grid
        self.prev_button, self.next_button, self.page_label = (t.prev_button, t.next_button,
                                                               t.page_label)
        self.all_button, self.none_button = t.all_button, t.none_button
        self.summary, self.directory, self.confirm = a.summary, a.directory, a.confirm
        self.pull_button, self.preview_button = a.pull_button, a.preview_button
        self.refresh_button, self.delete_button = a.refresh_button, a.delete_button
        self.progress, self.progress_label = a.progress, a.progress_label
        self.output = self._messages.output
        self.widget = _layout(self.client.registry, f, t, a, self._messages)
        self.pull_button.on_click(lambda _b: self._start("pull", self.pull_selected))
        self.preview_button.on_click(lambda _b: self._run(self._preview_and_show))
        self.delete_button.on_click(lambda _b: self._start("delete", self.delete_selected))
        self.refresh_button.on_click(lambda _b: self._run(self.refresh))
        self._sync_filters()
        self._render()

    # -- drawing -------------------------------------------------------------------------------
    def _sync_filters(self) -> None:
        """Put the selection's filters (and choices) into the filter widgets."""
        self._filters.sync(self.selection)

    def _render(self) -> None:
        """Draw the page, headers, summary, confirmation and buttons from the selection."""
        with self._lock:
            self._table.draw(self.selection)
            self._actions.set_confirmed(self.selection.confirmed)
            self.summary.value = summary_html(self.selection)
            self._update_buttons()

    def _update_buttons(self) -> None:
        self._actions.update(self.selected, self.selection.confirmed, self.busy)

    def _preview_and_show(self) -> pd.DataFrame:
        preview = self.preview_delete()
        self._clear()
        for line in preview_lines(preview, scoped=self._scope is not None):
            self._say(line)
        self._messages.show(preview_table(preview))
        return preview

    # -- events --------------------------------------------------------------------------------
    def _on_model(self, kind: str) -> None:
        if kind in ("filter", "sort"):
            self.page = 0
        if kind == "rows":
            self._sync_filters()
        self._render()

    def _apply_filter(self, repository, text, **filters) -> None:
        with self._lock:
            self.selection.filter(repository, text, **filters)

    def _on_check(self, i: int, checked: bool) -> None:
        page = self.page_rows
        if i < len(page):
            with self._lock:
                self._run(lambda: self.selection.toggle(page[i], checked))

    def _on_confirm(self, ticked: bool) -> None:
        if ticked:
            try:
                self.selection.confirm()
            except ValueError as exc:
                self._actions.set_confirmed(False)
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
        job = self._worker.job
        if self.busy and job is not None:
            self._say(f"error: a {job.name} still runs; wait for it")
            return
        try:  # refusals (nothing selected, not confirmed) are said at once, on this thread
            if name == "delete":
                self.selection.deletions()
            else:
                self.selection.require_selection(name)
        except Exception as exc:  # noqa: BLE001 - a click shows what went wrong
            self._say(f"error: {exc}")
            return
        self._worker.start(name, action, len(self.selected), ready=self._update_buttons)

    def _clear(self) -> None:
        self._messages.clear()

    def _say(self, text: str) -> None:
        self._messages.say(text)


def read_frames(client: RegistryClient, scope: list[str] | None, current: pd.DataFrame | None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the tags and layers frames (with attestations) of ``scope``, else of the whole
    catalog, else (no catalog, on a refresh) of the repositories in ``current``.

    On a refresh (``current`` given) the client's cached tag lists and manifests by tag of
    those repositories are dropped first, so they are asked afresh.

    Raises
    ------
    CatalogUnavailable
        When the catalog cannot be read, no ``scope`` is given and there is no ``current``.
    RegistryError
        When reading fails.
    """
    cache = getattr(client, "cache", None)
    try:
        if current is not None and cache is not None:  # a refresh asks afresh
            known = current.groupby(current["repository"].astype(str))["tag"]
            tags_of = {r: sorted(set(t.astype(str))) for r, t in known}
            for repository in (scope or sorted(tags_of)):
                cache.invalidate(repository, tags_of.get(repository, []))
        inv = fetch_inventory(client, scope, progress=False)
    except CatalogUnavailable:
        if scope is not None or current is None:
            raise
        inv = fetch_inventory(client, sorted(set(current["repository"].dropna())),
                              progress=False)
    return inv.tags(attestations=True), inv.layers(attestations=True)


def _layout(registry: str, f: FilterBar, t: TagTable, a: ActionBar, m: MessageArea) -> w.VBox:
    """The browser's widget: title, filters, table, paging, summary, actions, messages."""
    widget = w.VBox([
        w.HTML(f"{STYLE}<b>Tags of {escape(registry)}</b> (digest, build date UTC and age, "
               "compressed layers summed over platforms; click a header to sort)"),
        w.HBox(list(f.controls), layout=w.Layout(flex_flow="row wrap")),
        f.message,
        t.grid,
        w.HBox([t.prev_button, t.page_label, t.next_button]),
        w.HBox([t.all_button, t.none_button]),
        a.summary,
        w.HBox([a.directory, a.pull_button]),
        w.HBox([a.preview_button, a.refresh_button]),
        a.confirm,
        w.HBox([a.delete_button, a.progress, a.progress_label]),
        m.output,
    ], layout=w.Layout(width="100%"))
    widget.add_class("ri-browser")
    return widget
