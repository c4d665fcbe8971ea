"""Trying to break the streaming walk of issue 14 (``fetch_repositories``): a first walk
(nothing content-addressed in the HTTP cache) must give the same tags frame, the same errors
in the same order and the protocol's minimum of requests as the walk that reads every tag
list first (forced by one config in the cache), whatever the registry does: nested indexes,
children and configs shared between tags and repositories, accessory tags, artifacts without
an image config, paginated / null / empty / duplicated tag lists, answers slowed down so tags
complete out of order, 401s and 404s mid-walk, one worker or two."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.frames.schema import TAGS_SCHEMA
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.names import sha256_digest
from registry_insights.testing.demo import FleetBuilder
from tests.support.proxy import Reply, RewritingProxy, client_for, oci_error, slow

pytestmark = pytest.mark.integration

A, B, NULL, EMPTY = "brk4/a", "brk4/b", "brk4/null", "brk4/empty"
REPOS = [A, B, EMPTY, NULL]


def _put_image(fleet, repository, layers, created, platform="linux/amd64"):
    """An OCI image with no labels (its config bytes are the same in every repository)."""
    raw, cfg, _size = fleet.image(repository, layers, created, platform, True, {})
    digest = fleet.client.put_manifest(repository, sha256_digest(raw), raw, mt.OCI_MANIFEST)
    return digest, len(raw), cfg


def _put_index(client, repository, tag, entries):
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                      "manifests": entries}).encode()
    return client.put_manifest(repository, tag, raw, mt.OCI_INDEX)


@pytest.fixture(scope="module")
def weird(token_registry):
    """brk4/a: img and same (one digest), nest (an index listing an index), multi (two
    platforms and an attestation), chart (a Helm artifact), img's cosign signature and SBOM
    (with the referrers fallback tag, an index), badcfg (a config the proxy says is gone);
    brk4/b: img (the same manifest and config as brk4/a's), idx and idx2 (indexes listing
    the same children, one of them the manifest of img); brk4/empty and brk4/null (their tag
    lists are answered by the proxy)."""
    with client_for(token_registry.url, token_registry) as client:
        fleet = FleetBuilder(client, 41)
        base, extra = fleet.layer(4_000, "brk4-base"), fleet.layer(3_000, "brk4-extra")
        arm = fleet.layer(2_000, "brk4-arm")
        out = {}
        for repo in (A, B):
            digest, size, cfg = _put_image(fleet, repo, [base], "2026-01-01T00:00:00Z")
            client.put_manifest(repo, "img", _raw_of(client, repo, digest), mt.OCI_MANIFEST)
            out[repo, "img"] = (digest, size, cfg)
        img, img_size, shared_cfg = out[A, "img"]
        client.put_manifest(A, "same", _raw_of(client, A, img), mt.OCI_MANIFEST)
        fleet.nested_index(A, ["nest"], {"linux/amd64": [base, extra], "linux/arm64": [arm]},
                           {"linux/s390x": [extra]}, "2026-01-02T00:00:00Z")
        fleet.build(A, ["multi"], {"linux/amd64": [extra], "linux/arm64": [arm, extra]},
                    "2026-01-03T00:00:00Z", oci=True, attest=True)
        fleet.helm_chart(A, "chart", "chart", "2026-01-04T00:00:00Z")
        fleet.signature(A, img)
        fleet.sbom(A, {"mediaType": mt.OCI_MANIFEST, "digest": img, "size": img_size},
                   "2026-01-05T00:00:00Z")
        bad, _size, bad_cfg = _put_image(fleet, A, [arm], "2026-01-06T00:00:00Z")
        client.put_manifest(A, "badcfg", _raw_of(client, A, bad), mt.OCI_MANIFEST)
        other, other_size, _cfg = _put_image(fleet, B, [extra], "2026-01-07T00:00:00Z",
                                             "linux/arm64")
        entries = [{"mediaType": mt.OCI_MANIFEST, "digest": img, "size": img_size,
                    "platform": {"os": "linux", "architecture": "amd64"}},
                   {"mediaType": mt.OCI_MANIFEST, "digest": other, "size": other_size,
                    "platform": {"os": "linux", "architecture": "arm64"}}]
        _put_index(client, B, "idx", entries)
        _put_index(client, B, "idx2", entries[::-1])
        return {"img": img, "shared_cfg": shared_cfg, "bad_cfg": bad_cfg, "other": other}


def _raw_of(client, repository, digest):
    return client.manifest(repository, digest).raw


def _rules(weird, slow=True):
    """The proxy's answers: brk4/empty lists [] and brk4/null ``tags: null``; brk4/a's list
    comes in two pages (Link), listing 'img' twice; bad_cfg is gone; img's manifest in brk4/a
    answers late (tags complete out of input order)."""
    bad_path = f"/v2/{A}/blobs/{weird['bad_cfg']}"

    def rule(request):
        if request.path.startswith(f"/v2/{EMPTY}/tags/list"):
            return _json({"name": EMPTY, "tags": []})
        if request.path.startswith(f"/v2/{NULL}/tags/list"):
            return _json({"name": NULL, "tags": None})
        if request.path == bad_path:
            return oci_error(404, "BLOB_UNKNOWN", "blob unknown")
        if slow and request.path == f"/v2/{A}/manifests/img":
            time.sleep(0.3)
        if slow and request.path.startswith(f"/v2/{B}/tags/list"):
            time.sleep(0.15)
        return None

    def pages(request, reply):
        if not request.path.startswith(f"/v2/{A}/tags/list") or reply.status != 200:
            return reply
        tags = json.loads(reply.body)["tags"]
        if "last=" in request.path:
            return _json({"name": A, "tags": tags + ["img"]})  # a duplicate across pages
        head = tags[:3]
        out = _json({"name": A, "tags": head})
        out.set_header("Link", f'</v2/{A}/tags/list?n=3&last={head[-1]}>; rel="next"')
        return out

    return [rule], [pages]


def _json(data):
    return Reply(200, [("Content-Type", "application/json")], json.dumps(data).encode())


def _walk(proxy, token_registry, cache=None, workers=8, warm=False, repos=REPOS):
    """(tags frame, errors frame, manifest and blob paths asked, streamed?)."""
    if warm:  # one config in the cache: the walk reads every list first
        with client_for(proxy.url, token_registry, cache=cache) as client:
            client.tag_details(B, "img")
    start = len(proxy.log)
    with client_for(proxy.url, token_registry, cache=cache, max_workers=workers) as client:
        streamed = client.cache.holds_no_content()
        inventory = ri.fetch_inventory(client, repos, progress=False)
    reads = [p for _m, p, _s in proxy.log[start:] if "/manifests/" in p or "/blobs/" in p]
    return inventory.tags(attestations=True), inventory.errors, reads, streamed


@pytest.mark.parametrize("workers", [1, 2, 8])
def test_streamed_and_lists_first_walks_agree_on_a_strange_registry(
        proxied, token_registry, weird, tmp_path, workers):
    rules, rewrites = _rules(weird)
    proxied.rules += rules
    proxied.rewrites += rewrites
    tags, errors, reads, streamed = _walk(proxied, token_registry, workers=workers)
    assert streamed
    old_tags, old_errors, old_reads, old_streamed = _walk(
        proxied, token_registry, tmp_path / "c", workers=workers, warm=True)
    assert not old_streamed
    pd.testing.assert_frame_equal(tags.reset_index(drop=True),
                                  old_tags.reset_index(drop=True))
    pd.testing.assert_frame_equal(errors.reset_index(drop=True),
                                  old_errors.reset_index(drop=True))
    # what is in the frames, read back: tags in repository then tag-list order
    listed = list(dict.fromkeys(zip(tags["repository"], tags["tag"])))
    sig = f"sha256-{weird['img'][7:]}"
    assert listed == [(A, "chart"), (A, "img"), (A, "multi"), (A, "nest"), (A, "same"),
                      (A, sig), (A, f"{sig}.sig"), (B, "idx"), (B, "idx2"), (B, "img")]
    assert list(zip(errors["repository"], errors["tag"], errors["code"])) == [
        (A, "badcfg", "BLOB_UNKNOWN")]
    nest = tags[tags["tag"] == "nest"]
    # the inner index is a row of its own (no platform), then its images, then the outer ones
    assert sorted(nest["platform"]) == ["linux/amd64", "linux/arm64", "linux/s390x",
                                        "unknown/unknown"]
    # the protocol's minimum: every manifest and config once, the gone config included (a
    # tag listed twice is one tag: the client's list is a set)
    gone = f"/v2/{A}/blobs/{weird['bad_cfg']}"
    assert len(reads) == len(set(reads))
    assert reads.count(gone) == 1
    # the shared config is asked once in the whole walk, in one of the two repositories
    assert sum(p.endswith(weird["shared_cfg"]) for p in reads) == 1
    # the lists-first walk asks no more (its cache answers a little)
    assert set(old_reads) <= set(reads)
    assert len(old_reads) == len(set(old_reads))


def _registry_threads():
    return [t for t in threading.enumerate() if t.name.startswith("registry")]


def _run_with_deadline(fn, seconds=60):
    """``fn()`` on a thread of its own: (result or None, error or None); fails the test
    rather than hanging when the walk never ends."""
    out = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the walk hangs"
    return out.get("result"), out.get("error")


@pytest.mark.parametrize("where", ["tag list", "top manifest", "child manifest", "config"])
@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_mid_walk_raises_stops_the_walk_and_keeps_what_was_read(
        proxied, token_registry, weird, tmp_path, where, status):
    """brk4/a streams; brk4/b is refused (late) at one of its requests: the walk raises that
    refusal, sends nothing after it, leaves no worker busy and has stored what it read."""
    target = {"tag list": f"/v2/{B}/tags/list",
              "top manifest": f"/v2/{B}/manifests/idx2",
              "child manifest": f"/v2/{B}/manifests/{weird['other']}",
              "config": f"/v2/{B}/blobs/{weird['shared_cfg']}"}[where]
    code = "UNAUTHORIZED" if status == 401 else "DENIED"

    def refuse(request):
        if request.path.startswith(target):
            time.sleep(0.4)
            return oci_error(status, code, "no")
        return None

    proxied.rules.append(refuse)
    if where == "config":  # brk4/b's config must be asked in brk4/b: brk4/a is not walked
        repos = [B]
    else:
        repos = [A, B]
    cache = tmp_path / "cache"
    with client_for(proxied.url, token_registry, cache=cache) as client:
        assert client.cache.holds_no_content()
        _result, error = _run_with_deadline(
            lambda: ri.fetch_inventory(client, repos, progress=False))
        assert isinstance(error, ri.Unauthorized if status == 401 else ri.Denied), error
        assert error.status == status
        sent = len(proxied.log)
        time.sleep(0.3)
        assert len(proxied.log) == sent  # nothing goes on after the walk raised
    assert not _registry_threads()
    if where != "config":  # brk4/a's configs were read before brk4/b's refusal: kept
        with client_for(proxied.url, token_registry, cache=cache) as client:
            assert not client.cache.holds_no_content()


@pytest.mark.parametrize("workers", [1, 8])
def test_an_interrupt_on_the_calling_thread_stops_the_streamed_walk(
        proxied, token_registry, weird, workers):
    """Ctrl-C while the walk drives (brk4/b's list answers late): KeyboardInterrupt comes
    out, the tasks not started are skipped, no request follows and no worker stays busy."""
    import _thread

    proxied.rules.append(slow(f"/v2/{B}/tags/list", 1.0))
    with client_for(proxied.url, token_registry, max_workers=workers) as client:
        timer = threading.Timer(0.4, _thread.interrupt_main)
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            ri.fetch_inventory(client, [A, B], progress=False)
        timer.join()
        sent = len(proxied.log)
        time.sleep(0.3)
        assert len(proxied.log) == sent
        # brk4/b's list came back after the interrupt: none of its tags was asked for
        assert not [p for _m, p, _s in proxied.log if p.startswith(f"/v2/{B}/manifests/")]
    assert not _registry_threads()


def test_an_error_raised_by_list_tags_on_a_worker_comes_out_as_it_is(
        proxied, token_registry, weird):
    """``fetch_repositories`` with a ``list_tags`` that raises (not a ReadError) for one
    repository: that exception, whatever its type, after the running tasks ended."""
    from registry_insights.registry.walk import fetch_repositories

    class Boom(Exception):
        pass

    def list_tags(repository):
        if repository == B:
            time.sleep(0.2)
            raise Boom(repository)
        return client.tags(repository)

    for workers in (1, 2, 8):
        with client_for(proxied.url, token_registry, max_workers=workers) as client:
            errors: list = []
            _result, error = _run_with_deadline(
                lambda errors=errors: fetch_repositories(client, [A, B], list_tags, False,
                                                         errors))
            assert isinstance(error, Boom) and str(error) == B
            assert errors == []
        assert not _registry_threads()


def test_the_bar_of_a_streamed_walk_counts_to_the_tags_found(
        proxied, token_registry, weird, monkeypatch):
    """progress=True on a first walk: the bar starts without a total (None), grows as the
    lists arrive, and ends at the number of tags walked, each counted once."""
    from registry_insights.registry import walk

    bars = []
    real = walk.progress_bar

    def spy(total, desc, progress=None, **kw):
        bar = real(total, desc, progress, **kw)
        bars.append((total, bar))
        return bar

    monkeypatch.setattr(walk, "progress_bar", spy)
    rules, rewrites = _rules(weird, slow=True)
    proxied.rules += rules
    proxied.rewrites += rewrites
    with client_for(proxied.url, token_registry) as client:
        inventory = ri.fetch_inventory(client, REPOS, progress=True)
    (start, bar), = bars
    assert start is None
    tags = inventory.tags(attestations=True)
    walked = len(set(zip(tags["repository"], tags["tag"])))
    assert walked == 10
    assert bar.total == bar.n == walked + 1  # badcfg too: unreadable, yet walked


MANY = [f"brk4m/r{i:02d}" for i in range(48)]


@pytest.fixture(scope="module")
def many(anonymous_registry):
    """48 small repositories: v0 in each one image with the same config everywhere (one
    blob shared by 48 repositories); every fourth also v1, a two-platform index of its own."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 43)
        base, arm = fleet.layer(1_500, "brk4m-base"), fleet.layer(1_200, "brk4m-arm")
        configs = set()

        def push(repo):
            _digest, _size, cfg = _put_image(fleet, repo, [base], "2026-02-01T00:00:00Z")
            client.put_manifest(repo, "v0", _raw_of(client, repo, _digest), mt.OCI_MANIFEST)
            configs.add(cfg)
            if MANY.index(repo) % 4 == 0:
                fleet.build(repo, ["v1"], {"linux/amd64": [base], "linux/arm64": [arm]},
                            "2026-02-02T00:00:00Z", oci=True)

        fleet.push_blobs(MANY[0], [(base.digest, base.data), (arm.digest, arm.data)])
        for repo in MANY:
            push(repo)
        assert len(configs) == 1
        return configs.pop()


@pytest.mark.parametrize("workers", [2, 8])
def test_many_small_repositories_stream_in_any_order_to_the_same_inventory(
        anonymous_registry, many, tmp_path, workers, caplog):
    """Tag lists and tags interleave on the workers, the first repositories' lists answer
    last: the same frames as the lists-first walk, in catalog order, every request once
    (the config 48 repositories share: once), no worker left and no pool overflow."""
    import logging
    import zlib

    def jitter(request):
        if any(request.path.startswith(f"/v2/{r}/tags/list") for r in MANY[:6]):
            time.sleep(0.25)
        else:
            time.sleep((zlib.crc32(request.path.encode()) % 7) / 1000)
        return None

    with RewritingProxy(anonymous_registry.url) as proxy:
        proxy.rules.append(jitter)

        def walk(cache, warm):
            if warm:
                with ri.RegistryClient(proxy.url, cache=cache) as client:
                    client.tag_details(MANY[-1], "v0")
            start = len(proxy.log)
            with ri.RegistryClient(proxy.url, cache=cache, max_workers=workers) as client:
                streamed = client.cache.holds_no_content()
                inventory = ri.fetch_inventory(client, MANY, progress=False)
            reads = [p for _m, p, _s in proxy.log[start:]
                     if "/manifests/" in p or "/blobs/" in p]
            return inventory, reads, streamed

        baseline = _ours()
        with caplog.at_level(logging.WARNING, logger="urllib3"):
            inventory, reads, streamed = walk(None, False)
            assert streamed
            old, old_reads, old_streamed = walk(tmp_path / "c", True)
            assert not old_streamed
        assert _ours() == baseline
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    tags = inventory.tags()
    pd.testing.assert_frame_equal(tags, old.tags())
    assert inventory.errors.empty and old.errors.empty
    assert list(dict.fromkeys(tags["repository"])) == MANY
    assert len(tags) == 48 + 12 * 2
    assert len(reads) == len(set(reads)) == 48 + 12 * 3 + 1 + 12 * 2
    assert sum(p.endswith(many) for p in reads) == 1
    assert len(old_reads) == len(set(old_reads)) and set(old_reads) <= set(reads)


def test_walks_leave_no_thread_behind(anonymous_registry, many):
    """Ten streamed walks, clients closed: as many threads as before."""
    before = _ours()
    for _ in range(10):
        with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
            assert len(ri.fetch_inventory(client, MANY[:8], progress=False).tags()) == 8 + 4
    assert _ours() == before


def _ours():
    """The threads of this process but the proxy's (one per connection, ending after it)."""
    return sorted(t.name for t in threading.enumerate()
                  if "process_request_thread" not in t.name)


DEEP = "brk4deep/x"
LEVELS = 300  # a hostile or broken registry: an index listing an index ... 300 times


@pytest.fixture(scope="module")
def deep(anonymous_registry):
    """brk4deep/x:deep, an index listing an index ... LEVELS deep, then one image;
    brk4deep/x:ok, an image."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 47)
        digest, size, _cfg = _put_image(fleet, DEEP, [fleet.layer(500, "brk4deep")],
                                        "2026-03-01T00:00:00Z")
        client.put_manifest(DEEP, "ok", _raw_of(client, DEEP, digest), mt.OCI_MANIFEST)
        entry = {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": size}
        for _ in range(LEVELS):
            raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                              "manifests": [entry]}).encode()
            digest = client.put_manifest(DEEP, sha256_digest(raw), raw, mt.OCI_INDEX)
            entry = {"mediaType": mt.OCI_INDEX, "digest": digest, "size": len(raw)}
        client.put_manifest(DEEP, "deep", raw, mt.OCI_INDEX)
        return digest


def _deep_walk(url, **kwargs):
    with ri.RegistryClient(url, **kwargs) as client:
        inventory = ri.fetch_inventory(client, [DEEP], progress=False)
        return inventory, dict(client.request_counts)


def _assert_deep_tag_unreadable(inventory):
    errors = inventory.errors
    assert list(errors["tag"]) == ["deep"]
    assert "nest deeper than 8 levels" in errors["message"].iloc[0]
    assert list(inventory.tags()["tag"]) == ["ok"]


def test_a_very_deep_nest_of_indexes_is_one_unreadable_tag_on_threads(anonymous_registry,
                                                                       deep):
    inventory, _counts = _deep_walk(anonymous_registry.url, cache=None, max_workers=4)
    _assert_deep_tag_unreadable(inventory)


@pytest.mark.parametrize("how", ["one worker", "warm cache"])
def test_a_very_deep_nest_of_indexes_is_one_unreadable_tag_inline(anonymous_registry, deep,
                                                                  tmp_path, how):
    # Python's default limit: a library imported by an earlier test may have raised it
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        _deep_inline(anonymous_registry, tmp_path, how)
    finally:
        sys.setrecursionlimit(limit)


def _deep_inline(anonymous_registry, tmp_path, how):
    if how == "one worker":
        inventory, _counts = _deep_walk(anonymous_registry.url, cache=None, max_workers=1)
    else:
        _deep_walk(anonymous_registry.url, cache=tmp_path / "c")
        inventory, counts = _deep_walk(anonymous_registry.url, cache=tmp_path / "c")
        assert counts.get("manifest", 0) == 0  # the cache answers it whole: inline
    _assert_deep_tag_unreadable(inventory)


def test_the_walk_stops_asking_below_the_deepest_nest_it_reads(anonymous_registry, deep):
    """A tag whose indexes nest deeper than MAX_INDEX_DEPTH is unreadable: the walk need not
    ask for the manifests further down (a registry can hold any number of them)."""
    from registry_insights.registry.walk import MAX_INDEX_DEPTH

    inventory, counts = _deep_walk(anonymous_registry.url, cache=None, max_workers=4)
    _assert_deep_tag_unreadable(inventory)
    # 'ok', 'deep', and the indexes down to the level assembling looks at
    assert counts["manifest"] <= 2 + MAX_INDEX_DEPTH + 1


GONE = "brk4gone/x"


@pytest.mark.parametrize("workers", [1, 8])
def test_a_config_gone_under_many_tags_is_asked_for_once(anonymous_registry,
                                                                 tmp_path, workers):
    """Five tags of one image whose config blob answers BLOB_UNKNOWN: each tag is an error,
    and the config is asked once, not once per tag (it was 6 times before 2792c62)."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 53)
        digest, _size, cfg = _put_image(fleet, GONE, [fleet.layer(400, "brk4gone")],
                                        "2026-04-01T00:00:00Z")
        raw = _raw_of(client, GONE, digest)
        tags = [f"t{i}" for i in range(5)]
        for tag in tags:
            client.put_manifest(GONE, tag, raw, mt.OCI_MANIFEST)
    path = f"/v2/{GONE}/blobs/{cfg}"
    with RewritingProxy(anonymous_registry.url) as proxy:
        proxy.rules.append(lambda r: oci_error(404, "BLOB_UNKNOWN", "blob unknown")
                           if r.path == path else None)
        with ri.RegistryClient(proxy.url, cache=None, max_workers=workers) as client:
            inventory = ri.fetch_inventory(client, [GONE], progress=False)
        asked = sum(p == path for _m, p, _s in proxy.log)
    assert list(inventory.errors["tag"]) == tags
    assert set(inventory.errors["code"]) == {"BLOB_UNKNOWN"}
    assert asked == 1, f"the gone config was asked {asked} times"


def test_a_cache_holding_lists_and_manifests_by_tag_only_streams_and_stores_again(
        proxied, token_registry, weird, tmp_path):
    """An earlier session stored tag lists and manifests by tag (nothing content-addressed):
    the walk streams (those answers asked again), writes over them without error, and the
    next walk is answered by the cache alone with the same inventory."""
    cache = tmp_path / "cache"
    with client_for(proxied.url, token_registry, cache=cache) as client:
        for repo in (A, B):
            client.tags(repo)
        client.manifest(B, "idx")
    with client_for(proxied.url, token_registry, cache=cache) as client:
        streamed = client.cache.holds_no_content()
        first = ri.fetch_inventory(client, [A, B], progress=False)
    sent = len(proxied.log)
    with client_for(proxied.url, token_registry, cache=cache) as client:
        assert not client.cache.holds_no_content()
        second = ri.fetch_inventory(client, [A, B], progress=False)
    pd.testing.assert_frame_equal(first.tags(attestations=True), second.tags(attestations=True))
    pd.testing.assert_frame_equal(first.errors, second.errors)
    assert [p for _m, p, _s in proxied.log[sent:] if p != "/v2/"] == []
    assert streamed  # (last: the walks above must agree whichever way the first went)


@contextlib.contextmanager
def _walking_client(proxied, token_registry, tmp_path, warm: bool):
    """A client of the proxy with a cache of its own; ``warm``: one config stored first, so
    that its walk reads every list first instead of streaming."""
    cache = tmp_path / "c"
    if warm:
        with client_for(proxied.url, token_registry, cache=cache) as client:
            client.tag_details(A, "img")
    with client_for(proxied.url, token_registry, cache=cache) as client:
        assert client.cache.holds_no_content() is not warm
        yield client


@pytest.mark.parametrize("warm", [False, True], ids=["streamed", "lists first"])
def test_a_tag_list_naming_an_invalid_tag_raises_the_same_either_way(
        proxied, token_registry, weird, tmp_path, warm):
    """A registry whose tag list holds a name that is no tag ('bad tag!'): the walk raises
    InvalidReference naming it, streamed or not, and no worker stays busy."""
    def bad(request, reply):
        if request.path.startswith(f"/v2/{B}/tags/list") and reply.status == 200:
            data = json.loads(reply.body)
            return _json({**data, "tags": [*data["tags"], "bad tag!"]})
        return reply

    proxied.rewrites.append(bad)
    with _walking_client(proxied, token_registry, tmp_path, warm) as client:
        _result, error = _run_with_deadline(
            lambda: ri.fetch_inventory(client, [A, B], progress=False))
    assert isinstance(error, ri.InvalidReference), error
    assert "bad tag!" in str(error)
    assert not _registry_threads()


@pytest.mark.parametrize("warm", [False, True], ids=["streamed", "lists first"])
def test_transient_5xx_and_a_redirected_list_change_nothing(
        proxied, token_registry, weird, tmp_path, warm):
    """The first answer to brk4/b's list and to one manifest is a 503 (retried), brk4/a's
    list is redirected (307) to the same list: the inventory of a clean walk."""
    with client_for(proxied.url, token_registry) as client:
        clean = ri.fetch_inventory(client, [A, B], progress=False)
    failed = set()

    def flaky(request):
        if request.path.startswith((f"/v2/{B}/tags/list", f"/v2/{B}/manifests/idx2")) \
                and request.path not in failed:
            failed.add(request.path)
            return oci_error(503, "UNAVAILABLE", "try again", [("Retry-After", "0")])
        if request.path == f"/v2/{A}/tags/list":
            return Reply(307, [("Location", f"/v2/{A}/tags/list?n=1000")])
        return None

    proxied.rules.append(flaky)
    with _walking_client(proxied, token_registry, tmp_path, warm) as client:
        got = ri.fetch_inventory(client, [A, B], progress=False)
    assert len(failed) == 2
    pd.testing.assert_frame_equal(got.tags(attestations=True), clean.tags(attestations=True))
    pd.testing.assert_frame_equal(got.errors, clean.errors)


def test_two_walks_at_once_on_one_client_give_what_each_gives_alone(
        proxied, token_registry, weird, tmp_path):
    """One client (one pool, one HTTP cache) walked from two threads at once, the cache empty
    at the start (both stream; each one's end forgets the other's cold-cache mode): each
    inventory is the one a walk alone gives, and nothing is asked twice more than alone."""
    rules, rewrites = _rules(weird)
    proxied.rules += rules
    proxied.rewrites += rewrites
    with client_for(proxied.url, token_registry) as client:
        alone = {tuple(r): ri.fetch_inventory(client, r, progress=False)
                 for r in ([A, B], [B, NULL])}
    with client_for(proxied.url, token_registry, cache=tmp_path / "c") as client:
        results = {}

        def walk(repos):
            results[tuple(repos)] = ri.fetch_inventory(client, repos, progress=False)

        threads = [threading.Thread(target=walk, args=(r,)) for r in ([A, B], [B, NULL])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    assert set(results) == set(alone)
    for repos, inventory in results.items():
        pd.testing.assert_frame_equal(inventory.tags(attestations=True),
                                      alone[repos].tags(attestations=True))
        pd.testing.assert_frame_equal(inventory.errors, alone[repos].errors)


@pytest.mark.parametrize("progress", [True, False])
def test_no_repository_at_all_streams_to_an_empty_inventory(proxied, token_registry,
                                                            progress):
    with client_for(proxied.url, token_registry) as client:
        inventory = ri.fetch_inventory(client, [], progress=progress)
    assert inventory.tags().empty and inventory.errors.empty
    assert {c: str(t) for c, t in inventory.tags().dtypes.items()} == TAGS_SCHEMA
    assert [p for _m, p, _s in proxied.log if p != "/v2/"] == []


def test_tokens_expiring_mid_walk_one_per_repository_change_nothing(
        proxied, token_registry, weird):
    """Tokens live 1 s and carry one scope each (brk4/a's and brk4/b's apart); answers come
    slowly, so the walk outlives several tokens of each repository while both stream: the
    registry's 401s are answered with new tokens and the inventory is a clean walk's."""
    with client_for(proxied.url, token_registry) as client:
        clean = ri.fetch_inventory(client, [A, B], progress=False)
    token_registry.token_server.lifetime = 1
    token_registry.token_server.max_scopes_per_token = 1
    proxied.rules.append(slow("/v2/brk4/", 0.15))
    before = token_registry.token_server.requests
    with client_for(proxied.url, token_registry, max_workers=2) as client:
        got = ri.fetch_inventory(client, [A, B], progress=False)
    # 27 answers of 0.15 s at least on 2 workers: 2 s at least, each repository's token
    # renewed at least once
    assert token_registry.token_server.requests - before >= 4
    pd.testing.assert_frame_equal(got.tags(attestations=True), clean.tags(attestations=True))
    pd.testing.assert_frame_equal(got.errors, clean.errors)
