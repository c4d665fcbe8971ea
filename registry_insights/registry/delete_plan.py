"""What a delete removes: the one rule, as a pure planner (no I/O).

Live deletes (:mod:`registry_insights.registry.deletes`), the garbage-collection prediction
(:func:`registry_insights.analysis.reclaim.reclaimable`) and the widget's preview all call
:func:`plan_deletes`, so they cannot disagree.

The rule, for one repository (OCI distribution-spec, "Deleting manifests": deleting a manifest
by digest removes every tag on it; CNCF Distribution keeps untagged manifests until a
``--delete-untagged`` garbage collection):

- The tags not asked for survive. What they *reach* is their digests and, through indexes, every
  manifest those indexes list, followed to any depth (an index may list an index).
- A digest all of whose tags are asked for, and that no surviving tag reaches, is deleted by
  digest. Otherwise the asked tags on it are removed alone (tag delete, or a swap to a throwaway
  manifest) and the manifest stays.
- With ``children``, the manifests a deleted index lists (to any depth) that no surviving tag
  reaches are deleted too; otherwise the garbage collection would free only the index's bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def reachable(roots: Iterable[str], children: Mapping[str, Iterable[str]]) -> set[str]:
    """Every digest reached from ``roots`` through ``children`` (any depth; cycles end)."""
    seen: set[str] = set()
    stack = [r for r in roots if r]
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        stack.extend(c for c in children.get(digest, ()) if c and c not in seen)
    return seen


@dataclass(frozen=True)
class DeletePlan:
    """What deleting some tags of one repository does.

    Attributes
    ----------
    manifests : tuple of str
        Digests deleted by digest (each takes every tag on it, all of them asked for).
    untag : tuple of str
        Tags removed alone: their digest stays for :attr:`kept_for`.
    children : tuple of str
        Manifests listed (at any depth) by deleted indexes that no surviving tag reaches.
    removed_tags : tuple of str
        Every tag the plan removes (the asked tags that exist).
    kept_for : dict
        Tag removed alone -> the surviving tags that keep its digest (siblings on the digest,
        or the tags of indexes that reach it).
    missing : tuple of str
        Asked tags that the repository does not have.
    """

    manifests: tuple[str, ...] = ()
    untag: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    removed_tags: tuple[str, ...] = ()
    kept_for: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def deleted(self) -> tuple[str, ...]:
        """Every manifest digest the plan deletes (tagged ones first, then children)."""
        return self.manifests + self.children


def plan_deletes(tags: Mapping[str, str], children: Mapping[str, Iterable[str]],
                 delete: Iterable[str] = (), *, digests: Iterable[str] = (),
                 with_children: bool = True) -> DeletePlan:
    """Plan deleting the tags ``delete`` of one repository.

    Parameters
    ----------
    tags : mapping
        Every tag of the repository -> the digest it points to (a fresh read, for live deletes).
    children : mapping
        Index digest -> the digests it lists (platform manifests, attestations, nested indexes).
        Indexes not in the mapping are taken as listing nothing.
    delete : iterable of str
        The tags to delete.
    digests : iterable of str
        Manifests to delete by digest, whatever reaches them: every tag on them goes (an index
        that lists one keeps a dangling entry: that is what deleting by digest asks for).
    with_children : bool
        Delete what deleted indexes list, to any depth, unless a surviving tag reaches it.

    Returns
    -------
    DeletePlan
    """
    forced = set(digests)
    asked = set(delete)
    missing = tuple(sorted(t for t in asked if t not in tags))
    asked -= set(missing)
    asked |= {t for t, d in tags.items() if d in forced}
    survivors = {t: d for t, d in tags.items() if t not in asked}
    reached = reachable(survivors.values(), children)
    holders: dict[str, list[str]] = {}
    for tag, digest in tags.items():
        holders.setdefault(digest, []).append(tag)
    reach_of: dict[str, set[str]] = {}  # survivor digest -> what it reaches, when needed
    manifests, untag, kept_for = [], [], {}
    for digest in sorted({tags[t] for t in asked} | forced):
        mine = sorted(t for t in holders.get(digest, ()) if t in asked)
        if digest in forced or digest not in reached:
            manifests.append(digest)
            continue
        if not reach_of:
            reach_of = {d: reachable([d], children) for d in set(survivors.values())}
        keepers = sorted(t for t, d in survivors.items() if digest in reach_of[d])
        for tag in mine:
            untag.append(tag)
            kept_for[tag] = tuple(keepers)
    kids: list[str] = []
    if with_children and manifests:
        below = reachable(manifests, children) - set(manifests) - reached
        kids = sorted(below)
    return DeletePlan(
        manifests=tuple(manifests), untag=tuple(untag), children=tuple(kids),
        removed_tags=tuple(sorted(asked)), kept_for=kept_for, missing=missing,
    )
