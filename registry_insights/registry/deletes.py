"""Deleting tags and manifests on a live registry, by the one rule of
:mod:`~registry_insights.registry.delete_plan`.

Every decision is made on a fresh read (OCI distribution-spec, "Listing tags", "Deleting
manifests"): every page of the tag list and a HEAD per tag go to the registry, never to the
cache; the indexes that could reach a digest are read to any depth (by digest: immutable, so the
cache may answer). Right before the deletes the tags are read again, and a digest that gained a
tag nobody asked for is left alone. Only then:

- a manifest whose every tag is asked for, and that no surviving tag reaches, is deleted by
  digest (``DELETE /v2/<name>/manifests/<digest>``);
- a tag whose digest must stay is removed alone: the OCI tag delete where the registry has it,
  else (CNCF Distribution 2.8 answers 400 ``DIGEST_INVALID``) the tag is moved to a unique
  throwaway manifest which is then deleted by digest (needs push rights);
- with ``children``, what deleted indexes list (any depth) and no surviving tag reaches goes too.

A DELETE is never retried blindly: after a 5xx or a lost connection the manifest is looked up
(HEAD) and, if gone, reported "deleted (answer lost)". What the registry refuses once for all
(deletes disabled: 405 ``UNSUPPORTED``; no tag deletion: 400/405) is remembered per client.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidReference, NotFound, RegistryError, Unsupported
from ..progress import progress_bar
from . import mediatypes as mt
from .delete_plan import DeletePlan, plan_deletes, reachable
from .models import Descriptor
from .names import validate_digest, validate_repository, validate_tag

if TYPE_CHECKING:
    from .client import RegistryClient

log = logging.getLogger("registry_insights")

#: ``{}``, the OCI empty descriptor's blob (image-spec "Guidance for an empty descriptor").
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#: Annotation of the throwaway manifests a tag is moved to before its deletion.
THROWAWAY_ANNOTATION = "io.github.registry-insights.deleted-tag"
#: Index depth followed when reading what a tag reaches.
MAX_INDEX_DEPTH = 8


def delete_scope(repository: str) -> str:
    return f"repository:{repository}:delete"


@dataclass(frozen=True)
class DeleteResult:
    """What :meth:`RegistryClient.delete_many` did with one tag.

    ``status``: ``"deleted"``, ``"absent"`` (already gone: 404), ``"changed"`` (the tag points
    to another digest than planned, or its digest gained a tag nobody asked for: left alone) or
    ``"failed"``; ``message`` says more.
    """

    repository: str
    tag: str
    digest: str | None
    status: str
    message: str = ""

    @property
    def ok(self) -> bool:
        """True unless the delete failed."""
        return self.status != "failed"


@dataclass
class RepositoryState:
    """A fresh read of one repository: tag -> descriptor, index digest -> listed digests."""

    tags: dict[str, Descriptor]
    children: dict[str, list[str]]

    def digests(self) -> dict[str, str]:
        return {t: d.digest for t, d in self.tags.items()}


class Deleter:
    """The deletes of one client (remembers what the registry refuses once for all)."""

    def __init__(self, client: RegistryClient):
        self.client = client
        self._lock = threading.Lock()
        self._disabled: Unsupported | None = None
        self._tag_delete = True  # until the registry refuses the OCI tag delete

    # -- reading -----------------------------------------------------------------------------
    def read(self, repository: str) -> RepositoryState:
        """Every tag of ``repository`` (every page, asked fresh) and what it points to (a fresh
        HEAD per tag), with the indexes those reach, to any depth."""
        client = self.client
        names = client.tags(repository, fresh=True)
        heads = client.map(lambda t: self._head(repository, t), names)
        tags = {t: d for t, d in zip(names, heads) if d is not None}
        children: dict[str, list[str]] = {}
        frontier = [d for d in {d.digest: d for d in tags.values()}.values()]
        for _depth in range(MAX_INDEX_DEPTH):
            todo = [d for d in frontier
                    if d.digest not in children and _may_be_index(d.media_type)]
            if not todo:
                break
            manifests = client.map(lambda d: client.manifest(repository, d.digest), todo)
            frontier = []
            for desc, manifest in zip(todo, manifests):
                children[desc.digest] = [c.digest for c in manifest.manifests] \
                    if manifest.is_index else []
                frontier += manifest.manifests if manifest.is_index else []
        return RepositoryState(tags, children)

    def _head(self, repository: str, tag: str) -> Descriptor | None:
        try:
            return self.client.head_manifest(repository, tag)
        except NotFound:
            return None

    # -- one delete --------------------------------------------------------------------------
    def delete(self, repository: str, tag: str | None, digest: str | None,
               children: bool, force: bool = False) -> list[str]:
        """See :meth:`RegistryClient.delete`."""
        validate_repository(repository)
        if (tag is None) == (digest is None):
            raise InvalidReference("delete needs exactly one of tag= or digest=")
        self._check_enabled()
        if digest is not None:
            validate_digest(digest)
            state = self.read(repository)
            self.client.head_manifest(repository, digest)  # NotFound: nothing to delete
            self._children_of(repository, state, digest)
            plan = plan_deletes(state.digests(), state.children, digests=[digest],
                                with_children=children)
            holders = [t for t in sorted(state.tags) if t not in plan.removed_tags
                       and digest in reachable([state.tags[t].digest], state.children)]
            if holders and not force:
                raise RegistryError(
                    f"{repository}@{digest} is listed by the indexes tagged {holders}: "
                    "deleting it would break them. Nothing was deleted (delete those tags, "
                    "or pass force=True to leave them with a dangling entry)")
        else:
            validate_tag(tag)
            state = self.read(repository)
            if tag not in state.tags:
                raise NotFound(f"tag {repository}:{tag} does not exist; nothing was deleted",
                               status=404, code="MANIFEST_UNKNOWN")
            plan = plan_deletes(state.digests(), state.children, [tag], with_children=children)
        fresh = self._recheck(repository, state, plan)
        for target in plan.manifests:
            self._delete_manifest(repository, target)
        for name in plan.untag:
            self._untag(repository, name, fresh.tags.get(name, state.tags[name]),
                        _kept_for(plan, name, state.tags))
        self._delete_children(repository, plan)
        self.client.cache.invalidate(repository, (*plan.removed_tags, *plan.deleted))
        return sorted(plan.removed_tags)

    def _children_of(self, repository: str, state: RepositoryState, digest: str) -> None:
        """Make sure ``state.children`` knows what the manifest ``digest`` lists (any depth),
        also when no tag points to it."""
        frontier = [digest]
        for _depth in range(MAX_INDEX_DEPTH):
            todo = [d for d in frontier if d not in state.children]
            if not todo:
                return
            frontier = []
            for d in todo:
                manifest = self.client.manifest(repository, d)
                state.children[d] = [c.digest for c in manifest.manifests] \
                    if manifest.is_index else []
                frontier += state.children[d]

    def _gained(self, repository: str, plan: DeletePlan
                ) -> tuple[RepositoryState, dict[str, list[str]]]:
        """Read the tags again right before deleting: the fresh state, and the digests to
        delete that gained a tag the plan does not remove (CI retagged them meanwhile)."""
        again = self.read(repository)
        removed = set(plan.removed_tags)
        gained = {}
        for target in plan.manifests:
            newcomers = sorted(t for t, d in again.tags.items()
                               if d.digest == target and t not in removed)
            if newcomers:
                gained[target] = newcomers
        return again, gained

    def _recheck(self, repository: str, state: RepositoryState,
                 plan: DeletePlan) -> RepositoryState:
        """:meth:`_gained`; any gain means nothing is deleted."""
        if not plan.manifests:
            return state
        again, gained = self._gained(repository, plan)
        if gained:
            what = "; ".join(f"{repository}@{target} gained the tags {newcomers}"
                             for target, newcomers in gained.items())
            raise RegistryError(f"{what} since it was read; nothing was deleted (read the "
                                "registry again and decide anew)")
        return again

    # -- many deletes ------------------------------------------------------------------------
    def delete_many(self, items: Iterable[tuple], children: bool, progress: bool | None,
                    on_result: Callable[[DeleteResult], None] | None = None
                    ) -> list[DeleteResult]:
        """See :meth:`RegistryClient.delete_many`."""
        wanted: list[tuple[str, str, str | None]] = []
        for item in items:
            repository, tag, *rest = item
            expected = rest[0] if rest and rest[0] else None
            validate_repository(repository)
            validate_tag(tag)
            if expected is not None:
                validate_digest(expected)
            wanted.append((repository, tag, expected))
        results: list[DeleteResult | None] = [None] * len(wanted)
        by_repository: dict[str, list[int]] = {}
        for i, (repository, _tag, _expected) in enumerate(wanted):
            by_repository.setdefault(repository, []).append(i)
        if wanted:
            self._check_enabled()
        bar = progress_bar(len(wanted), "deleting", progress, unit="tag")
        try:
            for repository, indices in by_repository.items():
                outcome = self._delete_in(repository, [wanted[i][1:] for i in indices],
                                          children, on_result)
                for i, result in zip(indices, outcome):
                    results[i] = result
                bar.update(len(indices))
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _delete_in(self, repository: str, items: list[tuple[str, str | None]],
                   children: bool, on_result=None) -> list[DeleteResult]:
        """The items of one repository, in their order."""
        def result(tag, digest, status, message):
            return DeleteResult(repository, tag, digest, status, message)

        out = _Outcomes(on_result)
        try:
            state = self.read(repository)
        except (NotFound, RegistryError) as exc:
            if isinstance(exc, Unsupported):
                raise
            for t, e in items:
                out[t] = (result(t, e, "absent", f"repository {repository} not found")
                          if isinstance(exc, NotFound) else
                          result(t, e, "failed", f"could not read the tags: {exc}"))
            return [out[t] for t, _e in items]
        asked = []
        for tag, expected in items:
            desc = state.tags.get(tag)
            if desc is None:
                out[tag] = result(tag, expected, "absent", "tag not found (already deleted?)")
            elif expected is not None and desc.digest != expected:
                out[tag] = result(tag, expected, "changed",
                                  f"tag now points to {desc.digest}, not {expected}: left alone")
            else:
                asked.append(tag)
        plan = plan_deletes(state.digests(), state.children, asked, with_children=children)
        try:
            fresh = self._recheck_many(repository, state, plan, out)
        except Unsupported:
            raise
        except RegistryError as exc:
            for tag in asked:
                out[tag] = result(tag, state.tags[tag].digest, "failed",
                                  f"could not read the tags again: {exc}")
            return [out[t] for t, _e in items]
        done: list[str] = []
        for target in plan.manifests:
            tags_on = [t for t in asked if state.tags[t].digest == target and t not in out]
            if not tags_on:
                continue
            status, message = self._try(lambda d=target: self._delete_manifest(repository, d),
                                        f"manifest {target} deleted")
            if status != "failed":
                done += [target, *tags_on]
            for tag in tags_on:
                out[tag] = result(tag, target, status, message)
        for tag in plan.untag:
            if tag in out:
                continue
            kept_for = _kept_for(plan, tag, state.tags)
            desc = fresh.tags.get(tag, state.tags[tag])
            status, message = self._try(
                lambda t=tag, d=desc, k=kept_for: self._untag(repository, t, d, k),
                f"tag only; {desc.digest} kept for {kept_for}")
            out[tag] = result(tag, desc.digest, status, message)
            done.append(tag)
        try:
            done += self._delete_children(repository, plan)
        except Unsupported:
            raise
        except RegistryError as exc:
            log.warning("platform manifests of deleted indexes in %s not deleted: %s",
                        repository, exc)
        if done:
            self.client.cache.invalidate(repository, tuple(dict.fromkeys(done)))
        return [out[t] for t, _e in items]

    def _recheck_many(self, repository: str, state: RepositoryState, plan: DeletePlan,
                      out: dict[str, DeleteResult]) -> RepositoryState:
        """:meth:`_gained`, per digest: a digest that gained a tag is left alone (its asked
        tags get ``"changed"``)."""
        if not plan.manifests:
            return state
        again, gained = self._gained(repository, plan)
        for target, newcomers in gained.items():
            for tag in plan.removed_tags:
                if state.tags[tag].digest == target:
                    out[tag] = DeleteResult(
                        repository, tag, target, "changed",
                        f"{target} gained the tags {newcomers} since it was read: left alone")
        return again

    @staticmethod
    def _try(action, success: str) -> tuple[str, str]:
        try:
            note = action()
            return "deleted", f"{success} ({note})" if note else success
        except NotFound:
            return "absent", "already gone"
        except Unsupported:
            raise
        except RegistryError as exc:
            return "failed", str(exc)

    # -- the requests ------------------------------------------------------------------------
    def _check_enabled(self) -> None:
        if self._disabled is not None:
            raise self._disabled

    def _delete_manifest(self, repository: str, digest: str) -> str | None:
        """``DELETE /v2/<name>/manifests/<digest>``; returns a note when the answer was lost
        but the manifest is gone. 405 becomes a clear (and remembered) Unsupported."""
        self._check_enabled()
        client = self.client
        try:
            client._transport.request(
                "delete", "DELETE", f"/v2/{repository}/manifests/{digest}",
                scopes=(delete_scope(repository),), ok=(202, 200), cache=False,
            )
            return None
        except Unsupported as exc:
            self._disabled = exc.rewrap(
                f"deletes are disabled on {client.registry} (CNCF Distribution: "
                "storage.delete.enabled is false); nothing was deleted")
            raise self._disabled from None
        except RegistryError as exc:
            if exc.status is not None and exc.status < 500:
                raise
            # a gateway error or a lost connection: was it done anyway?
            try:
                client.head_manifest(repository, digest)
            except NotFound:
                return "answer lost; the registry no longer has it"
            raise

    def _delete_children(self, repository: str, plan: DeletePlan) -> list[str]:
        gone = []
        for child in plan.children:
            try:
                self._delete_manifest(repository, child)
            except NotFound:
                continue
            gone.append(child)
        return gone

    def _untag(self, repository: str, tag: str, target: Descriptor, kept_for: str) -> None:
        """Remove ``tag`` alone while ``target`` stays (for ``kept_for``, e.g. sibling tags).

        OCI tag delete first (unless refused before); where refused, move the tag to a unique
        throwaway manifest and delete that by digest (the tag is put back if that fails).
        """
        client = self.client
        if self._tag_delete:
            try:
                client._transport.request(
                    "delete", "DELETE", f"/v2/{repository}/manifests/{tag}",
                    scopes=(delete_scope(repository),), ok=(202, 200), cache=False,
                )
                client.cache.invalidate(repository, (tag,))
                return
            except RegistryError as exc:
                refused = exc.status in (400, 405) or exc.code in ("UNSUPPORTED",
                                                                    "DIGEST_INVALID")
                if not refused:
                    raise
                if exc.status == 405 or exc.code == "UNSUPPORTED":
                    self._probe_enabled(repository)
                self._tag_delete = False
        original = client.manifest(repository, target.digest)
        raw = json.dumps({
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
            "layers": [],
            "annotations": {THROWAWAY_ANNOTATION: f"{repository}:{tag} {secrets.token_hex(16)}"},
        }, separators=(",", ":")).encode()
        try:
            if not client.blob_exists(repository, EMPTY_JSON_DIGEST):
                client.upload_blob(repository, b"{}", EMPTY_JSON_DIGEST)
            throwaway = client.put_manifest(repository, tag, raw, mt.OCI_MANIFEST)
        except RegistryError as exc:
            raise exc.rewrap(
                f"tag {repository}:{tag} points to {target.digest}, kept for {kept_for}; "
                "this registry has no tag deletion, and moving the tag to a throwaway manifest "
                f"(which needs push rights) was refused ({exc}). Nothing was deleted.",
                RegistryError) from None
        try:
            self._delete_manifest(repository, throwaway)
        except RegistryError as exc:
            client.put_manifest(repository, tag, original.raw, original.media_type)
            raise exc.rewrap(
                f"could not delete the throwaway manifest {throwaway} that {repository}:{tag} "
                f"was moved to ({exc}); the tag was put back on {target.digest}. Nothing was "
                "deleted.") from None
        finally:
            client.cache.invalidate(repository, (tag, throwaway))

    def _probe_enabled(self, repository: str) -> None:
        """Raise (and remember) Unsupported when the registry refuses every delete (probe: a
        digest that cannot exist, which answers 404 where deletes are enabled)."""
        try:
            self._delete_manifest(repository, "sha256:" + "0" * 64)
        except NotFound:
            return


class _Outcomes(dict):
    """Tag -> DeleteResult of one repository; each result is handed to ``on_result`` the moment
    it is decided, so a caller can record it before the next request (an interrupted batch
    still leaves the record of what it did)."""

    def __init__(self, on_result: Callable[[DeleteResult], None] | None):
        super().__init__()
        self._on_result = on_result

    def __setitem__(self, tag: str, result: DeleteResult) -> None:
        super().__setitem__(tag, result)
        if self._on_result is not None:
            self._on_result(result)


def _may_be_index(media_type: str | None) -> bool:
    return not (media_type in mt.IMAGE_MANIFESTS or media_type in mt.SCHEMA1)


def _kept_for(plan: DeletePlan, tag: str, tags: dict[str, Descriptor]) -> str:
    """Why ``tag``'s manifest stays: its sibling tags, else the index tags that reach it."""
    keepers = plan.kept_for.get(tag, ())
    digest = tags[tag].digest
    siblings = [t for t in keepers if t in tags and tags[t].digest == digest]
    if siblings:
        return f"tags {siblings}"
    return f"the index tags {list(keepers)}, which list it"
