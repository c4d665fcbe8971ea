"""Deletes against real registries (Debian's docker-registry, CNCF Distribution 2.8.2):
tag-only deletes, deletes disabled, push refused, batches, and garbage collection freeing exactly
the bytes :func:`registry_insights.reclaimable` predicted."""

from __future__ import annotations

import pytest

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL
from registry_insights.registry.deletes import EMPTY_JSON_DIGEST
from registry_insights.testing.demo import DemoRegistry, FleetBuilder

pytestmark = pytest.mark.integration


def build(client, repository, tags, seed=1, multiarch=False, oci=True, created=None):
    """Push one image (or a two-platform index) under ``tags``; return its digest."""
    fleet = FleetBuilder(client, seed)
    base = fleet.layer(3_000, f"{repository}-base-{seed}")
    app = fleet.layer(1_000, f"{repository}-app-{seed}")
    platforms = {"linux/amd64": [base, app]}
    if multiarch:
        platforms["linux/arm64"] = [fleet.layer(2_500, f"{repository}-arm-{seed}"), app]
    return fleet.build(repository, tags, platforms, created or f"2026-01-{seed:02d}T00:00:00Z",
                       oci=oci)


def total(frame):
    return int(frame.loc[frame["repository"] == TOTAL, "reclaimable_bytes"].iloc[0])


def test_anonymous_deleting_one_of_three_sibling_tags(anonymous_registry, tmp_path):
    repo = "delete/siblings"
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path / "cache") as client:
        digest = build(client, repo, ["a", "b", "c"])
        assert client.tags(repo) == ["a", "b", "c"]
        assert client.manifest(repo, "a").digest == digest  # now cached by tag
        before = dict(client.request_counts)
        assert client.delete(repo, tag="a") == ["a"]
        # Distribution refused the tag delete; the tag was moved to a throwaway and that deleted
        assert client.request_counts["upload"] > before.get("upload", 0)
        assert client.tags(repo) == ["b", "c"]  # no stale tag list
        with pytest.raises(ri.NotFound):
            client.manifest(repo, "a")  # no stale manifest by tag
        for tag in ("b", "c"):
            assert client.head_manifest(repo, tag).digest == digest
            layout = client.pull(repo, tag, tmp_path / tag, progress=False)
            assert (layout / "index.json").exists()
        with pytest.raises(ri.NotFound):
            client.pull(repo, "a", tmp_path / "a", progress=False)
        # the throwaway manifest is gone; the empty config blob it used stays until GC
        assert client.blob_exists(repo, EMPTY_JSON_DIGEST)
        # deleting by digest takes every remaining tag with it, and says which
        assert client.delete(repo, digest=digest) == ["b", "c"]
        assert client.tags(repo) == []
        with pytest.raises(ri.NotFound):
            client.manifest(repo, digest)  # the by-digest cache entry was dropped too
        with pytest.raises(ri.NotFound):
            client.delete(repo, tag="b")
        with pytest.raises(ri.InvalidReference, match="exactly one"):
            client.delete(repo)


def test_anonymous_lone_index_tag_goes_with_its_platform_manifests(anonymous_registry):
    repo = "delete/index"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        keep = build(client, repo, ["keep"], seed=1, multiarch=True)
        gone = build(client, repo, ["gone"], seed=2, multiarch=True)
        kept_children = [d.digest for d in client.manifest(repo, keep).manifests]
        children = [d.digest for d in client.manifest(repo, gone).manifests]
        assert client.delete(repo, tag="gone") == ["gone"]
        for child in children:
            with pytest.raises(ri.NotFound):
                client.manifest(repo, child)
        for child in kept_children:  # another index still lists these: left alone
            assert client.manifest(repo, child).digest == child
        assert [i.platform for i in client.tag_details(repo, "keep").images] == [
            "linux/amd64", "linux/arm64"]


def test_anonymous_tag_on_a_platform_manifest_is_removed_alone(anonymous_registry):
    repo = "delete/platform-tag"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        index = build(client, repo, ["multi"], seed=4, multiarch=True)
        amd = client.manifest(repo, index).manifests[0].digest
        child = client.manifest(repo, amd)
        client.put_manifest(repo, "amd-only", child.raw, child.media_type)
        # no sibling tag, but deleting the digest would break "multi": removed alone
        results = client.delete_many([(repo, "amd-only")])
        assert results[0].status == "deleted"
        assert "index tags ['multi']" in results[0].message
        assert client.tags(repo) == ["multi"]
        assert client.manifest(repo, amd).digest == amd
        assert len(client.tag_details(repo, "multi").images) == 2
        tags = ri.tags_frame(client, [repo], progress=False)
        plan = ri.retention_plan(tags, delete_regex="multi")
        assert ri.reclaim.deleted_manifests(tags, plan) == {
            (repo, index), *((repo, d.digest) for d in client.manifest(repo, index).manifests)}


def test_deletes_disabled_raise_unsupported_and_delete_nothing(make_registry):
    handle = make_registry("anonymous", delete_enabled=False)
    repo = "nodelete/app"
    with ri.RegistryClient(handle.url, cache=None) as client:
        shared = build(client, repo, ["a", "b"], seed=1)
        lone = build(client, repo, ["solo"], seed=2)
        for kwargs in ({"tag": "a"}, {"tag": "solo"}, {"digest": lone}):
            with pytest.raises(ri.Unsupported, match="deletes are disabled") as info:
                client.delete(repo, **kwargs)
            assert info.value.status == 405
            assert "nothing was deleted" in str(info.value)
        with pytest.raises(ri.Unsupported):
            client.delete_many([(repo, "solo")])
        assert client.tags(repo) == ["a", "b", "solo"]
        assert client.head_manifest(repo, "a").digest == shared


def test_token_push_refused_lists_siblings_and_deletes_nothing(make_registry):
    handle = make_registry("token")
    repo = "nopush/app"
    with ri.RegistryClient(handle.url, username=handle.username, password=handle.password,
                           cache=None) as pusher:
        digest = build(pusher, repo, ["a", "b", "c"])
    server = handle.token_server
    grant = server.grant
    server.grant = lambda identity, scopes: [
        {**entry, "actions": [a for a in entry["actions"] if a != "push"]}
        for entry in grant(identity, scopes)
    ]
    with ri.RegistryClient(handle.url, username=handle.username, password=handle.password,
                           cache=None) as client:
        with pytest.raises(ri.RegistryError) as info:
            client.delete(repo, tag="a")
        message = str(info.value)
        assert "['b', 'c']" in message and "Nothing was deleted" in message
        assert "push rights" in message
        assert client.tags(repo) == ["a", "b", "c"]
        assert {client.head_manifest(repo, t).digest for t in "abc"} == {digest}


def test_anonymous_delete_many_reports_each_item(anonymous_registry):
    repo = "delete/many"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        old = build(client, repo, ["old", "old-alias"], seed=1)
        moved = build(client, repo, ["moved"], seed=2)
        build(client, repo, ["keep", "keep-alias"], seed=3)
        results = client.delete_many([
            (repo, "old", old), (repo, "old-alias"),      # every tag of a digest: one delete
            (repo, "moved", old),                          # points elsewhere now: left alone
            (repo, "keep-alias"),                          # a sibling stays: tag only
            (repo, "never-was"),                           # 404: reported, not fatal
            ("delete/no-such-repo", "x"),
        ])
        assert [r.status for r in results] == [
            "deleted", "deleted", "changed", "deleted", "absent", "absent"]
        assert all(r.ok for r in results)
        assert "kept for tags ['keep']" in results[3].message
        assert client.tags(repo) == ["keep", "moved"]
        assert client.head_manifest(repo, "moved").digest == moved
        with pytest.raises(ri.NotFound):
            client.manifest(repo, old)
        again = client.delete_many([(repo, "old")])
        assert again[0].status == "absent"


def test_anonymous_index_delete_frees_what_gc_frees(make_registry):
    """Distribution's GC (no --delete-untagged) keeps an index's platform manifests, and their
    blobs, when only the index is deleted; deleting them too frees everything."""
    handle = make_registry("anonymous")
    server = handle.server
    with ri.RegistryClient(handle.url, cache=None) as client:
        build(client, "gc/app", ["one"], seed=1, multiarch=True)
        build(client, "gc/app", ["two"], seed=2, multiarch=True)
        build(client, "gc/app", ["three"], seed=3)
        for tag, children in (("one", False), ("two", True)):
            inv = ri.fetch_inventory(client, progress=False)
            tags, layers = inv.tags(attestations=True), inv.layers(attestations=True)
            plan = ri.retention_plan(tags, delete_regex=tag)
            predicted = total(ri.reclaimable(tags, layers, plan, children=children))
            before = server.blob_bytes()
            results = client.delete_many(ri.deletions(plan), children=children)
            assert [r.status for r in results] == ["deleted"]
            server.garbage_collect()
            assert before - server.blob_bytes() == predicted
            index_size = int(tags.loc[tags["tag"] == tag, "size"].iloc[0])
            if not children:  # only the index's own bytes
                assert predicted == index_size
            else:  # the index, both platform manifests, their configs and own layers
                assert predicted > index_size + 3_000 + 2_500
        assert client.tags("gc/app") == ["three"]
        assert client.tag_details("gc/app", "three").images[0].layer_size > 0


def test_demo_plan_frees_exactly_the_predicted_bytes():
    with DemoRegistry() as demo:
        with demo.client(cache=None) as client:
            inv = ri.fetch_inventory(client, progress=False)
            tags, layers = inv.tags(attestations=True), inv.layers(attestations=True)
            plan = ri.retention_plan(tags, keep_last=5)
            summary = ri.reclaimable(tags, layers, plan)
            predicted = total(summary)
            naive = int(summary.loc[summary["repository"] == TOTAL, "logical_bytes"].iloc[0])
            assert 0 < predicted < naive / 10
            before = demo.server.blob_bytes()
            results = client.delete_many(ri.deletions(plan))
            assert {r.status for r in results} == {"deleted"}
            assert len(results) == (plan["action"] == "delete").sum()
            demo.server.garbage_collect()
            assert before - demo.server.blob_bytes() == predicted
            # what was kept still reads, and nothing was freed that it needs
            after = ri.fetch_inventory(client, progress=False)
            kept = plan.loc[plan["action"] == "keep", ["repository", "tag"]]
            assert sorted(map(tuple, kept.to_numpy())) == sorted(
                {(d.repository, d.tag) for d in after.details})
            kept_layers = after.layers(attestations=True)
            kept_layers = kept_layers[~kept_layers["foreign"]][["repository", "layer_digest"]]
            pairs = list(dict.fromkeys(map(tuple, kept_layers.to_numpy())))
            assert all(client.map(lambda p: client.blob_exists(*p), pairs))
