"""A first walk streams (issue 14): each repository's tags are asked for as soon as its tag list
arrives, and tags are assembled while the walk goes on; a walk the HTTP cache can help reads
every tag list first and its stored answers in bulk. Either way the inventory, the errors and
their order are the same. The rewriting proxy slows chosen answers down, so that lists and
tags complete in another order than they were asked."""

from __future__ import annotations

import json
import time

import pytest

import registry_insights as ri
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, client_for, oci_error, slow

pytestmark = pytest.mark.integration

REPOS = ["stream/r0", "stream/r1"]


@pytest.fixture(scope="module")
def fleet(token_registry):
    """stream/r0 and stream/r1: v0, v1, v2 (+ latest), v2 a two-platform index."""
    with client_for(token_registry.url, token_registry) as client:
        return push_fleet(client, "stream", repositories=2, tags=3)


def _catalog_of(names):
    """A proxy rule: the catalog lists ``names`` only (the session registry holds others)."""
    def rule(request):
        if request.path.startswith("/v2/_catalog"):
            body = json.dumps({"repositories": names}).encode()
            return Reply(200, [("Content-Type", "application/json")], body)
        return None
    return rule


def _rows(inventory):
    tags = inventory.tags()
    return list(zip(tags["repository"], tags["tag"], tags["platform"], tags["digest"]))


def _expected_rows(fleet):
    by_tag = {}
    for image in fleet:
        by_tag.setdefault((image.repository, image.tag), []).append(
            (image.repository, image.tag, image.platform, image.digest))
    return sorted(row for rows in by_tag.values() for row in rows)


@pytest.mark.parametrize("cached", [False, True], ids=["cache=None", "cold cache"])
def test_first_walk_reads_a_repository_while_another_list_is_still_coming(
        proxied, token_registry, fleet, tmp_path, cached):
    proxied.rules.append(slow("/v2/stream/r1/tags/list", 1.0))
    with client_for(proxied.url, token_registry,
                    cache=tmp_path / "cache" if cached else None) as client:
        assert client.cache.holds_no_content()
        inventory = ri.fetch_inventory(client, REPOS, progress=False)
        assert not cached or not client.cache.holds_no_content()  # the configs are kept
    log = [path for _method, path, _status in proxied.log]
    r1_list = next(i for i, p in enumerate(log) if p.startswith("/v2/stream/r1/tags/list"))
    r0_reads = [i for i, p in enumerate(log)
                if p.startswith(("/v2/stream/r0/manifests/", "/v2/stream/r0/blobs/"))]
    # r0: 4 tags (v2 an index of 2 platforms: 2 more manifests), 4 distinct configs;
    # every one of them answered before r1's slow list was
    assert len(r0_reads) == 4 + 2 + 4
    assert max(r0_reads) < r1_list
    assert sorted(_rows(inventory)) == _expected_rows(fleet)
    assert _rows(inventory) == sorted(_rows(inventory), key=lambda r: (r[0], r[1]))
    assert inventory.errors.empty
    # the protocol's minimum all the same: no manifest or config asked twice
    reads = [p for p in log if "/manifests/" in p or "/blobs/" in p]
    assert len(reads) == len(set(reads)) == 2 * (4 + 2 + 4)


def test_a_walk_the_cache_can_answer_reads_lists_first_and_asks_nothing_again(
        proxied, token_registry, fleet, tmp_path):
    with client_for(proxied.url, token_registry, cache=tmp_path / "cache") as client:
        first = _rows(ri.fetch_inventory(client, REPOS, progress=False))
    sent = len(proxied.log)
    with client_for(proxied.url, token_registry, cache=tmp_path / "cache") as client:
        assert not client.cache.holds_no_content()
        second = _rows(ri.fetch_inventory(client, REPOS, progress=False))
    assert second == first
    # fresh answers: not one request, not even the tag lists (ping and token aside)
    assert [p for _m, p, _s in proxied.log[sent:] if p != "/v2/"] == []


def _broken(request):
    """r0:v1 and r1:v0 are gone (404 MANIFEST_UNKNOWN); r1:v0 answers at once, r0:v1 late."""
    if request.path == "/v2/stream/r0/manifests/v1":
        time.sleep(0.4)
        return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
    if request.path == "/v2/stream/r1/manifests/v0":
        return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
    return None


@pytest.mark.parametrize("warm", [False, True], ids=["streamed", "lists first"])
def test_errors_come_in_input_order_whatever_completes_first(
        proxied, token_registry, fleet, tmp_path, warm):
    """A repository the catalog lists but that does not exist, then two tags gone: the
    errors frame lists them in catalog and tag-list order, though r0's list and its broken
    tag answer last."""
    names = ["stream/gone", *REPOS]
    proxied.rules += [_catalog_of(names), slow("/v2/stream/r0/tags/list", 0.3), _broken]
    cache = tmp_path / "cache"
    if warm:  # a config in the cache: the walk reads every list first
        with client_for(proxied.url, token_registry, cache=cache) as client:
            client.tag_details("stream/r0", "v0")
    with client_for(proxied.url, token_registry, cache=cache) as client:
        inventory = ri.fetch_inventory(client, progress=False)
    errors = inventory.errors
    assert list(zip(errors["repository"], errors["tag"].fillna("-"), errors["code"])) == [
        ("stream/gone", "-", "NAME_UNKNOWN"),
        ("stream/r0", "v1", "MANIFEST_UNKNOWN"),
        ("stream/r1", "v0", "MANIFEST_UNKNOWN"),
    ]
    assert inventory.repositories == names
    want = [r for r in _expected_rows(fleet)
            if (r[0], r[1]) not in {("stream/r0", "v1"), ("stream/r1", "v0")}]
    assert sorted(_rows(inventory)) == want
    assert _rows(inventory) == sorted(_rows(inventory), key=lambda r: (r[0], r[1]))


def test_without_errors_list_the_walk_raises_and_stops(proxied, token_registry, fleet):
    """details_many without ``errors``: a gone tag raises NotFound, and the walk does not
    go on to ask for the other tags' configs after it."""
    proxied.rules.append(_broken)
    pairs = [("stream/r1", "v0")] + [("stream/r1", f"v{i}") for i in (1, 2)]
    with client_for(proxied.url, token_registry, max_workers=1) as client:
        with pytest.raises(ri.NotFound) as caught:
            client.details_many(pairs)
    assert "stream/r1" in str(caught.value)
    assert not [p for _m, p, _s in proxied.log if "/blobs/" in p]


def test_a_config_gone_makes_its_tag_unreadable_and_is_asked_once(proxied, token_registry,
                                                                  fleet):
    """The walk asks for a config once; when that fails, the tag is unreadable for the
    reason the registry gave, and the config is not asked again when the tag is assembled."""
    config = next(i.config_digest for i in fleet if (i.repository, i.tag) == ("stream/r0", "v0"))
    path = f"/v2/stream/r0/blobs/{config}"
    proxied.rules.append(
        lambda r: oci_error(404, "BLOB_UNKNOWN", "blob unknown") if r.path == path else None)
    with client_for(proxied.url, token_registry) as client:
        inventory = ri.fetch_inventory(client, REPOS, progress=False)
    errors = inventory.errors
    assert list(zip(errors["repository"], errors["tag"], errors["reference"],
                    errors["code"])) == [("stream/r0", "v0", "v0", "BLOB_UNKNOWN")]
    assert sorted(_rows(inventory)) == [r for r in _expected_rows(fleet)
                                        if (r[0], r[1]) != ("stream/r0", "v0")]
    assert sum(p == path for _m, p, _s in proxied.log) == 1
