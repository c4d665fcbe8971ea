"""Notebook widgets (ipywidgets 8): :class:`TagBrowser` pulls or deletes the tags you select.

A widget here is a class whose state and buttons can be driven from code: every button calls a
public method, so what a click does is what a test (or a notebook cell) gets by calling the
method. The two ways differ only in how errors surface:

- **methods raise** (:class:`ConfirmationRequired`, ``ValueError``, the client's
  :class:`~registry_insights.errors.RegistryError` ...), like the rest of the package;
- **buttons show**: a click never raises into the notebook; the error goes to the widget's
  Output area, where every result is reported too.

Deleting is guarded twice: nothing is deleted without an explicit selection *and* the
confirmation ticked (``browser.confirm.value = True``); the confirmation is for the selection
shown, so changing the selection, and every delete, clears it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path

import ipywidgets as w
import pandas as pd

from ..analysis.reclaim import deleted_manifests, reclaimable
from ..analysis.retention import DELETE, KEEP, PLAN_SCHEMA, collapse_platforms
from ..analysis.storage import TOTAL
from ..errors import CatalogUnavailable, ConfirmationRequired
from ..frames.inventory import fetch_inventory
from ..frames.schema import EARLIEST_KNOWN, coerce
from ..registry.client import DeleteResult, RegistryClient
from ..units import format_bytes, short_digest

#: Extra column of :meth:`TagBrowser.preview_delete`, after :data:`PLAN_SCHEMA`'s: days since
#: ``created_at`` at the browser's ``now`` (NA when the build date is unknown or before 1980,
#: as reproducible builds write 1970-01-01).
PREVIEW_SCHEMA: dict[str, str] = {**PLAN_SCHEMA, "age_days": "Int64"}
#: Where :meth:`TagBrowser.pull_selected` writes when no directory is given (relative to the
#: working directory of the kernel).
DEFAULT_DIRECTORY = "layouts"
_ALL = ""  # the repository dropdown's "every repository" value
_NBSP = "\u00a0"
_CSS_CLASS = "registry-insights-tags"



Pair = tuple[str, str]


class TagBrowser:
    """Browse the tags of a registry, then pull or delete the ones selected.

    The widget (:attr:`widget`, shown by ``display(browser)`` or as a cell's last value): a
    repository dropdown and a text filter on tag names; a list of (repository, tag) rows with
    their digest (short), build date (UTC) and compressed layer size summed over platforms;
    a directory box and "Pull selected"; "Preview delete"; the confirmation checkbox and
    "Delete selected"; an Output area where every action reports.

    Parameters
    ----------
    client : RegistryClient
        The client to read, pull and delete with (deletes need delete rights, and push
        rights for tags that share their digest on CNCF Distribution, see
        :meth:`RegistryClient.delete <registry_insights.client.RegistryClient.delete>`).
    tags : DataFrame, optional
        A tags frame (:data:`~registry_insights.schema.TAGS_SCHEMA`). Default: read now with
        :func:`~registry_insights.inventory.fetch_inventory` (the tags frame of
        ``tags_frame(client, repositories)``, with attestations, and the layers frame).
    repositories : iterable of str, optional
        Repositories to show and to read on :meth:`refresh`; default every repository (of
        ``tags``, else of the catalog).
    directory : str or path, optional
        Initial value of the directory box for pulls; default ``"layouts"``.
    now : timestamp, optional
        "Now" for the ages shown (days since the build); default the current time, UTC.
    layers : DataFrame, optional
        The layers frame matching ``tags``, so :meth:`preview_delete` can say what garbage
        collection frees. Read with the tags when ``tags`` is not given; when ``tags`` is
        given without it, the preview says which tags go but not the bytes, until
        :meth:`refresh`. For exact figures both frames cover the whole registry and include
        attestations (``inv.tags(attestations=True)``, ``inv.layers(attestations=True)``).

    Attributes
    ----------
    repository : ipywidgets.Dropdown
    text : ipywidgets.Text
        Substring of the tag names shown (case-insensitive).
    tag_list : ipywidgets.SelectMultiple
        Its values are ``(repository, tag)`` pairs.
    directory : ipywidgets.Text
    pull_button, preview_button, delete_button, refresh_button : ipywidgets.Button
    confirm : ipywidgets.Checkbox
        Tick it (``confirm.value = True``) to allow :meth:`delete_selected`.
    output : ipywidgets.Output
        Messages, results and the preview table; :attr:`output_text` is its text.
    reclaim : DataFrame or None
        The last preview's :func:`~registry_insights.reclaim.reclaimable` frame (per
        repository, then the registry-wide row), None before a preview or without layers.
    widget : ipywidgets.VBox
        The whole widget.

    Raises
    ------
    RegistryError
        When ``tags`` is not given and reading the registry fails.
    """

    def __init__(self, client: RegistryClient, tags: pd.DataFrame | None = None,
                 repositories: Iterable[str] | None = None, directory=None, now=None, *,
                 layers: pd.DataFrame | None = None):
        self.client = client
        self.now = now
        self._scope = sorted(set(repositories)) if repositories is not None else None
        self._quiet = False
        self._tags = self._layers = self._rows = None
        if tags is None:
            self._read()
        else:
            self._set_frames(tags, layers)
        self._build(directory)

    # -- state ---------------------------------------------------------------------------------
    @property
    def tags(self) -> pd.DataFrame:
        """The tags frame the browser shows (after local removal of deleted tags)."""
        return self._tags

    @property
    def layers(self) -> pd.DataFrame | None:
        """The layers frame used for the garbage collection figures, when known."""
        return self._layers

    @property
    def selected(self) -> list[Pair]:
        """The selected ``(repository, tag)`` pairs (only rows the filter shows can be)."""
        return [tuple(v) for v in self.tag_list.value]

    @property
    def visible(self) -> list[Pair]:
        """The ``(repository, tag)`` pairs the filters let through, in the list's order."""
        return [value for _label, value in self.tag_list.options]

    @property
    def output_text(self) -> str:
        """The text of the Output area (messages and results, tables as plain text)."""
        parts = []
        for out in self.output.outputs:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"] + "\n")
        return "".join(parts)

    def select(self, pairs: Iterable) -> list[Pair]:
        """Select exactly these ``(repository, tag)`` pairs (an empty iterable clears it).

        Returns
        -------
        list of (str, str)
            :attr:`selected`.

        Raises
        ------
        ValueError
            For a pair that is not in the tags, or that the current filter hides (call
            :meth:`filter` first): nothing is selected then.
        """
        pairs = list(pairs)
        if any(isinstance(p, str) or len(p) != 2 for p in pairs):
            raise ValueError(f"select() takes (repository, tag) pairs, not {pairs!r:.80}")
        wanted = [(str(r), str(t)) for r, t in pairs]
        known = set(zip(self._rows["repository"], self._rows["tag"])) if len(self._rows) else set()
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise ValueError(f"not in the tags shown: {_names(unknown)}; refresh() reads the "
                             "registry again")
        shown = set(self.visible)
        hidden = [p for p in wanted if p not in shown]
        if hidden:
            raise ValueError(f"hidden by the filter: {_names(hidden)}; call filter() with "
                             "other values (filter() alone shows everything) and select again")
        self.tag_list.value = tuple(dict.fromkeys(wanted))
        return self.selected

    def filter(self, repository: str | None = None, text: str = "") -> list[Pair]:
        """Show the tags of ``repository`` (None: every repository) whose name contains
        ``text`` (case-insensitive); selected tags still shown stay selected.

        Returns
        -------
        list of (str, str)
            :attr:`visible`.

        Raises
        ------
        ValueError
            For a repository not in the tags.
        """
        value = _ALL if repository is None else str(repository)
        if value not in [v for _label, v in self.repository.options]:
            raise ValueError(f"repository {repository!r} is not in the tags; the repositories "
                             f"are {self.repositories}")
        self._quiet = True
        try:
            self.repository.value = value
            self.text.value = text or ""
        finally:
            self._quiet = False
        self._render()
        return self.visible

    @property
    def repositories(self) -> list[str]:
        """The repositories of the tags shown."""
        return sorted(set(self._rows["repository"])) if len(self._rows) else []

    # -- actions -------------------------------------------------------------------------------
    def preview_delete(self) -> pd.DataFrame:
        """What :meth:`delete_selected` would do, without doing it (no request is made).

        Returns
        -------
        DataFrame
            A plan (:data:`PREVIEW_SCHEMA`: :data:`~registry_insights.retention.PLAN_SCHEMA`
            and ``age_days``), one row per tag concerned: the selected tags
            (``action="delete"``) and, kept, the other tags on the same digests (a delete by
            tag removes that tag only; the manifest stays while a tag points to it). The
            ``reason`` column says which. ``attrs``: ``reclaimable_bytes`` (what the
            registry's garbage collection then frees, each blob once registry-wide, by
            :func:`~registry_insights.reclaim.reclaimable`; None without the layers frame),
            ``logical_bytes`` (the per-tag sum of the selected tags' layers),
            ``deleted_manifests`` (manifests deleted by digest, the platform manifests of
            deleted indexes included). :attr:`reclaim` holds the
            per-repository figures.

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        chosen = self._require_selection("preview")
        plan = self._plan(chosen)
        doomed = deleted_manifests(self._tags, plan)
        repos, names = plan["repository"].tolist(), plan["tag"].tolist()
        digests = [None if pd.isna(d) else str(d) for d in plan["digest"]]
        chosen_set = set(chosen)
        by_digest: dict[tuple[str, str | None], list[str]] = {}
        for repo, tag, digest in zip(repos, names, digests):
            by_digest.setdefault((repo, digest), []).append(tag)
        keep_rows, reasons = [], []
        for i, (repo, tag, digest) in enumerate(zip(repos, names, digests)):
            on_digest = [t for t in by_digest[(repo, digest)] if t != tag]
            others_chosen = [t for t in on_digest if (repo, t) in chosen_set]
            short = short_digest(digest, "?" * 19)
            if (repo, tag) in chosen_set:
                staying = [t for t in on_digest if (repo, t) not in chosen_set]
                if digest is not None and (repo, digest) in doomed:
                    reason = (f"selected: manifest {short} deleted (every tag on it is selected)"
                              if on_digest else
                              f"selected: manifest {short} deleted (no other tag points to it)")
                elif staying:
                    reason = (f"selected: tag only; manifest {short} stays for "
                              f"{', '.join(staying)}")
                else:
                    reason = (f"selected: tag only; manifest {short} stays (a remaining index "
                              "of the repository lists it)")
            elif others_chosen:
                reason = (f"kept: shares {short} with selected {', '.join(others_chosen)}; "
                          "a delete by tag removes that tag only")
            else:
                continue
            keep_rows.append(i)
            reasons.append(reason)
        preview = plan.iloc[keep_rows].copy()
        preview["reason"] = reasons
        now = self._now()
        ages = (now - preview["created_at"]).dt.days
        preview["age_days"] = ages.where(preview["created_at"] >= EARLIEST_KNOWN)
        preview["_chosen"] = [(r, t) in chosen_set for r, t in zip(preview["repository"],
                                                                     preview["tag"])]
        preview = preview.sort_values(["repository", "digest", "_chosen", "tag"],
                                      ascending=[True, True, False, True], kind="stable")
        preview = coerce(preview.drop(columns=["_chosen"]).reset_index(drop=True),
                         PREVIEW_SCHEMA)
        self.reclaim = (reclaimable(self._tags, self._layers, plan)
                        if self._layers is not None else None)
        total = (self.reclaim[self.reclaim["repository"] == TOTAL].iloc[0]
                 if self.reclaim is not None else None)
        selected_rows = preview[preview["action"] == DELETE]
        preview.attrs.update({
            "reclaimable_bytes": int(total["reclaimable_bytes"]) if total is not None else None,
            "logical_bytes": int(selected_rows["layer_size"].sum()),
            "deleted_manifests": len(doomed),
        })
        return preview

    def pull_selected(self) -> list[Path]:
        """Pull every selected tag into its own OCI image layout,
        ``<directory>/<repository>/<tag>`` (``directory`` from the directory box), with
        :meth:`RegistryClient.pull <registry_insights.client.RegistryClient.pull>`
        (verified, resumable; a layout already there is completed, not duplicated).

        Returns
        -------
        list of pathlib.Path
            One layout per selected tag, in the selection's order.

        Raises
        ------
        ValueError
            When nothing is selected or the directory box is empty.
        RegistryError, OSError
            From the pull (the layouts pulled before it are complete).
        """
        chosen = self._require_selection("pull")
        text = self.directory.value.strip()
        if not text:
            raise ValueError("the directory box is empty: type where the layouts go")
        root = Path(text).expanduser()
        self._clear()
        paths = []
        for repository, tag in chosen:
            path = self.client.pull(repository, tag, root / repository / tag, progress=False)
            paths.append(path)
            self._say(f"pulled {repository}:{tag} -> {path}")
        self._say(f"{len(paths)} layout(s) under {root}")
        return paths

    def delete_selected(self) -> list[DeleteResult]:
        """Delete the selected tags, once the confirmation is ticked.

        Each selected tag is deleted with
        :meth:`RegistryClient.delete_many <registry_insights.client.RegistryClient.delete_many>`
        as the frame saw it (tag and digest): a tag that shares its digest with tags not
        selected is removed alone, and they stay; a tag that meanwhile moved to another digest
        is left alone (``"changed"``). Every result is reported in the Output area. Tags
        deleted (or already gone) leave the list at once; :meth:`refresh` reads the registry
        again. The confirmation is cleared afterwards, whatever happened. Space comes back at
        the registry's next garbage collection.

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
            When the confirmation is not ticked (nothing deleted).
        Unsupported
            When the registry has deletes disabled (nothing deleted).
        """
        chosen = self._require_selection("delete")
        if not self.confirm.value:
            raise ConfirmationRequired(
                f"not deleting {len(chosen)} tag(s): tick the confirmation first "
                f"(browser.confirm.value = True); nothing was deleted")
        rows = self._rows.set_index(["repository", "tag"])
        items = []
        for repository, tag in chosen:
            digest = rows.loc[(repository, tag), "digest"]
            items.append((repository, tag, None if pd.isna(digest) else str(digest)))
        self._clear()
        try:
            results = self.client.delete_many(items, progress=False)
        finally:
            self._set_confirm(False)
        counts: dict[str, int] = {}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
            self._say(f"{result.repository}:{result.tag}: {result.status}: {result.message}")
        self._say("; ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                  + ". Space comes back at the registry's next garbage collection.")
        gone = {(r.repository, r.tag) for r in results if r.status in ("deleted", "absent")}
        if gone:
            self._drop(gone)
        return results

    def refresh(self) -> pd.DataFrame:
        """Read the registry again (``repositories``, else the whole catalog, else, when the
        registry has no catalog, the repositories of the current tags) and show what is there.

        Selected tags still there stay selected. The client drops its own cached answers
        after its deletes; changes made by others are seen once its cache freshness window
        has passed (``RegistryClient(freshness=...)``).

        Returns
        -------
        DataFrame
            :attr:`tags`, the new tags frame.
        """
        self._read()
        self._render(refresh_repositories=True)
        self._clear()
        self._say(f"read {len(self._rows)} tags in {len(self.repositories)} repositories")
        return self._tags

    # -- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"TagBrowser({self.client.registry!r}, {len(self._rows)} tags, "
                f"{len(self.selected)} selected)")

    # -- internals -----------------------------------------------------------------------------
    def _read(self) -> None:
        scope = self._scope
        try:
            inv = fetch_inventory(self.client, scope, progress=False)
        except CatalogUnavailable:
            if scope is not None or self._tags is None:
                raise
            inv = fetch_inventory(self.client, sorted(set(self._tags["repository"].dropna())),
                                  progress=False)
        self._set_frames(inv.tags(attestations=True), inv.layers(attestations=True))

    def _set_frames(self, tags: pd.DataFrame, layers: pd.DataFrame | None) -> None:
        if self._scope is not None:
            tags = tags[tags["repository"].isin(self._scope)]
            if layers is not None:
                layers = layers[layers["repository"].isin(self._scope)]
        self._tags = tags.reset_index(drop=True)
        self._layers = layers.reset_index(drop=True) if layers is not None else None
        rows = collapse_platforms(self._tags)
        rows = rows.sort_values(["repository", "created_at", "tag"],
                                ascending=[True, False, True], na_position="last",
                                kind="stable").reset_index(drop=True)
        rows["repository"] = rows["repository"].astype(str)
        rows["tag"] = rows["tag"].astype(str)
        self._rows = rows
        self.reclaim = None

    def _drop(self, pairs: set[Pair]) -> None:
        """Remove deleted tags from the frames (no request)."""
        def keep(frame: pd.DataFrame) -> pd.Series:
            keys = zip(frame["repository"].astype(str), frame["tag"].astype(str))
            return pd.Series([k not in pairs for k in keys], index=frame.index, dtype=bool)

        layers = self._layers[keep(self._layers)] if self._layers is not None else None
        self._set_frames(self._tags[keep(self._tags)], layers)
        self._render()

    def _plan(self, chosen: list[Pair]) -> pd.DataFrame:
        """A plan of every row shown: ``delete`` for the selection, ``keep`` otherwise."""
        chosen_set = set(chosen)
        picked = [(r, t) in chosen_set for r, t in zip(self._rows["repository"],
                                                       self._rows["tag"])]
        plan = self._rows.assign(
            rank=pd.array([pd.NA] * len(self._rows), dtype="Int64"),
            action=[DELETE if p else KEEP for p in picked],
            reason=["selected" if p else "not selected" for p in picked],
        )
        return coerce(plan, PLAN_SCHEMA)

    def _now(self) -> pd.Timestamp:
        if self.now is None:
            return pd.Timestamp.now(tz="UTC")
        stamp = pd.Timestamp(self.now)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    def _require_selection(self, verb: str) -> list[Pair]:
        chosen = self.selected
        if not chosen:
            raise ValueError(f"nothing to {verb}: select tags first (browser.select([(repository,"
                             " tag), ...]) or in the list)")
        return chosen

    def _labels(self) -> list[str]:
        """One line per row; padded with no-break spaces (an HTML ``<option>`` collapses
        ordinary ones) for the list's monospace font."""
        rows = self._rows
        if not len(rows):
            return []
        names = [f"{r}:{t}" for r, t in zip(rows["repository"], rows["tag"])]
        width = min(max(len(n) for n in names), 60)
        now = self._now()
        labels = []
        for name, digest, created, size in zip(names, rows["digest"], rows["created_at"],
                                               rows["layer_size"]):
            if pd.isna(created):
                when = "date unknown"
            elif created < EARLIEST_KNOWN:
                when = f"{created:%Y-%m-%d} (age ?)"
            else:
                when = f"{created:%Y-%m-%d} ({(now - created).days} d)"
            text = (f"{name:<{width}}  {short_digest(digest, '?' * 19)}  "
                    f"{when:<18}  {format_bytes(size):>10}")
            labels.append(text.replace(" ", _NBSP))
        return labels

    def _build(self, directory) -> None:
        full = w.Layout(width="100%")
        self.repository = w.Dropdown(description="Repository", layout=w.Layout(width="50%"))
        self.text = w.Text(description="Tag contains", placeholder="part of a tag name",
                           continuous_update=True, layout=w.Layout(width="40%"))
        self.tag_list = w.SelectMultiple(rows=14, layout=full, description="")
        self.tag_list.add_class(_CSS_CLASS)
        self.directory = w.Text(value=str(directory if directory is not None
                                          else DEFAULT_DIRECTORY),
                                description="Pull into", layout=w.Layout(width="60%"))
        self.pull_button = w.Button(description="Pull selected", icon="download",
                                    tooltip="an OCI image layout per tag, under the directory")
        self.preview_button = w.Button(description="Preview delete", icon="eye",
                                       tooltip="which tags go, which stay, what GC frees")
        self.confirm = w.Checkbox(value=False, indent=False, layout=full,
                                  description="I understand: deleting ...")
        self.delete_button = w.Button(description="Delete selected", icon="trash",
                                      button_style="danger", disabled=True,
                                      tooltip="needs the confirmation ticked")
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="read the registry again")
        self.output = w.Output(layout=w.Layout(width="100%"))
        self.widget = w.VBox([
            w.HTML(f"<style>.{_CSS_CLASS} select {{font-family: monospace}}</style>"
                   f"<b>Tags of {escape(self.client.registry)}</b> (digest, build date UTC "
                   "and age, compressed layers summed over platforms)"),
            w.HBox([self.repository, self.text]),
            self.tag_list,
            w.HBox([self.directory, self.pull_button]),
            w.HBox([self.preview_button, self.refresh_button]),
            self.confirm,
            self.delete_button,
            self.output,
        ], layout=full)
        self._render(refresh_repositories=True)
        self.repository.observe(self._on_filter, names="value")
        self.text.observe(self._on_filter, names="value")
        self.tag_list.observe(self._on_selection, names="value")
        self.confirm.observe(lambda _change: self._update_buttons(), names="value")
        self.pull_button.on_click(lambda _b: self._run(self.pull_selected))
        self.preview_button.on_click(lambda _b: self._run(self._preview_and_show))
        self.delete_button.on_click(lambda _b: self._run(self.delete_selected))
        self.refresh_button.on_click(lambda _b: self._run(self.refresh))

    def _render(self, refresh_repositories: bool = False) -> None:
        """Recompute the list's options from the filters; keep the selection still shown."""
        if not hasattr(self, "tag_list"):
            return
        before = self.selected
        self._quiet = True
        try:
            if refresh_repositories:
                current = self.repository.value
                names = self.repositories
                self.repository.options = [("every repository", _ALL)] + [(n, n) for n in names]
                self.repository.value = current if current in names else _ALL
            rows = self._rows
            mask = pd.Series(True, index=rows.index, dtype=bool)
            if self.repository.value:
                mask &= rows["repository"] == self.repository.value
            needle = self.text.value.strip().lower()
            if needle:
                mask &= rows["tag"].str.lower().str.contains(needle, regex=False)
            labels = self._labels()
            pairs = list(zip(rows["repository"], rows["tag"]))
            options = [(labels[i], pairs[i]) for i in range(len(rows)) if mask.iloc[i]]
            self.tag_list.options = options
            shown = {value for _label, value in options}
            self.tag_list.value = tuple(p for p in before if p in shown)
        finally:
            self._quiet = False
        if self.selected != before:
            self._set_confirm(False)
        self._update_buttons()

    def _on_filter(self, _change) -> None:
        if not self._quiet:
            self._render()

    def _on_selection(self, _change) -> None:
        if not self._quiet:
            self._set_confirm(False)
            self._update_buttons()

    def _set_confirm(self, value: bool) -> None:
        if hasattr(self, "confirm") and self.confirm.value != value:
            self.confirm.value = value

    def _update_buttons(self) -> None:
        chosen = self.selected
        repos = {r for r, _t in chosen}
        self.confirm.description = (
            f"I understand: deleting {len(chosen)} selected tag(s) in {len(repos)} "
            "repository(ies) cannot be undone (other tags on the same digests stay)"
            if chosen else "I understand: deleting ... (select tags first)")
        self.delete_button.disabled = not (chosen and self.confirm.value)
        self.pull_button.disabled = self.preview_button.disabled = not chosen

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

    def _run(self, action) -> None:
        """A button's handler: run ``action``; show an error instead of raising it."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - a click shows what went wrong
            self._say(f"error: {exc}")

    def _clear(self) -> None:
        self.output.outputs = ()

    def _say(self, text: str) -> None:
        self.output.append_stdout(text.rstrip("\n") + "\n")




def _names(pairs: list[Pair]) -> str:
    return ", ".join(f"{r}:{t}" for r, t in pairs)
