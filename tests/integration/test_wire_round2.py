"""Wire behaviours, round two (issue 12): endless pagination, long Retry-After, remembered
delete refusals, unsupported auth schemes, catalogs refused to fresh tokens, broken and
oversized blob downloads, failed pulls, registries under a path, bounded error and token
bodies, IPv6 and anonymous-ping registries. Each is reproduced by the rewriting proxy
(tests/support/proxy.py) in front of a real Distribution registry."""

from __future__ import annotations

import io
import logging
import secrets

import pytest

import registry_insights as ri
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, Request, RewritingProxy, client_for, oci_error

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(token_registry):
    with client_for(token_registry.url, token_registry) as client:
        return push_fleet(client, "round2", repositories=2, tags=3)


TAGS = ["latest", "v0", "v1", "v2"]


# -- 1. pagination that never ends ----------------------------------------------------------
def test_last_page_linking_back_with_new_cursors_stops(proxied, token_registry, fleet, caplog):
    """The last page links back to the first under a new opaque cursor every time."""
    def endless(request):
        if "/tags/list" not in request.path:
            return None
        path = request.path
        if "next_page=" in path:  # any cursor: the first page again
            path = path.split("?", 1)[0]
        reply = proxied.forward(Request(request.n, request.method, path, request.headers,
                                        request.body))
        if reply.status == 200 and request.n < 200:  # the old client would never stop
            reply.set_header("Link", f'</v2/round2/r0/tags/list?next_page='
                                     f'{secrets.token_hex(8)}>; rel="next"')
        return reply
    proxied.rules.append(endless)
    with caplog.at_level(logging.WARNING, "registry_insights"):
        with client_for(proxied.url, token_registry) as client:
            assert client.tags("round2/r0") == TAGS
    pages = [p for _m, p, s in proxied.log if "/tags/list" in p and s == 200]
    assert len(pages) == 2  # the first page, and the one that added nothing
    assert "added nothing new" in caplog.text


def test_pages_that_always_add_items_stop_at_the_page_cap(proxied, token_registry, fleet,
                                                           caplog):
    import json

    def growing(request):
        if "/tags/list" not in request.path:
            return None
        page = request.n
        body = json.dumps({"name": "round2/r0", "tags": [f"t{page}"]}).encode()
        return Reply(200, [("Content-Type", "application/json"),
                           ("Link", f'</v2/round2/r0/tags/list?next_page=p{page}>; rel="next"')],
                     body)
    proxied.rules.append(growing)
    with caplog.at_level(logging.WARNING, "registry_insights"):
        with client_for(proxied.url, token_registry) as client:
            client.max_pages = 7
            tags = client.tags("round2/r0")
    assert len(tags) == 7 and len(set(tags)) == 7
    assert sum(1 for _m, p, _s in proxied.log if "/tags/list" in p) == 7
    assert "max_pages" in caplog.text


# -- 2. Retry-After: long waits raise at once, short ones are honoured ------------------------
def test_retry_after_longer_than_the_maximum_raises_at_once(proxied, token_registry, fleet):
    proxied.rules.append(lambda r: oci_error(429, "TOOMANYREQUESTS", "hourly quota",
                                             [("Retry-After", "3600")])
                         if "/tags/list" in r.path else None)
    with client_for(proxied.url, token_registry, max_retry_after=5) as client:
        with pytest.raises(ri.RateLimited, match="wait 3600 s") as caught:
            client.tags("round2/r0")
        assert client.request_counts["retry"] == 0
    assert isinstance(caught.value, ri.TooManyRequests)
    assert caught.value.retry_after == 3600 and caught.value.status == 429
    assert sum(1 for _m, p, _s in proxied.log if "/tags/list" in p) == 1


def test_default_maximum_is_60_seconds(proxied, token_registry, fleet):
    import time
    from email.utils import formatdate

    date = formatdate(time.time() + 3600, usegmt=True)  # an HTTP-date an hour ahead
    proxied.rules.append(lambda r: oci_error(503, "UNAVAILABLE", "maintenance",
                                             [("Retry-After", date)])
                         if "/tags/list" in r.path else None)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.RateLimited, match="max_retry_after=60 s") as caught:
            client.tags("round2/r0")
    assert 3500 < caught.value.retry_after <= 3600 and caught.value.status == 503


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_short_retry_after_is_honoured_and_the_refused_page_is_asked_again(
        proxied, token_registry, fleet, form):
    import time
    from email.utils import formatdate

    refused = []

    def second_page_once(request):
        if request.path.startswith("/v2/_catalog") and "last=" in request.path \
                and not refused:
            refused.append(request.path)
            value = "1" if form == "seconds" else formatdate(time.time() + 2, usegmt=True)
            return oci_error(429, "TOOMANYREQUESTS", "slow down", [("Retry-After", value)])
        return None
    proxied.rules.append(second_page_once)
    with client_for(proxied.url, token_registry) as client:
        started = time.monotonic()
        client.catalog_page_size = 1  # Distribution 2.8 pages its catalog, not its tag lists
        repositories = client.repositories()
        waited = time.monotonic() - started
        assert client.request_counts["retry"] == 1
    assert {"round2/r0", "round2/r1"} <= set(repositories)
    asked = [p for _m, p, _s in proxied.log if p.startswith("/v2/_catalog")]
    assert len(asked) == len(repositories) + 1  # one page per repository, and one retry
    # the first page once, the refused second page twice (a retry, not a restart), then on
    assert asked.count(asked[0]) == 1 and asked.count(refused[0]) == 2
    assert asked.index(refused[0]) == 1 and asked[2] == refused[0]
    assert waited >= 0.9


# -- 3. deletes disabled, tag deletion unsupported: found out once, remembered --------------
def _deletes(proxy):
    return [(p, s) for m, p, s in proxy.log if m == "DELETE"]


def test_deletes_disabled_is_found_out_with_one_delete_request(proxied, token_registry):
    with client_for(token_registry.url, token_registry) as seeder:
        push_fleet(seeder, "deloff", repositories=2, tags=2, index_every=0)
    proxied.rules.append(lambda r: oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
                         if r.method == "DELETE" else None)
    everything = [(f"deloff/r{r}", t) for r in range(2) for t in ("latest", "v0", "v1")]
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.Unsupported, match="deletes are disabled"):
            client.delete_many(everything, progress=False)
        assert len(_deletes(proxied)) == 1
        before = len(proxied.log)
        with pytest.raises(ri.Unsupported, match="deletes are disabled"):
            client.delete_many(everything, progress=False)
        with pytest.raises(ri.Unsupported, match="deletes are disabled"):
            client.delete("deloff/r1", tag="v0")
        assert len(proxied.log) == before  # remembered: not even a read
    # tag-only deletes (a sibling tag keeps each digest): the tag DELETE and one probe
    proxied.log.clear()
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.Unsupported, match="deletes are disabled"):
            client.delete_many([("deloff/r0", "v1"), ("deloff/r1", "v1")], progress=False)
    assert [s for _p, s in _deletes(proxied)] == [405, 405]
    assert _deletes(proxied)[1][0].endswith("sha256:" + "0" * 64)


@pytest.mark.parametrize("refusal", ["400 DIGEST_INVALID (Distribution)", "405 UNSUPPORTED"])
def test_tag_deletion_unsupported_is_tried_once(proxied, token_registry, refusal):
    repo = f"untag{refusal[:3]}/r0"
    with client_for(token_registry.url, token_registry) as seeder:
        seeded = push_fleet(seeder, repo.split("/")[0], repositories=1, tags=2, index_every=0)
        v0 = next(i for i in seeded if i.tag == "v0")
        manifest = seeder.manifest(repo, "v0")
        for alias in ("a0", "a1", "a2"):
            seeder.put_manifest(repo, alias, manifest.raw, manifest.media_type)
    if refusal.startswith("405"):
        proxied.rules.append(lambda r: oci_error(405, "UNSUPPORTED", "no tag deletes")
                             if r.method == "DELETE" and "/manifests/sha256:" not in r.path
                             else None)
    with client_for(proxied.url, token_registry) as client:
        results = client.delete_many([(repo, "v0"), (repo, "a0"), (repo, "a1")],
                                     progress=False)
        assert [r.status for r in results] == ["deleted"] * 3, results
        assert client.tags(repo) == ["a2", "latest", "v1"]
        assert client.head_manifest(repo, "a2").digest == v0.digest
        results = client.delete_many([(repo, "v1")], progress=False)  # latest keeps it
        assert results[0].status == "deleted"
    by_tag = [p for p, _s in _deletes(proxied) if "/manifests/sha256:" not in p]
    assert len(by_tag) == 1  # tried once, then remembered
    assert by_tag[0] in {f"/v2/{repo}/manifests/{t}" for t in ("v0", "a0", "a1")}


# -- 4. only unsupported schemes ------------------------------------------------------------
@pytest.mark.parametrize("header", [["Negotiate, NTLM"], ["Negotiate", "NTLM"]])
def test_only_unsupported_schemes_are_named_in_the_error(proxied, token_registry, header):
    def windows(request, reply):
        if reply.status == 401:
            reply.set_header("WWW-Authenticate", None)
            reply.headers += [("WWW-Authenticate", value) for value in header]
        return reply
    proxied.rewrites.append(windows)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.Unauthorized) as caught:
            client.tags("round2/r0")
    message = str(caught.value).lower()
    assert "negotiate" in message and "ntlm" in message and "basic and bearer" in message
    assert token_registry.password not in str(caught.value)


# -- 5. a catalog refused to a fresh token --------------------------------------------------
def test_catalog_refused_to_a_fresh_token_costs_one_token(proxied, token_registry, fleet):
    server = token_registry.token_server
    challenge = (f'Bearer realm="{server.realm}",service="registry-insights-test",'
                 'scope="registry:catalog:*",error="insufficient_scope"')
    proxied.rules.append(lambda r: oci_error(401, "UNAUTHORIZED", "admins only",
                                             [("WWW-Authenticate", challenge)])
                         if r.path.startswith("/v2/_catalog") else None)
    server.reset_counts()
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.CatalogUnavailable, match="pass the repositories"):
            client.repositories()
        catalog_tokens = [s for _i, asked in server.issued for s in asked
                          if s == "registry:catalog:*"]
        assert catalog_tokens == ["registry:catalog:*"]
        assert sum(1 for _m, p, _s in proxied.log if p.startswith("/v2/_catalog")) == 1
        # the repositories still work with their own tokens
        assert client.tags("round2/r0") == TAGS


# -- 11. IPv6 and anonymous-ping registries keep working ------------------------------------
def test_ipv6_registry_address(token_registry, fleet):
    with RewritingProxy(token_registry.url, host="::1") as proxy:
        assert proxy.url.startswith("http://[::1]:")
        with client_for(proxy.url, token_registry) as client:
            assert client.registry == proxy.url
            assert client.ping() == "bearer"
            assert client.tags("round2/r1") == TAGS
            image = next(i for i in fleet if i.repository == "round2/r1" and i.tag == "v0")
            assert client.manifest("round2/r1", "v0").digest == image.digest
    assert {s for _m, _p, s in proxy.log} <= {200, 401}


def test_anonymous_ping_then_challenge_per_repository(proxied, token_registry, fleet):
    """GET /v2/ answers 200 to anyone; the API answers 401 with a bearer challenge."""
    proxied.rules.append(lambda r: Reply(200, [("Content-Type", "application/json")], b"{}")
                         if r.path == "/v2/" else None)
    with client_for(proxied.url, token_registry) as client:
        assert client.ping() is None
        assert client.tags("round2/r0") == TAGS
        assert client._transport.scheme == "bearer"
        assert client.tags("round2/r1") == TAGS
    statuses = [s for _m, p, s in proxied.log if "/tags/list" in p]
    assert statuses == [401, 200, 200]  # the challenge once, then tokens at once


# -- 6. a blob download cut mid-stream ------------------------------------------------------
def _layer(client, repository="round2/r0", tag="v0", index=0):
    return client.manifest(repository, tag).layers[index]


def _cutter(proxy, digest, times, honour_range=True):
    """Serve the blob ``digest`` cut in half (announcing its full length) ``times`` times."""
    state = {"cuts": 0, "ranges": []}

    def rule(request):
        if request.method != "GET" or not request.path.endswith(f"/blobs/{digest}"):
            return None
        state["ranges"].append(request.headers.get("Range"))
        if not honour_range:
            request.headers.pop("Range", None)
        reply = proxy.forward(request)
        if reply.status in (200, 206) and state["cuts"] < times:
            state["cuts"] += 1
            reply.set_header("Content-Length-Override", str(len(reply.body)))
            reply.body = reply.body[:len(reply.body) // 2]
        return reply
    proxy.rules.append(rule)
    return state


def test_blob_cut_mid_stream_is_resumed_with_range(proxied, token_registry, fleet):
    with client_for(proxied.url, token_registry) as client:
        layer = _layer(client)
        state = _cutter(proxied, layer.digest, times=1)
        out = io.BytesIO()
        assert client.blob("round2/r0", layer.digest, out, size=layer.size) == layer.size
    assert ri.reference.sha256_digest(out.getvalue()) == layer.digest
    assert state["ranges"] == [None, f"bytes={layer.size // 2}-"]
    statuses = [s for m, p, s in proxied.log if p.endswith(layer.digest)]
    assert statuses == [200, 206]


def test_blob_range_ignored_after_a_cut_starts_again(proxied, token_registry, fleet):
    with client_for(proxied.url, token_registry) as client:
        layer = _layer(client)
        state = _cutter(proxied, layer.digest, times=2, honour_range=False)
        out = io.BytesIO()
        assert client.blob("round2/r0", layer.digest, out) == layer.size
    assert ri.reference.sha256_digest(out.getvalue()) == layer.digest
    assert len(out.getvalue()) == layer.size  # rewound, not appended to
    assert state["ranges"] == [None, f"bytes={layer.size // 2}-", f"bytes={layer.size // 2}-"]


def test_blob_that_keeps_breaking_off_raises_a_typed_error(proxied, token_registry, fleet):
    from registry_insights.registry.blobs import BLOB_RESUMES

    with client_for(proxied.url, token_registry) as client:
        layer = _layer(client)
        state = _cutter(proxied, layer.digest, times=100)
        with pytest.raises(ri.IncompleteBlob, match=f"gave up after {BLOB_RESUMES} resumes"):
            client.blob("round2/r0", layer.digest, io.BytesIO())
    assert len(state["ranges"]) == BLOB_RESUMES + 1


def test_cli_pull_of_a_blob_that_keeps_breaking_off_says_so_without_traceback(
        anonymous_registry, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        push_fleet(client, "cutcli", repositories=1, tags=1, index_every=0)
        layer = _layer(client, "cutcli/r0", "v0", index=-1)
    with RewritingProxy(anonymous_registry.url) as proxy:
        _cutter(proxy, layer.digest, times=100)
        done = subprocess.run(
            [sys.executable, "-m", "registry_insights.cli", "pull", proxy.url, "cutcli/r0:v0",
             str(tmp_path / "layout"), "--no-cache"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(ri.__file__).parent.parent)})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "gave up after" in done.stderr
    assert not list((tmp_path / "layout").rglob("*.partial"))
    assert not (tmp_path / "layout" / "index.json").exists()


# -- 7. a failed pull stops the other downloads before it raises -----------------------------
def test_failed_pull_cancels_and_waits_before_raising(proxied, token_registry, fleet, tmp_path):
    import time

    repo, tag = "round2/r0", "v2"  # a two-platform index: two configs, three layers
    with client_for(token_registry.url, token_registry) as direct:
        index = direct.manifest(repo, tag)
        children = [direct.manifest(repo, d.digest) for d in index.manifests]
    layers = list(dict.fromkeys(layer.digest for c in children for layer in c.layers))
    assert len(layers) == 3
    broken, slow = layers[0], set(layers[1:])

    def rule(request):
        digest = request.path.rsplit("/", 1)[-1]
        if request.method == "GET" and digest == broken:
            return oci_error(500, "UNKNOWN", "disk on fire")
        if request.method == "GET" and digest in slow:
            time.sleep(1.0)
        return None
    proxied.rules.append(rule)
    layout = tmp_path / "layout"

    def snapshot():
        return sorted(str(p.relative_to(layout)) for p in layout.rglob("*"))
    with client_for(proxied.url, token_registry, max_workers=2) as client:
        with pytest.raises(ri.RegistryError, match="disk on fire"):
            client.pull(repo, tag, layout, progress=False)
        after_raise, requests_then = snapshot(), len(proxied.log)
        time.sleep(1.5)
        assert snapshot() == after_raise  # nothing written after pull() raised
        assert len(proxied.log) == requests_then  # nothing asked after it either
    assert not [p for p in after_raise if p.endswith(".partial")]
    assert not any(d.split(":")[1] in p for d in layers for p in after_raise)
    asked = [p.rsplit("/", 1)[-1] for m, p, _s in proxied.log if m == "GET"]
    assert asked.count(broken) == 1 and sum(asked.count(d) for d in slow) <= 1


# -- 8. an oversized blob is cut at the descriptor's size -----------------------------------
BIG = 50 << 20


def test_oversized_blob_is_not_read_past_the_descriptor_size(proxied, token_registry, fleet,
                                                            tmp_path):
    with client_for(token_registry.url, token_registry) as direct:
        layer = _layer(direct, "round2/r1", "v0")
    numbers = []

    def huge(request):
        if request.method == "GET" and request.path.endswith(f"/blobs/{layer.digest}"):
            numbers.append(request.n)
            return Reply(200, [("Content-Type", "application/octet-stream")], b"\0" * BIG)
        return None
    proxied.rules.append(huge)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.IncompleteBlob, match=f"descriptor says {layer.size}"):
            client.pull("round2/r1", "v0", tmp_path / "layout", progress=False)
    assert len(numbers) == 1 and proxied.sent[numbers[0]] < BIG // 2
    assert not list((tmp_path / "layout").rglob("*.partial"))


# -- 10. error and token bodies are read no further than 64 KiB ------------------------------
@pytest.mark.parametrize("what", ["manifest", "blob"])
def test_huge_error_bodies_are_not_read_whole(proxied, token_registry, fleet, what):
    numbers = []
    path = "/manifests/v0" if what == "manifest" else "/blobs/sha256:"

    def huge(request):
        if request.method == "GET" and path in request.path:
            numbers.append(request.n)
            body = b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "gone"}]}' + \
                b" " * BIG
            return Reply(404, [("Content-Type", "application/json")], body)
        return None
    proxied.rules.append(huge)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.NotFound):
            if what == "manifest":
                client.manifest("round2/r0", "v0")
            else:
                client.blob("round2/r0", "sha256:" + "1" * 64, io.BytesIO())
    assert len(numbers) == 1 and proxied.sent[numbers[0]] < BIG // 2


def test_huge_token_body_is_not_read_whole(token_registry, fleet):
    server = token_registry.token_server
    with RewritingProxy(server.url) as realm, RewritingProxy(token_registry.url) as registry:
        realm.rules.append(lambda r: Reply(200, [("Content-Type", "application/json")],
                                           b'{"token": "' + b"x" * BIG + b'"}'))
        from tests.integration.test_wire import rewrite_challenge

        registry.rewrites.append(rewrite_challenge(
            f'Bearer realm="{realm.url}/token",service="{{service}}"'))
        with client_for(registry.url, token_registry) as client:
            with pytest.raises(ri.InvalidResponse, match="non-JSON"):
                client.tags("round2/r0")
    assert len(realm.sent) == 1 and next(iter(realm.sent.values())) < BIG // 2


# -- 9. a registry under a path (Distribution's http.prefix) --------------------------------
@pytest.fixture(scope="module")
def prefixed_registry():
    from registry_insights.errors import RegistryBinaryNotFound
    from registry_insights.testing.server import RegistryServer

    try:
        server = RegistryServer(prefix="/reg/")
    except RegistryBinaryNotFound as exc:
        pytest.skip(str(exc))
    with server:
        yield server


def test_registry_under_a_path_prefix(prefixed_registry, tmp_path):
    assert prefixed_registry.url.endswith("/reg")
    with RewritingProxy(prefixed_registry.url) as proxy:
        strip = {"on": False}
        links = []

        def unprefixed_links(request, reply):  # as a registry unaware of its reverse proxy
            link = reply.header("Link")
            if link:
                links.append(link)
            if strip["on"] and link:
                reply.set_header("Link", link.replace("/reg/v2/", "/v2/"))
            return reply
        proxy.rewrites.append(unprefixed_links)
        base = proxy.url + "/reg/v2/"  # as pasted from a browser
        with ri.RegistryClient(base, cache=tmp_path / "cache", freshness=3600) as client:
            assert client.registry == proxy.url + "/reg" and client.host in proxy.url
            assert client.ping() is None
            seeded = push_fleet(client, "under", repositories=3, tags=2, index_every=2)
            client.catalog_page_size = 1
            assert client.repositories() == ["under/r0", "under/r1", "under/r2"]
            strip["on"] = True
            client.cache.invalidate("under/r0")  # the catalog asked again, page by page
            assert client.repositories() == ["under/r0", "under/r1", "under/r2"]
            frame = ri.tags_frame(client, repositories=["under/r0", "under/r1"], progress=False)
            assert set(frame["tag"]) == {"latest", "v0", "v1"}
            assert client.tags("under/r2") == ["latest", "v0", "v1"]
            v0 = next(i.digest for i in seeded if (i.repository, i.tag) == ("under/r2", "v0"))
            assert client.manifest("under/r2", "v0").digest == v0
            asked = len(proxy.log)
            assert client.tags("under/r2") == ["latest", "v0", "v1"]  # cached: no request
            assert client.manifest("under/r2", "v0").digest == v0
            assert len(proxy.log) == asked
            assert client.delete("under/r2", tag="v0") == ["v0"]  # invalidates the tag list
            assert client.tags("under/r2") == ["latest", "v1"]
            out = io.BytesIO()
            layer = _layer(client, "under/r1", "v0")
            assert client.blob("under/r1", layer.digest, out) == layer.size
            client.pull("under/r1", "v1", tmp_path / "layout", progress=False)
        paths = [p for _m, p, _s in proxy.log]
        assert paths and all(p.startswith("/reg/v2/") for p in paths), paths
        assert sum(1 for p in paths if p.startswith("/reg/v2/_catalog")) == 6  # 3 pages, twice
        assert len(links) == 4 and all("/reg/v2/_catalog" in link for link in links)
        with ri.RegistryClient(proxy.url, cache=None) as root:
            with pytest.raises(ri.NotFound, match="does not serve the registry API"):
                root.ping()
