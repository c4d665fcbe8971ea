"""Trust, against real registries (CNCF Distribution 2.8), through the rewriting proxy where the
behaviour is another registry's: nothing deleted that was not asked, no secret to the wrong
host, no bad answer kept."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

import registry_insights as ri
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.names import sha256_digest
from tests.integration.test_delete import build
from tests.support.proxy import Reply, RewritingProxy

pytestmark = pytest.mark.integration


class PagingProxy(RewritingProxy):
    """A proxy that pages every tag list (2 tags a page)."""

    def __init__(self, target: str, page_size: int = 2):
        super().__init__(target)
        self.page_size = page_size
        self.rules.append(self._page)

    def _page(self, request):
        parts = urlsplit(request.path)
        if request.method != "GET" or not parts.path.endswith("/tags/list"):
            return None
        upstream = self.forward(type(request)(request.n, "GET", parts.path, request.headers,
                                              b""))
        if upstream.status != 200:
            return upstream
        body = json.loads(upstream.body)
        tags = sorted(body.get("tags") or [])
        last = parse_qs(parts.query).get("last", [""])[0]
        rest = [t for t in tags if t > last]
        page, more = rest[:self.page_size], rest[self.page_size:]
        headers = [("Content-Type", "application/json")]
        if more:
            headers.append(("Link", f'<{parts.path}?n={self.page_size}&last={page[-1]}>; '
                                    'rel="next"'))
        return Reply(200, headers, json.dumps({"name": body["name"], "tags": page}).encode())


def test_paged_tag_lists_never_cost_a_sibling(anonymous_registry, tmp_path):
    """Walk (pages cached), someone tags x-release on a-old's digest (page 3), delete a-old:
    x-release survives, through delete(), delete_many() and a second client."""
    repo = "trust/paged"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as pusher:
        old = build(pusher, repo, ["a-old"], seed=1)
        build(pusher, repo, ["b", "c"], seed=2)
        build(pusher, repo, ["d", "e"], seed=3)
        with PagingProxy(anonymous_registry.url) as proxy:
            with ri.RegistryClient(proxy.url, cache=tmp_path / "cache") as client:
                assert client.tags(repo) == ["a-old", "b", "c", "d", "e"]  # 3 pages, cached
                assert sum("/tags/list" in p for _m, p, _s in proxy.log) == 3
                raw = pusher.manifest(repo, old).raw
                pusher.put_manifest(repo, "x-release", raw, mt.OCI_MANIFEST)
                assert client.delete(repo, tag="a-old") == ["a-old"]
                assert client.tags(repo) == ["b", "c", "d", "e", "x-release"]
            assert pusher.head_manifest(repo, "x-release").digest == old
            pusher.put_manifest(repo, "a-old", raw, mt.OCI_MANIFEST)
            with ri.RegistryClient(proxy.url, cache=tmp_path / "cache") as client:
                client.tags(repo)
                pusher.put_manifest(repo, "z-prod", raw, mt.OCI_MANIFEST)
                results = client.delete_many([(repo, "a-old", old), (repo, "x-release", old)])
                assert [r.status for r in results] == ["deleted", "deleted"]
                assert all("tag only" in r.message for r in results)
    with ri.RegistryClient(anonymous_registry.url, cache=None) as check:
        assert check.head_manifest(repo, "z-prod").digest == old


def test_freshness_zero_asks_the_registry_even_for_answers_saved_longer(anonymous_registry,
                                                                          tmp_path):
    repo = "trust/fresh0"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as pusher:
        digest = build(pusher, repo, ["v1"], seed=4)
        with ri.RegistryClient(anonymous_registry.url, cache=tmp_path, freshness=600) as c:
            assert c.tags(repo) == ["v1"]
        pusher.put_manifest(repo, "v2", pusher.manifest(repo, digest).raw, mt.OCI_MANIFEST)
        with ri.RegistryClient(anonymous_registry.url, cache=tmp_path, freshness=0) as c:
            assert c.tags(repo) == ["v1", "v2"]
            assert c.request_counts["tags"] == 1


def test_verify_false_client_forgets_a_deleted_tag_at_once(anonymous_registry, tmp_path):
    """The invalidation is keyed as the store is, whatever ``verify`` the client has."""
    repo = "trust/verify-off"
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path, verify=False) as client:
        build(client, repo, ["keep", "drop"], seed=5)
        build(client, repo, ["other"], seed=6)
        assert client.tags(repo) == ["drop", "keep", "other"]
        assert client.delete(repo, tag="drop") == ["drop"]
        assert client.tags(repo) == ["keep", "other"]
        assert client.delete(repo, tag="other") == ["other"]
        assert client.tags(repo) == ["keep"]


def push_nested(client, repo):
    """``release`` -> index J -> index I1 -> (amd64 M, arm64); ``amd64-build`` -> M."""
    inner = build(client, repo, ["inner-tmp"], seed=7, multiarch=True)
    inner_raw = client.manifest(repo, inner).raw
    amd = client.manifest(repo, inner).manifests[0].digest
    outer = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_INDEX, "digest": inner, "size": len(inner_raw)}]}).encode()
    client.put_manifest(repo, "release", outer, mt.OCI_INDEX)
    client.put_manifest(repo, "amd64-build", client.manifest(repo, amd).raw, mt.OCI_MANIFEST)
    client.delete(repo, tag="inner-tmp")
    return sha256_digest(outer), inner, amd


def test_nested_index_survives_deleting_a_tag_on_its_platform(anonymous_registry):
    repo = "trust/nested"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        outer, inner, amd = push_nested(client, repo)
        assert client.tags(repo) == ["amd64-build", "release"]
        assert client.delete(repo, tag="amd64-build") == ["amd64-build"]
        for digest in (outer, inner, amd):
            assert client.head_manifest(repo, digest).digest == digest  # release intact
        # deleting release takes what it lists, to any depth
        arm = client.manifest(repo, inner).manifests[1].digest
        assert client.delete(repo, tag="release") == ["release"]
        for digest in (outer, inner, amd, arm):
            with pytest.raises(ri.NotFound):
                client.head_manifest(repo, digest)


def test_two_identity_tokens_never_share_a_cache(token_registry, tmp_path, monkeypatch):
    server = token_registry.token_server
    repo = "trust/identity"
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=None) as pusher:
        build(pusher, repo, ["v1"], seed=8)
    counts = []
    for user in ("alice", "bob"):
        config = tmp_path / user
        config.mkdir()
        (config / "config.json").write_text(json.dumps(
            {"auths": {token_registry.host: {"identitytoken": server.refresh_token_for(user)}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(config))
        with ri.RegistryClient(token_registry.url, cache=tmp_path / "cache") as client:
            assert client.credentials.username is None
            ri.tags_frame(client, repositories=[repo], progress=False)
            counts.append(client.request_counts["manifest"])
    assert counts == [1, 1]  # bob was not served alice's answers
    stores = sorted(p.name for p in (tmp_path / "cache").glob("*.sqlite"))
    assert len(stores) == 2
    for store in (tmp_path / "cache").glob("*.sqlite*"):
        data = store.read_bytes()
        for user in ("alice", "bob"):
            assert server.refresh_token_for(user).encode() not in data


def test_corrupt_cached_config_is_evicted_and_fetched_again(anonymous_registry, tmp_path):
    repo = "trust/corrupt"
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path) as client:
        build(client, repo, ["v1"], seed=9)
        config = client.tag_details(repo, "v1").images[0].config_digest
        url = f"{client.registry}/v2/{repo}/blobs/{config}"
        key = client.cache.key("GET", url, None)
        client.cache.flush()
        stored = client.cache.content[key]
        client.cache.content[key] = stored.replace(b"amd64", b"amd65")  # a flipped byte
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path) as client:
        details = client.tag_details(repo, "v1")
        assert details.images[0].config["architecture"] == "amd64"
        assert client.request_counts["blob"] == 1  # asked the registry once more
    with ri.RegistryClient(anonymous_registry.url, cache=tmp_path) as client:
        client.tag_details(repo, "v1")
        assert client.request_counts["blob"] == 0  # the good bytes are stored now


def test_html_for_a_manifest_by_digest_is_never_kept(anonymous_registry, tmp_path):
    repo = "trust/html"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as pusher:
        digest = build(pusher, repo, ["v1"], seed=10)
    with RewritingProxy(anonymous_registry.url) as proxy:
        broken = {"on": True}

        def html(request):
            if broken["on"] and request.method == "GET" and digest in request.path \
                    and "/manifests/" in request.path:
                return Reply(200, [("Content-Type", "text/html")], b"<html>login</html>")
            return None

        proxy.rules.append(html)
        with ri.RegistryClient(proxy.url, cache=tmp_path) as client:
            with pytest.raises(ri.DigestMismatch, match="from the registry"):
                client.manifest(repo, digest)
            broken["on"] = False
            assert client.manifest(repo, digest).digest == digest


def test_lost_delete_answer_is_checked_and_children_still_go(anonymous_registry):
    """A gateway answers 504 after the registry deleted the index: reported deleted (answer
    lost), the DELETE is not retried, and the platform manifests are deleted too."""
    repo = "trust/lost"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as pusher:
        index = build(pusher, repo, ["multi"], seed=11, multiarch=True)
        kids = [d.digest for d in pusher.manifest(repo, index).manifests]
    with RewritingProxy(anonymous_registry.url) as proxy:
        def lose(request, reply):
            if request.method == "DELETE" and index in request.path:
                return Reply(504, [("Content-Type", "text/plain")], b"gateway timeout")
            return reply

        proxy.rewrites.append(lose)
        with ri.RegistryClient(proxy.url, cache=None) as client:
            results = client.delete_many([(repo, "multi")])
            assert results[0].status == "deleted" and "answer lost" in results[0].message
            deletes = [p for m, p, _s in proxy.log if m == "DELETE" and index in p]
            assert len(deletes) == 1
            for kid in kids:
                with pytest.raises(ri.NotFound):
                    client.head_manifest(repo, kid)


def test_retag_between_read_and_delete_deletes_nothing(anonymous_registry):
    """CI tags prod on the digest after the client read the tags: the re-read right before the
    DELETE sees it, nothing is deleted, prod survives."""
    repo = "trust/retag"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as pusher:
        digest = build(pusher, repo, ["old"], seed=12)
        raw = pusher.manifest(repo, digest).raw
    with RewritingProxy(anonymous_registry.url) as proxy:
        lists = {"n": 0}
        lock = threading.Lock()

        def retag_on_second_read(request):
            if request.method == "GET" and request.path.startswith(f"/v2/{repo}/tags/list"):
                with lock:
                    lists["n"] += 1
                    if lists["n"] == 2:
                        with ri.RegistryClient(anonymous_registry.url, cache=None) as ci:
                            ci.put_manifest(repo, "prod", raw, mt.OCI_MANIFEST)
            return None

        proxy.rules.append(retag_on_second_read)
        with ri.RegistryClient(proxy.url, cache=None) as client:
            with pytest.raises(ri.RegistryError, match=r"gained the tags \['prod'\]"):
                client.delete(repo, tag="old")
        with ri.RegistryClient(anonymous_registry.url, cache=None) as check:
            assert check.tags(repo) == ["old", "prod"]
            assert check.head_manifest(repo, "prod").digest == digest


def test_each_delete_is_reported_before_the_next_request(anonymous_registry):
    """An interrupted batch still leaves the record of what it did (the CLI's --log)."""
    repo = "trust/record"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        for seed, tag in enumerate(["a", "b", "c"], start=20):
            build(client, repo, [tag], seed=seed)
        recorded = []

        def record(result):
            recorded.append(result)
            raise KeyboardInterrupt  # Ctrl-C right after the first delete

        with pytest.raises(KeyboardInterrupt):
            client.delete_many([(repo, "a"), (repo, "b"), (repo, "c")], on_result=record)
        assert [(r.tag, r.status) for r in recorded] == [(recorded[0].tag, "deleted")]
        left = client.tags(repo)
        assert len(left) == 2 and recorded[0].tag not in left  # exactly what was recorded


def test_deleting_a_platform_manifest_a_tagged_index_lists_is_refused(anonymous_registry):
    repo = "trust/platform-digest"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        index = build(client, repo, ["1.3.0"], seed=30, multiarch=True)
        arm = client.manifest(repo, index).manifests[1].digest
        with pytest.raises(ri.RegistryError, match=r"indexes tagged \['1.3.0'\]"):
            client.delete(repo, digest=arm)
        assert client.head_manifest(repo, arm).digest == arm  # nothing was deleted
        assert client.delete(repo, digest=arm, force=True) == []  # asked for exactly that
        with pytest.raises(ri.NotFound):
            client.head_manifest(repo, arm)
        client.delete(repo, digest=index)  # leave no dangling index to the shared registry
