"""Adversarial probes of session 6's changes (65c5b01: preloaded rows held as bytes and handed
to one lookup, peek, stale tags followed by preload, a walk without workers assembling each
tag at once) against the real registry: warm walks of a fleet of every content kind must give
the cold walk's frame with exactly the requests the protocol needs, over caches that are
partly gone, corrupt, written by an earlier version, shared by two clients, or expired while
tags moved, were deleted or had an index's child change."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from requests_cache import SQLiteCache

import registry_insights as ri
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.names import sha256_digest
from registry_insights.testing.demo import FleetBuilder
from tests.support.fleet import push_fleet

pytestmark = pytest.mark.integration

X = "s6b/x"


def _put_image(fleet, repository, layers, created, platform="linux/amd64"):
    """An OCI image without labels: its config bytes are the same in every repository."""
    raw, cfg, _size = fleet.image(repository, layers, created, platform, True, {})
    digest = fleet.client.put_manifest(repository, sha256_digest(raw), raw, mt.OCI_MANIFEST)
    return digest, raw, cfg


@pytest.fixture(scope="module")
def rich(anonymous_registry):
    """s6b/r0, s6b/r1 (push_fleet: indexes every other tag, ``latest`` sharing a digest);
    s6b/x: img and same (one digest), shared (the config of img, in r0 too), nest (an index
    listing an index), multi (two platforms and an attestation), chart (Helm), img's cosign
    signature and SBOM (with its referrers fallback tag, an index)."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        push_fleet(client, "s6b", repositories=2, tags=4, index_every=2)
        fleet = FleetBuilder(client, 61)
        base, extra = fleet.layer(3_000, "s6b-base"), fleet.layer(2_000, "s6b-extra")
        arm = fleet.layer(1_500, "s6b-arm")
        img, raw, cfg = _put_image(fleet, X, [base], "2026-02-01T00:00:00Z")
        for tag in ("img", "same"):
            client.put_manifest(X, tag, raw, mt.OCI_MANIFEST)
        _d, shared_raw, shared_cfg = _put_image(fleet, "s6b/r0", [base], "2026-02-01T00:00:00Z")
        client.put_manifest("s6b/r0", "shared", shared_raw, mt.OCI_MANIFEST)
        assert shared_cfg == cfg
        fleet.nested_index(X, ["nest"], {"linux/amd64": [base, extra], "linux/arm64": [arm]},
                           {"linux/s390x": [extra]}, "2026-02-02T00:00:00Z")
        fleet.build(X, ["multi"], {"linux/amd64": [extra], "linux/arm64": [arm, extra]},
                    "2026-02-03T00:00:00Z", oci=True, attest=True)
        fleet.helm_chart(X, "chart", "chart", "2026-02-04T00:00:00Z")
        fleet.signature(X, img)
        fleet.sbom(X, {"mediaType": mt.OCI_MANIFEST, "digest": img, "size": len(raw)},
                   "2026-02-05T00:00:00Z")
        repos = ["s6b/r0", "s6b/r1", X]
        pairs = [(r, t) for r in repos for t in client.tags(r)]
    return {"repos": repos, "pairs": pairs, "img": img}


@pytest.fixture(scope="module")
def cold(anonymous_registry, rich, tmp_path_factory):
    """The cold walk's frame (attestations too) and the cache directory it filled."""
    cache = tmp_path_factory.mktemp("s6b-cold") / "cache"
    with ri.RegistryClient(anonymous_registry.url, cache=cache) as client:
        frame = ri.tags_frame(client, repositories=rich["repos"], progress=False,
                              attestations=True)
    assert len(frame) > len(rich["pairs"]) and frame["complete"].all()
    return frame, cache


def _warm_copy(cold, tmp_path) -> Path:
    where = tmp_path / "cache"
    shutil.copytree(cold[1], where)
    return where


def _counts(client) -> dict[str, int]:
    return {k: v for k, v in client.request_counts.items() if v}


def _frame(url, cache, repos, **kwargs):
    with ri.RegistryClient(url, cache=cache, **kwargs) as client:
        frame = ri.tags_frame(client, repositories=repos, progress=False, attestations=True)
        return frame, _counts(client)


def _sql(cache: Path, query: str, params=()) -> list:
    (db,) = cache.glob("*.sqlite")
    with sqlite3.connect(db) as con:
        rows = con.execute(query, params).fetchall()
        con.commit()
    return rows


def _shape(details):
    return [(d.repository, d.tag, d.digest, d.media_type, d.size, d.complete, d.subject,
             d.images, d.others) for d in details]


def _warm_then_expired_give_the_cold_frame(url, cache, rich, cold):
    """A warm walk over ``cache`` asks nothing; once expired, it asks the tag lists again
    and revalidates the tags' manifests (304), nothing below them; both give the cold
    walk's frame."""
    warm, counts = _frame(url, cache, rich["repos"])
    assert counts == {}
    pd.testing.assert_frame_equal(warm, cold[0])
    time.sleep(0.3)
    expired, counts = _frame(url, cache, rich["repos"], freshness=0.2)
    assert counts == {"ping": 1, "tags": len(rich["repos"]), "manifest": len(rich["pairs"])}
    pd.testing.assert_frame_equal(expired, cold[0])


def test_warm_fresh_and_expired_walks_of_every_content_kind_equal_the_cold_one(
        anonymous_registry, rich, cold, tmp_path):
    cache = _warm_copy(cold, tmp_path)
    _warm_then_expired_give_the_cold_frame(anonymous_registry.url, cache, rich, cold)


def test_details_many_with_repeated_pairs_and_digests_asks_nothing_when_warm(
        anonymous_registry, rich, cold, tmp_path):
    """Every pair twice and one by digest: each preloaded answer is handed to one lookup,
    the repeats read the file; no request, and the details of the cold walk."""
    cache = _warm_copy(cold, tmp_path)
    frame = cold[0]
    # a platform manifest the cold walk read by digest (img itself it read by tag only)
    child = frame[(frame["repository"] == X)
                  & (frame["digest"] != frame["manifest_digest"])]["manifest_digest"].iloc[0]
    pairs = rich["pairs"] + rich["pairs"][::-1] + [(X, child)]
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        want = _shape(client.details_many(pairs, progress=False))
    with ri.RegistryClient(anonymous_registry.url, cache=cache) as client:
        errors: list = []
        got = client.details_many(pairs, progress=False, errors=errors)
        assert _counts(client) == {} and errors == []
        assert _shape(got) == want
        # the same client again: the configs it holds are not asked for, nothing else either
        assert _shape(client.details_many(pairs, progress=False)) == want
        assert _counts(client) == {}
    time.sleep(0.3)
    with ri.RegistryClient(anonymous_registry.url, cache=cache, freshness=0.2) as client:
        got = client.details_many(pairs, progress=False)
        counts = _counts(client)
    assert _shape(got) == want
    # each distinct tag revalidated once or twice (the repeats race on the worker threads),
    # the digest pair never; nothing below the tags
    assert set(counts) == {"ping", "manifest"}
    assert len(rich["pairs"]) <= counts["manifest"] <= 2 * len(rich["pairs"])


def test_a_partly_gone_and_corrupt_cache_asks_for_exactly_what_it_lost(
        anonymous_registry, rich, cold, tmp_path):
    """A platform manifest's row deleted, a shared config's row deleted, a child's row
    holding another manifest's bytes, a tag's row broken in the middle of its JSON: one
    request each (the bad bytes evicted, then fetched), the cold walk's frame."""
    cache = _warm_copy(cold, tmp_path)
    frame = cold[0]
    children = frame[(frame["repository"] == "s6b/r1") & (frame["digest"]
                                                          != frame["manifest_digest"])]
    gone_child, wrong_child, third = sorted(set(children["manifest_digest"]))[:3]
    shared = frame.groupby("config_digest")["tag"].count().idxmax()
    assert _sql(cache, "DELETE FROM content WHERE key = ? RETURNING key",
                (f"GET manifest s6b/r1 {gone_child}",))
    assert _sql(cache, "DELETE FROM content WHERE key = ? RETURNING key",
                (f"GET blob {shared}",))
    (img,) = _sql(cache, "SELECT value FROM content WHERE key = ?",
                  (f"GET manifest s6b/r1 {third}",))
    assert _sql(cache, "UPDATE content SET value = ? WHERE key = ? RETURNING key",
                (img[0], f"GET manifest s6b/r1 {wrong_child}"))
    (key, row), = _sql(cache, "SELECT key, value FROM responses WHERE key LIKE ?",
                       (f"GET manifest {X} multi %",))
    _sql(cache, "UPDATE responses SET value = ? WHERE key = ?",
         (bytes(row).replace(b'"url":"', b'"url":', 1), key))
    warm, counts = _frame(anonymous_registry.url, cache, rich["repos"])
    assert counts == {"ping": 1, "manifest": 3, "blob": 1}
    pd.testing.assert_frame_equal(warm, frame)
    # all of it stored again: the next walk asks nothing
    again, counts = _frame(anonymous_registry.url, cache, rich["repos"])
    assert counts == {}
    pd.testing.assert_frame_equal(again, frame)


def test_a_corrupt_tag_row_in_an_otherwise_fresh_cache_is_fetched_inline(
        anonymous_registry, rich, cold, tmp_path):
    """Preload holds the broken row as found and says the walk needs nothing: the walk runs
    on the calling thread; the lookup misses and fetches that tag there, once."""
    cache = _warm_copy(cold, tmp_path)
    (key, row), = _sql(cache, "SELECT key, value FROM responses WHERE key LIKE ?",
                       (f"GET manifest {X} nest %",))
    _sql(cache, "UPDATE responses SET value = ? WHERE key = ?",
         (bytes(row).replace(b'"headers":[', b'"headers":[[', 1), key))
    before = threading.active_count()
    warm, counts = _frame(anonymous_registry.url, cache, rich["repos"])
    assert counts == {"ping": 1, "manifest": 1}
    assert threading.active_count() == before
    pd.testing.assert_frame_equal(warm, cold[0])


def test_two_clients_on_one_cache_file_walk_warm_at_once(anonymous_registry, rich, cold,
                                                         tmp_path):
    cache = _warm_copy(cold, tmp_path)
    out: dict = {}

    def walk(name, freshness):
        out[name] = _frame(anonymous_registry.url, cache, rich["repos"], freshness=freshness)

    time.sleep(0.3)
    threads = [threading.Thread(target=walk, args=("fresh", 3600.0)),
               threading.Thread(target=walk, args=("expired", 0.2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out["fresh"][1] == {}
    assert out["expired"][1] == {"ping": 1, "tags": len(rich["repos"]),
                                 "manifest": len(rich["pairs"])}
    for name in out:
        pd.testing.assert_frame_equal(out[name][0], cold[0])


def test_a_cache_written_by_the_previous_version_serves_a_warm_walk_whole(
        anonymous_registry, rich, cold, previous_code, tmp_path):
    """Rows of CachedResponse (e487493) in responses: preload decodes them, peek reads their
    bodies and freshness, the walk runs inline and asks nothing; expired, it revalidates the
    tags only."""
    cache = tmp_path / "cache"
    code = (f"import registry_insights as ri\n"
            f"assert ri.__file__.startswith({str(previous_code)!r})\n"
            f"with ri.RegistryClient({anonymous_registry.url!r}, cache={str(cache)!r}) as c:\n"
            f"    ri.tags_frame(c, repositories={rich['repos']!r}, progress=False)\n")
    import os

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(previous_code)), timeout=120,
                          cwd=previous_code)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [bytes(v) for (v,) in _sql(cache, "SELECT value FROM responses")]
    assert rows and not any(v.startswith(b'{"status":') for v in rows)  # all CachedResponse
    _warm_then_expired_give_the_cold_frame(anonymous_registry.url, cache, rich, cold)


M = "s6b/mut"


def test_an_expired_walk_follows_tags_that_moved_went_or_changed_below(
        anonymous_registry, tmp_path):
    """Between a cold walk and an expired one: mv points to a new image (new config), idx
    to an index one of whose children changed, cfg to an image with another config (the
    config preload read for the stale tag is never used), gone is deleted. The expired walk
    of the old pairs gives what a walk without cache gives now, gone as an error, with one
    request per tag plus what is new."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 62)
        a, b, c = (fleet.layer(1_000 + i, f"s6b-mut-{i}") for i in range(3))
        imgs = {}
        for name, layers, when in (("mv", [a], "2026-03-01T00:00:00Z"),
                                   ("gone", [b], "2026-03-02T00:00:00Z"),
                                   ("cfg", [c], "2026-03-03T00:00:00Z")):
            digest, raw, _cfg = _put_image(fleet, M, layers, when)
            client.put_manifest(M, name, raw, mt.OCI_MANIFEST)
            imgs[name] = digest
        arm = _put_image(fleet, M, [c], "2026-03-04T00:00:00Z", "linux/arm64")
        amd = _put_image(fleet, M, [a], "2026-03-04T00:00:00Z")

        def index(entries):
            raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
                {"mediaType": mt.OCI_MANIFEST, "digest": d, "size": len(r),
                 "platform": {"os": "linux", "architecture": p}}
                for (d, r, _c), p in entries]}).encode()
            client.put_manifest(M, "idx", raw, mt.OCI_INDEX)

        index([(amd, "amd64"), (arm, "arm64")])
    pairs = [(M, t) for t in ("cfg", "gone", "idx", "mv")]
    cache = tmp_path / "cache"
    with ri.RegistryClient(anonymous_registry.url, cache=cache) as client:
        assert len(client.details_many(pairs, progress=False)) == 4
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 63)
        d = fleet.layer(1_100, "s6b-mut-new")
        _new, raw, _cfg = _put_image(fleet, M, [d], "2026-03-05T00:00:00Z")
        client.put_manifest(M, "mv", raw, mt.OCI_MANIFEST)
        _new, raw, _cfg = _put_image(fleet, M, [c], "2026-03-06T00:00:00Z")
        client.put_manifest(M, "cfg", raw, mt.OCI_MANIFEST)
        arm2 = _put_image(fleet, M, [d], "2026-03-07T00:00:00Z", "linux/arm64")
        index([(amd, "amd64"), (arm2, "arm64")])
        client.delete(M, digest=imgs["gone"])
        want_errors: list = []
        want = _shape(client.details_many(pairs, progress=False, errors=want_errors))
    assert [e.reference for e in want_errors] == ["gone"] and len(want) == 3
    time.sleep(0.3)
    with ri.RegistryClient(anonymous_registry.url, cache=cache, freshness=0.2) as client:
        errors: list = []
        got = client.details_many(pairs, progress=False, errors=errors)
        counts = _counts(client)
    assert _shape(got) == want
    assert [(e.reference, e.status) for e in errors] == [("gone", 404)]
    # 4 tags (3 answered 200 with the new bytes, gone 404), idx's new child, 3 new configs
    assert counts == {"ping": 1, "manifest": 5, "blob": 3}


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_a_warm_walk_over_a_backend_passed_in_asks_nothing(anonymous_registry, rich,
                                                           tmp_path, kind):
    from requests_cache import BaseCache

    pairs = rich["pairs"]
    memory = BaseCache()

    def backend():
        return SQLiteCache(str(tmp_path / "mine.sqlite")) if kind == "sqlite" else memory

    with ri.RegistryClient(anonymous_registry.url, cache=backend()) as client:
        want = _shape(client.details_many(pairs, progress=False))
    with ri.RegistryClient(anonymous_registry.url, cache=backend()) as client:
        assert _shape(client.details_many(pairs, progress=False)) == want
        assert _counts(client) == {}


def test_one_client_walks_cold_then_warm_then_expired(anonymous_registry, rich, cold,
                                                      tmp_path):
    """One client, one empty cache: the cold walk streams (the cache assumed cold, what it
    writes flushed), the second walk of the same client reads all of it back (nothing
    asked), the third, its freshness gone, revalidates the tags only."""
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path / "cache") as client:
        first = ri.tags_frame(client, repositories=rich["repos"], progress=False,
                              attestations=True)
        before = _counts(client)
        second = ri.tags_frame(client, repositories=rich["repos"], progress=False,
                               attestations=True)
        assert _counts(client) == before
        time.sleep(0.3)
        client.cache.freshness = 0.2
        third = ri.tags_frame(client, repositories=rich["repos"], progress=False,
                              attestations=True)
        after = _counts(client)
    for frame in (first, second, third):
        pd.testing.assert_frame_equal(frame, cold[0])
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)} == \
        {"tags": len(rich["repos"]), "manifest": len(rich["pairs"])}
