"""The cleanup use case: read -> plan -> apply -> tally, written once for the CLI and the widget.

The steps that touch the registry are *given* to it, not imported: :func:`plan_cleanup` takes a
``read`` callable (``repositories or None -> inventory``; in practice
``lambda repos: fetch_inventory(client, repos)``) and :func:`apply_cleanup` a ``delete_many``
callable (``RegistryClient.delete_many``). So this module stays on the analysis side of the
layers (it imports no network code; ``lint-imports`` checks that), and tests can drive it with
frames made by hand.

- **read**: the whole registry when the catalog can be read (a blob is freed only when *no*
  repository still uses it); otherwise only the repositories named, and the plan says so
  (``complete=False``).
- **plan**: :func:`~registry_insights.analysis.retention.retention_plan` on the repositories
  chosen, and :func:`~registry_insights.analysis.reclaim.reclaimable` on the whole registry
  read, narrowed to those repositories.
- **apply**: one delete per planned tag (``delete_many`` groups them per digest and keeps
  sibling tags), turned into an audit frame with one record per tag of the plan (kept tags
  included): time, repository, tag, digest, action, result, message.
- **tally**: counts of the results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from ..errors import CatalogUnavailable, NotFound
from ..frames.schema import UTC_NS, coerce, empty
from .reclaim import reclaimable
from .retention import DELETE, KEEP, deletions, retention_plan
from .storage import TOTAL

#: One record per tag of the plan after :func:`apply_cleanup`. ``time``: when the result was
#: known (UTC; the deletes of one repository share a time); ``digest``: what the tag pointed
#: to when planned; ``action``: ``keep`` or ``delete`` (the plan's); ``result``: ``kept`` for
#: kept tags, else the delete's status (``deleted``, ``absent``, ``changed``, ``failed``);
#: ``message``: the plan's reason for kept tags, the delete's message otherwise.
AUDIT_SCHEMA: dict[str, str] = {
    "time": UTC_NS,
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "action": "string",
    "result": "string",
    "message": "string",
}

#: The result of a kept tag in the audit frame.
KEPT = "kept"


class Inventory(Protocol):
    """What :func:`plan_cleanup` needs of a registry walk (``frames.inventory.Inventory``)."""

    repositories: Sequence[str]

    def tags(self, attestations: bool = False) -> pd.DataFrame: ...

    def layers(self, attestations: bool = False) -> pd.DataFrame: ...


@dataclass(frozen=True)
class CleanupPlan:
    """A planned cleanup, before anything is deleted.

    Attributes
    ----------
    plan : DataFrame
        :data:`~registry_insights.analysis.retention.PLAN_SCHEMA`, the repositories chosen only,
        sorted by repository, newest first.
    summary : DataFrame
        :data:`~registry_insights.analysis.reclaim.RECLAIM_SCHEMA`: one row per repository
        chosen, then the ``(total)`` row (bytes garbage collection frees, counted once
        registry-wide).
    complete : bool
        False when the catalog could not be read: blobs other repositories share were not
        seen, so the registry may free less than ``summary`` says.
    repositories : tuple of str
        The repositories chosen (every repository read when none was named).
    """

    plan: pd.DataFrame
    summary: pd.DataFrame
    complete: bool
    repositories: tuple[str, ...]

    @property
    def deletions(self) -> list[tuple[str, str, str | None]]:
        """``(repository, tag, digest)`` of every tag the plan deletes."""
        return deletions(self.plan)

    @property
    def total(self) -> pd.Series:
        """The ``(total)`` row of :attr:`summary`."""
        return self.summary[self.summary["repository"] == TOTAL].iloc[0]

    @property
    def reclaimable_bytes(self) -> int:
        """Bytes garbage collection frees after the deletes (each blob once)."""
        return int(self.total["reclaimable_bytes"])


def plan_cleanup(read: Callable[[list[str] | None], Inventory],
                 repositories: Iterable[str] = (), *, keep_last: int | None = None,
                 older_than=None, keep_regex=None, delete_regex=None,
                 protect: Iterable[str] | str = (), now=None,
                 protect_defaults: bool = True) -> CleanupPlan:
    """Read the registry, plan which tags go and what garbage collection then frees.

    Parameters
    ----------
    read : callable
        ``read(None)`` walks the whole registry, ``read([names])`` only those repositories; it
        returns an inventory (``.repositories``, ``.tags(attestations=)``,
        ``.layers(attestations=)``) and raises
        :class:`~registry_insights.errors.CatalogUnavailable` when there is no catalog.
    repositories : iterable of str
        The repositories to clean; empty: every repository read.
    keep_last, older_than, keep_regex, delete_regex, protect, now, protect_defaults
        The rules of :func:`~registry_insights.analysis.retention.retention_plan`.

    Returns
    -------
    CleanupPlan

    Raises
    ------
    CatalogUnavailable
        When the catalog cannot be read and no repository was named.
    NotFound
        When a named repository is not in the catalog (nothing planned).
    ValueError
        For a malformed rule (see ``retention_plan``).
    """
    chosen = sorted(set(repositories))
    try:
        inventory = read(None)
        complete = True
    except CatalogUnavailable:
        if not chosen:
            raise
        inventory = read(chosen)
        complete = False
    unknown = [r for r in chosen if r not in inventory.repositories]
    if unknown:
        raise NotFound(f"repositories not in the catalog: {unknown}; nothing planned, "
                       "nothing deleted")
    tags = inventory.tags(attestations=True)
    layers = inventory.layers(attestations=True)
    scope = tags[tags["repository"].isin(chosen)] if chosen else tags
    plan = retention_plan(scope, keep_last=keep_last, older_than=older_than,
                          keep_regex=keep_regex, delete_regex=delete_regex, protect=protect,
                          now=now, protect_defaults=protect_defaults)
    summary = reclaimable(tags, layers, plan)
    if chosen:
        summary = summary[summary["repository"].isin([*chosen, TOTAL])].copy()
        is_total = summary["repository"] == TOTAL
        summary.loc[is_total, "tags"] = summary.loc[~is_total, "tags"].sum()
        summary = summary.reset_index(drop=True)
    names = tuple(chosen) if chosen else tuple(sorted(inventory.repositories))
    return CleanupPlan(plan.reset_index(drop=True), summary, complete, names)


def delete_per_repository(items: Iterable[tuple[str, str, str | None]],
                          delete_many: Callable[[list[tuple]], Sequence[Any]]
                          ) -> Iterator[tuple[str, list[tuple], list[Any]]]:
    """Delete ``(repository, tag, digest)`` items with one ``delete_many`` call per repository
    (repositories in order of first appearance), yielding as each repository is done.

    The apply step of :func:`apply_cleanup`, also used by the notebook's
    :meth:`TagBrowser.delete_selected <registry_insights.ui.widgets.TagBrowser.delete_selected>`.
    Being a generator, a caller keeps the results of the repositories done before an error
    that ``delete_many`` raises (the error propagates; later repositories are not touched).

    Yields
    ------
    (str, list of tuple, list)
        The repository, its items, and the results ``delete_many`` returned for them.
    """
    by_repository: dict[str, list[tuple]] = {}
    for item in items:
        by_repository.setdefault(item[0], []).append(item)
    for repository, group in by_repository.items():
        yield repository, group, list(delete_many(group))


def apply_cleanup(cleanup: CleanupPlan, delete_many: Callable[[list[tuple]], Sequence[Any]],
                  clock: Callable[[], pd.Timestamp] | None = None) -> pd.DataFrame:
    """Delete the planned tags through ``delete_many``; return the audit frame.

    Parameters
    ----------
    cleanup : CleanupPlan
    delete_many : callable
        ``delete_many([(repository, tag, digest), ...])`` returning one result per item in
        order, each with ``repository``, ``tag``, ``digest``, ``status``, ``message``
        (:meth:`RegistryClient.delete_many`: a tag that no longer points to the planned digest
        is left alone, status ``changed``).
    clock : callable, optional
        The current time (UTC); default ``pd.Timestamp.now(tz="UTC")``.

    Returns
    -------
    DataFrame
        :data:`AUDIT_SCHEMA`, one record per tag of the plan in the plan's order: the deleted
        ones with the delete's result and the time their repository's deletes ended (one
        ``delete_many`` call per repository), the kept ones with result ``kept`` and the time
        the deletes ended.
    """
    now = clock or (lambda: pd.Timestamp.now(tz="UTC"))
    done: dict[tuple[str, str], tuple[Any, pd.Timestamp]] = {}
    for _repository, _items, results in delete_per_repository(cleanup.deletions, delete_many):
        finished = now()  # one call per repository: each gets its own time
        done.update({(r.repository, r.tag): (r, finished) for r in results})
    planned_at = now()
    rows = []
    plan = cleanup.plan
    for repository, tag, digest, action, reason in zip(
            plan["repository"], plan["tag"], plan["digest"], plan["action"], plan["reason"]):
        digest = None if pd.isna(digest) else str(digest)
        if action != DELETE:
            rows.append({"time": planned_at, "repository": repository, "tag": tag,
                         "digest": digest, "action": KEEP, "result": KEPT, "message": reason})
            continue
        result, finished = done.get((str(repository), str(tag)), (None, planned_at))
        rows.append({"time": finished, "repository": repository, "tag": tag,
                     "digest": (result.digest if result is not None else None) or digest,
                     "action": DELETE,
                     "result": result.status if result is not None else "failed",
                     "message": result.message if result is not None else
                     "no result returned"})
    return coerce(pd.DataFrame(rows), AUDIT_SCHEMA) if rows else empty(AUDIT_SCHEMA)


def tally(audit: pd.DataFrame) -> dict[str, int]:
    """``result -> count`` over the audit frame's delete records (kept tags not counted)."""
    deletes = audit[audit["action"] == DELETE]
    return {str(k): int(v) for k, v in deletes["result"].value_counts().sort_index().items()}


def outcome(counts: dict[str, int]) -> str:
    """``"ok"``, ``"partial"`` (some deletes failed, others went) or ``"failed"`` (deletes were
    due and none went)."""
    failed = counts.get("failed", 0)
    if not failed:
        return "ok"
    return "partial" if sum(counts.values()) > failed else "failed"
