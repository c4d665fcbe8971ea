"""The state behind :class:`~registry_insights.ui.widgets.TagBrowser`, without a widget.

:class:`TagSelection` is plain Python and pandas: the rows (one per repository and tag), the
filters, the sort order, the selection, what deleting the selection would do, and the delete
confirmation. The widget only draws it and forwards clicks to it, so everything a person can do
in the table, code (and a test) can do here, without a browser or a kernel.

The confirmation is bound to the exact ``(repository, tag, digest)`` rows selected when it was
given: any change to them (another selection, a filter hiding a selected row, a refresh that
finds a selected tag on another digest) withdraws it, and :meth:`TagSelection.deletions` refuses
until it is given again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pandas as pd

from ..analysis.reclaim import deleted_manifests, reclaimable
from ..analysis.retention import DELETE, KEEP, TagPattern, collapse_platforms
from ..analysis.storage import TOTAL
from ..errors import ConfirmationRequired
from ..frames.schema import (
    EARLIEST_KNOWN,
    PLAN_SCHEMA,
    PREVIEW_SCHEMA,
    SELECTION_SCHEMA,
    coerce,
    empty,
)
from ..units import short_digest

Pair = tuple[str, str]
Row = tuple[str, str, "str | None"]

SORTABLE = ("repository", "tag", "digest", "platforms", "created_at", "age_days", "layer_size")


class TagSelection:
    """Rows, filters, sort order, selection and delete confirmation of a tags frame.

    Parameters
    ----------
    tags : DataFrame
        A tags frame (:data:`~registry_insights.frames.schema.TAGS_SCHEMA`); attestation rows
        (``is_image`` False) are left out of the rows but count for garbage collection.
    layers : DataFrame, optional
        The matching layers frame, for the bytes garbage collection would free (None: unknown).
    now : timestamp, optional
        "Now" for ages (UTC); default the current time at each computation.
    scope : iterable of str, optional
        Only these repositories are shown.

    Notes
    -----
    Listeners registered with :meth:`on_change` are called with one of ``"rows"``,
    ``"filter"``, ``"sort"``, ``"selection"``, ``"confirmation"`` after each change.
    """

    def __init__(self, tags: pd.DataFrame, layers: pd.DataFrame | None = None, now=None,
                 scope: Iterable[str] | None = None):
        self.now = now
        self.scope = sorted(set(scope)) if scope is not None else None
        self.repository: str | None = None
        self.text = ""
        self.regex = False
        self.older_than: int | None = None
        self.platform: str | None = None
        self.sort_column = "repository"
        self.sort_ascending = True
        self._selected: list[Pair] = []
        self._confirmed: frozenset | None = None
        self._withdrawn = ""  # why the last confirmation was withdrawn
        self._listeners: list[Callable[[str], None]] = []
        self._visible: list[Pair] = []
        self.set_frames(tags, layers)

    # -- frames --------------------------------------------------------------------------------
    def set_frames(self, tags: pd.DataFrame, layers: pd.DataFrame | None = None) -> None:
        """Show new frames (after a refresh or a delete). Selected tags still there stay
        selected (if the filters still show them); the confirmation stays only if every
        selected tag is still on the digest it was confirmed on."""
        if self.scope is not None:
            tags = tags[tags["repository"].isin(self.scope)]
            if layers is not None:
                layers = layers[layers["repository"].isin(self.scope)]
        self.tags = tags.reset_index(drop=True)
        self.layers = layers.reset_index(drop=True) if layers is not None else None
        rows = collapse_platforms(self.tags)
        rows["repository"] = rows["repository"].astype(str)
        rows["tag"] = rows["tag"].astype(str)
        created = rows["created_at"]
        ages = (self._now() - created).dt.days
        rows["age_days"] = ages.where(created >= EARLIEST_KNOWN)
        rows = rows[list(SELECTION_SCHEMA)] if len(rows) else empty(SELECTION_SCHEMA)
        self.rows = coerce(rows, SELECTION_SCHEMA).reset_index(drop=True)
        self._digest = {(r, t): (None if pd.isna(d) else str(d)) for r, t, d in
                        zip(self.rows["repository"], self.rows["tag"], self.rows["digest"])}
        if self.repository is not None and self.repository not in self.repositories:
            self.repository = None
        if self.platform is not None and self.platform not in self.platforms:
            self.platform = None
        self._apply("rows")

    @property
    def repositories(self) -> list[str]:
        """The repositories of the rows."""
        return sorted(set(self.rows["repository"])) if len(self.rows) else []

    @property
    def platforms(self) -> list[str]:
        """Every platform of the rows (``os/architecture[/variant]``)."""
        found: set[str] = set()
        for value in self.rows["platforms"].dropna():
            found.update(p for p in str(value).split(",") if p)
        return sorted(found)

    def digest(self, pair: Pair) -> str | None:
        """The digest the row ``(repository, tag)`` points to (None when unknown)."""
        return self._digest.get(tuple(pair))

    # -- filters and sort ----------------------------------------------------------------------
    def filter(self, repository: str | None = None, text: str = "", *, regex: bool = False,
               older_than: int | None = None, platform: str | None = None) -> list[Pair]:
        """Show the rows of ``repository`` (None: all) whose tag contains ``text``
        (case-insensitive; a regular expression searched in the tag when ``regex``), built
        more than ``older_than`` days before ``now`` (None or 0: any age; tags of unknown age
        are not shown then) and built for ``platform`` (None: any). Selected rows the filters
        hide are no longer selected.

        Returns
        -------
        list of (str, str)
            :attr:`visible`.

        Raises
        ------
        ValueError
            For a repository or platform not in the rows, a negative age, or a regular
            expression that does not compile (nothing changes then).
        """
        if repository is not None and repository not in self.repositories:
            raise ValueError(f"repository {repository!r} is not in the tags; the repositories "
                             f"are {self.repositories}")
        if platform is not None and platform not in self.platforms:
            raise ValueError(f"platform {platform!r} is not in the tags; the platforms are "
                             f"{self.platforms}")
        if older_than is not None and int(older_than) < 0:
            raise ValueError(f"older_than must be a number of days >= 0, not {older_than!r}")
        if regex:
            _compile(text)
        self.repository, self.text, self.regex = repository, text or "", bool(regex)
        self.older_than = int(older_than) if older_than else None
        self.platform = platform
        self._apply("filter")
        return self.visible

    def sort(self, column: str, ascending: bool | None = None) -> list[Pair]:
        """Sort the rows by ``column`` (one of :data:`SORTABLE`); ``ascending=None`` turns the
        order around when the rows are already sorted by that column. Rows of equal value
        keep repository and tag order; unknown values go last.

        Returns
        -------
        list of (str, str)
            :attr:`visible`.
        """
        if column not in SORTABLE:
            raise ValueError(f"cannot sort by {column!r}: the columns are {list(SORTABLE)}")
        if ascending is None:
            ascending = not self.sort_ascending if column == self.sort_column else True
        self.sort_column, self.sort_ascending = column, bool(ascending)
        self._apply("sort")
        return self.visible

    @property
    def visible(self) -> list[Pair]:
        """The ``(repository, tag)`` rows the filters show, in the sort order."""
        return list(self._visible)

    @property
    def visible_rows(self) -> pd.DataFrame:
        """The rows shown (:data:`~registry_insights.frames.schema.SELECTION_SCHEMA`), in the
        sort order."""
        return self._frame_of(self._visible)

    # -- selection -----------------------------------------------------------------------------
    @property
    def selected(self) -> list[Pair]:
        """The selected ``(repository, tag)`` pairs, in the order they were selected."""
        return list(self._selected)

    def select(self, pairs: Iterable) -> list[Pair]:
        """Select exactly these ``(repository, tag)`` pairs (an empty iterable: none).

        Raises
        ------
        ValueError
            For something that is not a pair, a pair not in the rows, or one the filters hide
            (nothing is selected then).
        """
        wanted = self._pairs(pairs)
        self._selected = list(dict.fromkeys(wanted))
        self._apply("selection")
        return self.selected

    def toggle(self, pair: Pair, on: bool) -> list[Pair]:
        """Add (``on``) or remove one shown row from the selection, as a checkbox does."""
        (pair,) = self._pairs([pair])
        if on and pair not in self._selected:
            self._selected.append(pair)
        elif not on and pair in self._selected:
            self._selected.remove(pair)
        self._apply("selection")
        return self.selected

    def select_all_shown(self) -> list[Pair]:
        """Select every row the filters show (on every page of the table)."""
        shown = set(self._visible)
        self._selected = [p for p in self._selected if p in shown] + [
            p for p in self._visible if p not in set(self._selected)]
        self._apply("selection")
        return self.selected

    def select_none(self) -> list[Pair]:
        """Clear the selection."""
        self._selected = []
        self._apply("selection")
        return self.selected

    # -- what deleting the selection does -----------------------------------------------------
    def plan(self) -> pd.DataFrame:
        """A plan (:data:`PLAN_SCHEMA`) of every row: ``delete`` for the selection."""
        chosen = set(self._selected)
        rows = self.rows
        picked = [(r, t) in chosen for r, t in zip(rows["repository"], rows["tag"])]
        plan = rows.drop(columns=["age_days"]).assign(
            rank=pd.array([pd.NA] * len(rows), dtype="Int64"),
            action=[DELETE if p else KEEP for p in picked],
            reason=["selected" if p else "not selected" for p in picked],
        )
        return coerce(plan, PLAN_SCHEMA)

    def siblings(self) -> list[Pair]:
        """Tags not selected that point to the digest of a selected tag in its repository:
        deleting the selection removes the selected tags only, these stay."""
        chosen = set(self._selected)
        digests = {(r, self._digest.get((r, t))) for r, t in self._selected}
        return [(r, t) for (r, t), d in self._digest.items()
                if (r, t) not in chosen and d is not None and (r, d) in digests]

    def summary(self) -> dict:
        """The live figures of the selection.

        Returns
        -------
        dict
            ``tags`` (selected), ``repositories`` (of the selection), ``logical_bytes`` (per-tag
            sum of the selected tags' compressed layers, bytes), ``reclaimable_bytes`` (what the
            registry's garbage collection then frees, each blob once registry-wide; None
            without the layers frame), ``deleted_manifests`` (manifests the delete removes by
            digest, platform manifests of indexes included), ``siblings`` (:meth:`siblings`).
        """
        chosen = set(self._selected)
        rows = self.rows
        mask = [(r, t) in chosen for r, t in zip(rows["repository"], rows["tag"])]
        naive = int(rows.loc[mask, "layer_size"].sum()) if chosen else 0
        freed = manifests = None
        if not chosen:
            freed, manifests = (0 if self.layers is not None else None), 0
        else:
            plan = self.plan()
            manifests = len(deleted_manifests(self.tags, plan))
            if self.layers is not None:
                figures = reclaimable(self.tags, self.layers, plan)
                freed = int(figures.loc[figures["repository"] == TOTAL,
                                        "reclaimable_bytes"].iloc[0])
        return {
            "tags": len(chosen), "repositories": len({r for r, _t in chosen}),
            "logical_bytes": naive, "reclaimable_bytes": freed,
            "deleted_manifests": manifests if chosen else 0, "siblings": self.siblings(),
        }

    def preview(self) -> pd.DataFrame:
        """What deleting the selection would do (no request is made).

        Returns
        -------
        DataFrame
            :data:`~registry_insights.frames.schema.PREVIEW_SCHEMA`, one row per tag
            concerned: the selected tags (``action="delete"``) and, kept, the other tags on
            the same digests; ``reason`` says which and why. ``attrs``:
            ``reclaimable_bytes``, ``logical_bytes``,
            ``deleted_manifests`` (as in :meth:`summary`), ``reclaim`` (the per-repository
            :func:`~registry_insights.analysis.reclaim.reclaimable` frame, or None).

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        chosen = self.require_selection("preview")
        plan = self.plan()
        doomed = deleted_manifests(self.tags, plan)
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
        ages = self.rows.set_index(["repository", "tag"])["age_days"]
        preview["age_days"] = [ages.get((r, t), pd.NA) for r, t in
                               zip(preview["repository"], preview["tag"])]
        preview["_chosen"] = [(r, t) in chosen_set for r, t in zip(preview["repository"],
                                                                     preview["tag"])]
        preview = preview.sort_values(["repository", "digest", "_chosen", "tag"],
                                      ascending=[True, True, False, True], kind="stable")
        preview = coerce(preview.drop(columns=["_chosen"]).reset_index(drop=True),
                         PREVIEW_SCHEMA)
        reclaim = (reclaimable(self.tags, self.layers, plan) if self.layers is not None
                   else None)
        total = (reclaim[reclaim["repository"] == TOTAL].iloc[0] if reclaim is not None
                 else None)
        selected_rows = preview[preview["action"] == DELETE]
        preview.attrs.update({
            "reclaimable_bytes": int(total["reclaimable_bytes"]) if total is not None else None,
            "logical_bytes": int(selected_rows["layer_size"].sum()),
            "deleted_manifests": len(doomed),
            "reclaim": reclaim,
        })
        return preview

    # -- confirmation --------------------------------------------------------------------------
    @property
    def confirmed(self) -> bool:
        """True while the confirmation given covers exactly the rows selected now."""
        return self._confirmed is not None and self._confirmed == self._bound()

    @property
    def confirmed_rows(self) -> list[Row]:
        """The ``(repository, tag, digest)`` rows the confirmation covers (empty: none)."""
        return sorted(self._confirmed, key=lambda r: (r[0], r[1])) if self.confirmed else []

    def confirm(self) -> list[Row]:
        """Confirm deleting the rows selected now, as they are shown (tag and digest).

        Raises
        ------
        ValueError
            When nothing is selected.
        """
        self.require_selection("confirm")
        self._confirmed, self._withdrawn = self._bound(), ""
        self._notify("confirmation")
        return self.confirmed_rows

    def withdraw(self) -> None:
        """Withdraw the confirmation (a delete uses it up too)."""
        self._withdrawn = ""
        if self._confirmed is not None:
            self._confirmed = None
            self._notify("confirmation")

    def deletions(self) -> list[Row]:
        """The ``(repository, tag, digest)`` items to delete, in the selection's order: the
        rows confirmed, which are the rows selected now.

        Raises
        ------
        ValueError
            When nothing is selected.
        ConfirmationRequired
            When there is no confirmation, or it was given for other rows (another
            selection, or a selected tag since found on another digest).
        """
        chosen = self.require_selection("delete")
        if not self.confirmed:
            why = (f"{self._withdrawn}; check them and confirm again" if self._withdrawn
                   else "tick the confirmation first")
            raise ConfirmationRequired(
                f"not deleting {len(chosen)} tag(s): {why}; nothing was deleted")
        return [(r, t, self._digest.get((r, t))) for r, t in chosen]

    def require_selection(self, verb: str) -> list[Pair]:
        """The selection, or ValueError when it is empty (``verb`` names the action)."""
        if not self._selected:
            raise ValueError(f"nothing to {verb}: select tags first (tick them in the table, "
                             "or browser.select([(repository, tag), ...]))")
        return self.selected

    def drop(self, pairs: Iterable[Pair]) -> None:
        """Remove rows (tags deleted) from the frames, without a request."""
        gone = {tuple(p) for p in pairs}
        if not gone:
            return

        def keep(frame: pd.DataFrame) -> pd.Series:
            keys = zip(frame["repository"].astype(str), frame["tag"].astype(str))
            return pd.Series([k not in gone for k in keys], index=frame.index, dtype=bool)

        layers = self.layers[keep(self.layers)] if self.layers is not None else None
        self.set_frames(self.tags[keep(self.tags)], layers)

    # -- listeners -----------------------------------------------------------------------------
    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(kind)`` after every change (see the class notes)."""
        self._listeners.append(callback)

    # -- internals -----------------------------------------------------------------------------
    def _now(self) -> pd.Timestamp:
        if self.now is None:
            return pd.Timestamp.now(tz="UTC")
        stamp = pd.Timestamp(self.now)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    def _bound(self) -> frozenset:
        return frozenset((r, t, self._digest.get((r, t))) for r, t in self._selected)

    def _pairs(self, pairs: Iterable) -> list[Pair]:
        pairs = list(pairs)
        if any(isinstance(p, str) or len(p) != 2 for p in pairs):
            raise ValueError(f"select() takes (repository, tag) pairs, not {pairs!r:.80}")
        wanted = [(str(r), str(t)) for r, t in pairs]
        unknown = [p for p in wanted if p not in self._digest]
        if unknown:
            raise ValueError(f"not in the tags shown: {names(unknown)}; refresh() reads the "
                             "registry again")
        shown = set(self._visible)
        hidden = [p for p in wanted if p not in shown]
        if hidden:
            raise ValueError(f"hidden by the filter: {names(hidden)}; call filter() with "
                             "other values (filter() alone shows everything) and select again")
        return wanted

    def _frame_of(self, pairs: list[Pair]) -> pd.DataFrame:
        if not pairs:
            return empty(SELECTION_SCHEMA)
        indexed = self.rows.set_index(["repository", "tag"], drop=False)
        return indexed.loc[pairs].reset_index(drop=True)

    def _compute_visible(self) -> list[Pair]:
        rows = self.rows
        if not len(rows):
            return []
        mask = pd.Series(True, index=rows.index, dtype=bool)
        if self.repository is not None:
            mask &= rows["repository"] == self.repository
        if self.text:
            if self.regex:
                pattern = _compile(self.text)
                mask &= rows["tag"].map(lambda t: bool(pattern.search(t))).astype(bool)
            else:
                mask &= rows["tag"].str.lower().str.contains(self.text.strip().lower(),
                                                            regex=False).astype(bool)
        if self.older_than:
            mask &= (rows["age_days"] > self.older_than).fillna(False).astype(bool)
        if self.platform is not None:
            mask &= rows["platforms"].fillna("").map(
                lambda s: self.platform in s.split(",")).astype(bool)
        shown = rows[mask.to_numpy()]
        column, ascending = self.sort_column, self.sort_ascending
        if column == "age_days":  # the age of an unknown date is unknown: last either way
            column, ascending = "created_at", not ascending
        key = shown[column]
        if column == "created_at":
            key = key.where(key >= EARLIEST_KNOWN)
        ordered = shown.assign(_key=key).sort_values(
            ["_key", "repository", "tag"], ascending=[ascending, True, True],
            na_position="last", kind="stable")
        return list(zip(ordered["repository"], ordered["tag"]))

    def _apply(self, kind: str) -> None:
        self._visible = self._compute_visible()
        shown = set(self._visible)
        self._selected = [p for p in self._selected if p in shown]
        if self._confirmed is not None and self._confirmed != self._bound():
            self._confirmed = None
            self._withdrawn = {
                "rows": "the registry was read again and the selected rows changed "
                        "(a tag gone or on another digest) since the confirmation",
                "filter": "the filters hid selected rows since the confirmation",
            }.get(kind, "the selection changed since the confirmation")
            self._notify(kind)
            self._notify("confirmation")
            return
        self._notify(kind)

    def _notify(self, kind: str) -> None:
        for callback in list(self._listeners):
            callback(kind)


def _compile(text: str) -> TagPattern:
    """The tag filter, matched with a time limit (a pattern that backtracks catastrophically
    must not hang the kernel); ValueError names a bad one."""
    try:
        compiled = re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"the tag filter {text!r} is not a valid regular expression: {exc}") \
            from None
    return TagPattern(compiled, "the tag filter")


def names(pairs: Iterable[Pair]) -> str:
    """``repository:tag, ...``"""
    return ", ".join(f"{r}:{t}" for r, t in pairs)
