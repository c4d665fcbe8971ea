"""What a cleanup frees: the bytes the registry's garbage collection removes after a plan runs.

Pure ``frame -> frame`` functions (no I/O, inputs never mutated), modelled on what CNCF
Distribution 2.8's ``registry garbage-collect`` (without ``--delete-untagged``) really does,
checked against its storage in the tests:

- **Mark**: in every repository, every manifest *revision* still linked (pushed by tag or by
  digest and not deleted, tagged or not) is marked, with the blobs it references: an image
  manifest marks its config and layers; an index marks its platform manifests' blobs, **not**
  their configs and layers, which are marked only through the platform manifests' own
  revisions.
- **Sweep**: every blob of the registry that no repository marked is deleted, whatever the
  repositories linking it. Nothing else is freed, and nothing is freed before the GC runs.

Consequences the figures follow:

- Deleting a manifest by digest unlinks only that revision. Deleting an index leaves its
  platform manifests linked (untagged), so the GC frees the index's own bytes and nothing else,
  unless they are deleted too (``children=True``, what
  :meth:`RegistryClient.delete <registry_insights.client.RegistryClient.delete>` does by
  default: the platform manifests no remaining tag of the repository reaches).
- A blob is freed only when no surviving manifest in *any* repository references it, so shared
  base layers free nothing, and the per-tag sum of layer sizes (``logical_bytes``) overstates the
  space by far.
- ``--delete-untagged`` on Distribution 2.8.2 also deletes the platform manifests of *tagged*
  indexes (they carry no tag of their own), which breaks every multi-arch image; these figures
  do not model it, and it should not be used there.

The frames must describe every manifest: build them with ``attestations=True`` (attestation
manifests are platform manifests of their index) for the whole registry, or at least for every
repository sharing blobs with the ones cleaned. Untagged manifests are invisible in the frames
(the API lists tags, not revisions); if one references a blob, the GC keeps that blob and frees
less than predicted.
"""

from __future__ import annotations

import pandas as pd

from ..frames.schema import BLOBS_SCHEMA, RECLAIM_SCHEMA, coerce, empty, tag_rows
from ..registry import mediatypes as mt
from ..registry.delete_plan import plan_deletes
from .retention import DELETE
from .storage import TOTAL, referenced_blobs


def _text(series: pd.Series) -> list:
    return [None if pd.isna(v) else str(v) for v in series]


def _deleted_tags(plan: pd.DataFrame) -> set[tuple[str, str]]:
    rows = plan[plan["action"] == DELETE]
    return set(zip(_text(rows["repository"]), _text(rows["tag"])))


def repository_graphs(tags: pd.DataFrame) -> dict[str, tuple[dict[str, str], dict[str, set]]]:
    """Per repository, what the delete planner needs: tag -> digest, and index digest -> the
    manifest digests it lists, from the rows of a tags frame."""
    graphs: dict[str, tuple[dict[str, str], dict[str, set]]] = {}
    if not len(tags):
        return graphs
    is_index = tags["media_type"].isin(list(mt.INDEXES)).fillna(False).tolist()
    for repo, name, top, kid, index, parent in zip(
            _text(tags["repository"]), _text(tags["tag"]), _text(tags["digest"]),
            _text(tags["manifest_digest"]), is_index, _parents(tags)):
        if repo is None or name is None or not top:
            continue
        tag_map, children = graphs.setdefault(repo, ({}, {}))
        tag_map[name] = top
        parent = parent or (top if index else None)
        if parent and kid and kid != parent:
            children.setdefault(parent, set()).add(kid)
    return graphs


def _parents(tags: pd.DataFrame) -> list:
    """``parent_digest`` per row (None for a tag's own manifest, or when the column is
    missing: one level of index then)."""
    if "parent_digest" not in tags.columns:
        return [None] * len(tags)
    return _text(tags["parent_digest"])


def deleted_manifests(tags: pd.DataFrame, plan: pd.DataFrame,
                      children: bool = True) -> set[tuple[str, str]]:
    """``(repository, digest)`` of the manifests applying ``plan`` deletes, by the one delete
    rule (:func:`~registry_insights.registry.delete_plan.plan_deletes`, what
    ``RegistryClient.delete_many`` does): a digest goes when every tag of the repository on it
    is deleted and no surviving tag reaches it; with ``children``, what deleted indexes list
    goes too unless a surviving tag reaches it.
    """
    asked_in: dict[str, list[str]] = {}
    for repo, tag in _deleted_tags(plan):
        asked_in.setdefault(repo, []).append(tag)
    doomed: set[tuple[str, str]] = set()
    for repo, (tag_map, kids) in repository_graphs(tags).items():
        asked = asked_in.get(repo)
        if asked:
            planned = plan_deletes(tag_map, kids, asked, with_children=children)
            doomed |= {(repo, d) for d in planned.deleted}
    return doomed


def freed_blobs(tags: pd.DataFrame, layers: pd.DataFrame, plan: pd.DataFrame,
                children: bool = True) -> pd.DataFrame:
    """The blobs garbage collection frees after ``plan`` runs, per repository referencing them.

    Returns
    -------
    DataFrame
        :data:`~registry_insights.schema.BLOBS_SCHEMA` rows of
        :func:`~registry_insights.analysis.referenced_blobs` whose blob no surviving manifest
        (in any repository) references (see the module docstring for the GC's rules).
    """
    blobs = referenced_blobs(tags, layers)
    if not len(blobs):
        return empty(BLOBS_SCHEMA)
    doomed = deleted_manifests(tags, plan, children)
    repos = _text(tags["repository"])
    tops, kids = _text(tags["digest"]), _text(tags["manifest_digest"])
    configs = _text(tags["config_digest"])
    is_index = tags["media_type"].isin(list(mt.INDEXES)).fillna(False).tolist()
    refs: dict[str, set[str]] = {}  # manifest digest -> blobs its revision marks
    revisions: set[tuple[str, str]] = set()
    for repo, top, kid, config, index, parent in zip(repos, tops, kids, configs, is_index,
                                                     _parents(tags)):
        if index and top:
            revisions.add((repo, top))
            refs.setdefault(top, set())
        parent = parent or (top if index else None)
        if parent and kid and kid != parent:
            refs.setdefault(parent, set()).add(kid)
        if kid:
            revisions.add((repo, kid))
            refs.setdefault(kid, set())
            if config:
                refs[kid].add(config)
    if len(layers) and "foreign" in layers.columns:
        layers = layers[~layers["foreign"].fillna(False).astype(bool)]
    if len(layers):
        for kid, layer in zip(_text(layers["manifest_digest"]), _text(layers["layer_digest"])):
            if kid and layer:
                refs.setdefault(kid, set()).add(layer)
    marked: set[str] = set()
    for _repo, digest in revisions - doomed:
        marked.add(digest)
        marked |= refs.get(digest, set())
    freed = blobs[~blobs["digest"].isin(list(marked))]
    return freed.reset_index(drop=True)


def reclaimable(tags: pd.DataFrame, layers: pd.DataFrame, plan: pd.DataFrame,
                children: bool = True) -> pd.DataFrame:
    """Bytes the registry's garbage collection frees once ``plan``'s deletes are applied.

    Parameters
    ----------
    tags, layers : DataFrame
        The tags and layers frames of the registry, built with ``attestations=True``
        (see the module docstring for what must be in them).
    plan : DataFrame
        A plan (:func:`~registry_insights.retention.retention_plan`): rows with
        ``repository``, ``tag`` and ``action``.
    children : bool
        Whether the deletes also remove the platform manifests of deleted indexes that no
        remaining tag reaches (what ``RegistryClient.delete``/``delete_many`` do by default).
        With False, deleting an index frees only its own bytes.

    Returns
    -------
    DataFrame
        :data:`RECLAIM_SCHEMA`: one row per repository (most reclaimable first), then the
        registry-wide row :data:`~registry_insights.analysis.TOTAL`, whose
        ``reclaimable_bytes`` counts each freed blob once and is what the blob storage shrinks
        by, next to ``logical_bytes``, the per-tag sum people tend to quote.

    Notes
    -----
    The prediction is against the storage *before* the deletes. A tag-only delete on a
    registry without OCI tag deletion (Distribution 2.8) pushes a small throwaway manifest and
    the ``{}`` empty-config blob, then deletes the manifest: measured from after the deletes,
    garbage collection frees those few hundred bytes per such tag in addition.
    """
    freed = freed_blobs(tags, layers, plan, children)
    doomed = deleted_manifests(tags, plan, children)
    gone_tags = _deleted_tags(plan)
    images = tag_rows(tags)
    names = set(_text(tags["repository"])) | {r for r, _t in gone_tags}
    freed = freed.assign(kind_group=freed["kind"].replace({"index": "manifest"}))
    pairs = list(zip(_text(images["repository"]), _text(images["tag"])))
    deleted_rows = images[[p in gone_tags for p in pairs]]
    rows = []
    for name in sorted(n for n in names if n is not None):
        b = freed[freed["repository"] == name]
        by_kind = b.groupby("kind_group")["size"].sum()
        repo_tags = {t for r, t in pairs if r == name}
        rows.append({
            "repository": name, "tags": len(repo_tags),
            "deleted_tags": len({t for r, t in gone_tags if r == name and t in repo_tags}),
            "deleted_manifests": sum(1 for r, _d in doomed if r == name),
            "logical_bytes": int(deleted_rows.loc[deleted_rows["repository"] == name,
                                                "layer_size"].sum()),
            "reclaimable_bytes": int(b["size"].sum()),
            "layer_bytes": int(by_kind.get("layer", 0)),
            "config_bytes": int(by_kind.get("config", 0)),
            "manifest_bytes": int(by_kind.get("manifest", 0)),
        })
    per_repo = coerce(pd.DataFrame(rows), RECLAIM_SCHEMA) if rows else empty(RECLAIM_SCHEMA)
    per_repo = per_repo.sort_values(["reclaimable_bytes", "repository"], ascending=[False, True])
    distinct = freed.drop_duplicates("digest")
    by_kind = distinct.groupby("kind_group")["size"].sum()
    total = {
        "repository": TOTAL,
        "tags": int(per_repo["tags"].sum()),
        "deleted_tags": int(per_repo["deleted_tags"].sum()),
        "deleted_manifests": int(per_repo["deleted_manifests"].sum()),
        "logical_bytes": int(per_repo["logical_bytes"].sum()),
        "reclaimable_bytes": int(distinct["size"].sum()),
        "layer_bytes": int(by_kind.get("layer", 0)),
        "config_bytes": int(by_kind.get("config", 0)),
        "manifest_bytes": int(by_kind.get("manifest", 0)),
    }
    out = pd.concat([per_repo, coerce(pd.DataFrame([total]), RECLAIM_SCHEMA)],
                    ignore_index=True)
    return coerce(out, RECLAIM_SCHEMA)
