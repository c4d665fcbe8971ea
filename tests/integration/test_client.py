"""RegistryClient against real registries (Debian's docker-registry) in three auth modes.

Round trips are counted with ``client.request_counts`` and asserted exactly.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time

import pytest

import registry_insights as ri
from registry_insights.registry.auth.tokens import Token
from tests.support.fleet import push_fleet


def make_client(handle, tmp_path, **kwargs):
    kwargs.setdefault("cache", tmp_path / "cache")
    return ri.RegistryClient(handle.url, username=handle.username, password=handle.password,
                             **kwargs)


def lower_bound(seeded, repositories):
    """Requests the protocol needs for a cold walk of ``repositories`` (token auth)."""
    tops = {(i.repository, i.tag) for i in seeded}
    children = {(i.repository, i.manifest_digest) for i in seeded if i.digest != i.manifest_digest}
    configs = {i.config_digest for i in seeded}
    tokens = 1 + math.ceil(len(repositories) / 20)  # catalog + pull tokens, 20 scopes each
    return {"ping": 1, "token": tokens, "catalog": 1, "tags": len(repositories),
            "manifest": len(tops) + len(children), "blob": len(configs)}


def test_token_auth_counts_cold_warm_and_shared_cache(token_registry, tmp_path):
    with make_client(token_registry, tmp_path) as pusher:
        seeded = push_fleet(pusher, "counts", repositories=3, tags=4)
    repos = sorted({i.repository for i in seeded})
    with make_client(token_registry, tmp_path) as client:
        assert client.ping() == "bearer"
        frame = ri.tags_frame(client, progress=False)
        frame = frame[frame["repository"].str.startswith("counts/")]
        assert len(frame) == len(seeded)
        counts = {k: v for k, v in client.request_counts.items() if v}
        # the catalog lists other tests' repositories too: count their tag lists and manifests
        expected = lower_bound(seeded, repos)
        others = set(client.repositories()) - set(repos)
        assert counts["ping"] == 1
        assert counts["catalog"] == 1
        assert counts["tags"] == len(repos) + len(others)
        if not others:
            assert counts == expected
        assert counts["blob"] >= expected["blob"]
        before = dict(client.request_counts)
        again = ri.tags_frame(client, repositories=repos, progress=False)
        assert len(again) == len(seeded)
        assert dict(client.request_counts) == before  # everything fresh in the cache
    with make_client(token_registry, tmp_path) as fresh:
        third = ri.tags_frame(fresh, repositories=repos, progress=False)
        assert len(third) == len(seeded)
        assert sum(fresh.request_counts.values()) == 0  # no probe, no token, no request at all


def test_warm_walks_fresh_and_expired_give_the_cold_walk_s_frame(anonymous_registry, tmp_path):
    """A warm walk runs on the calling thread and assembles each tag as its parts come in; an
    expired one revalidates the tags' manifests (304) and reads what they name (platform
    manifests, configs) from the cache. Both give the cold walk's frame, row for row."""
    import pandas as pd

    with make_client(anonymous_registry, tmp_path, cache=None) as pusher:
        seeded = push_fleet(pusher, "warmeq", repositories=2, tags=5, index_every=2)
    repos = sorted({i.repository for i in seeded})
    with make_client(anonymous_registry, tmp_path) as client:
        cold = ri.tags_frame(client, repositories=repos, progress=False)
    assert len(cold) == len(seeded) and cold["platform"].eq("linux/arm64").sum() == 4
    with make_client(anonymous_registry, tmp_path) as client:
        warm = ri.tags_frame(client, repositories=repos, progress=False)
        assert sum(client.request_counts.values()) == 0
    pd.testing.assert_frame_equal(warm, cold)
    time.sleep(0.3)
    with make_client(anonymous_registry, tmp_path, freshness=0.2) as client:
        expired = ri.tags_frame(client, repositories=repos, progress=False)
        counts = {k: v for k, v in client.request_counts.items() if v}
    tops = {(i.repository, i.tag) for i in seeded}
    # the tags' manifests only: no platform manifest, no config asked again
    assert counts == {"ping": 1, "tags": len(repos), "manifest": len(tops)}
    pd.testing.assert_frame_equal(expired, cold)


def test_token_auth_exact_lower_bound(make_registry, tmp_path):
    handle = make_registry("token")
    with make_client(handle, tmp_path, cache=None) as pusher:
        seeded = push_fleet(pusher, "exact", repositories=3, tags=5)
    repos = sorted({i.repository for i in seeded})
    handle.token_server.reset_counts()
    with make_client(handle, tmp_path) as client:
        frame = ri.tags_frame(client, progress=False)
        assert len(frame) == len(seeded)
        assert {k: v for k, v in client.request_counts.items() if v} == lower_bound(seeded, repos)
        assert handle.token_server.requests == 2


def test_expired_manifests_revalidate_with_304(anonymous_registry, tmp_path):
    with make_client(anonymous_registry, tmp_path, cache=None) as pusher:
        seeded = push_fleet(pusher, "reval", repositories=2, tags=3, index_every=0)
    repos = sorted({i.repository for i in seeded})
    with make_client(anonymous_registry, tmp_path, freshness=0.5) as client:
        ri.tags_frame(client, repositories=repos, progress=False)
        time.sleep(0.7)
        client.request_counts.clear()
        log = []
        handler = logging.Handler()
        handler.emit = lambda record: log.append(record.getMessage())
        logger = logging.getLogger("registry_insights")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            frame = ri.tags_frame(client, repositories=repos, progress=False)
        finally:
            logger.removeHandler(handler)
        assert len(frame) == len(seeded)
        tags = {(i.repository, i.tag) for i in seeded}
        assert dict(client.request_counts) == {"tags": len(repos), "manifest": len(tags)}
        assert sum("revalidated" in line for line in log) == len(tags)


def test_two_second_tokens_are_renewed(make_registry, tmp_path):
    handle = make_registry("token", lifetime=2)
    with make_client(handle, tmp_path, cache=None) as client:
        push_fleet(client, "short", repositories=1, tags=2)
        first = ri.tags_frame(client, progress=False)
        time.sleep(3.2)  # every token held is now refused by the registry
        second = ri.tags_frame(client, progress=False)
        assert first[["tag", "digest"]].equals(second[["tag", "digest"]])
        assert client.request_counts["token"] >= 4


def test_refused_token_is_dropped_and_fetched_once(token_registry, tmp_path):
    with make_client(token_registry, tmp_path, cache=None) as client:
        push_fleet(client, "refused", repositories=1, tags=1, index_every=0)
        client.tags("refused/r0")
        transport = client._transport
        key = transport.auth.token_key(("repository:refused/r0:pull",))
        stale = Token(value="not-a-valid-jwt", expires_in=300, obtained=time.monotonic())
        transport.auth.tokens._tokens[key] = stale
        tokens_before = client.request_counts["token"]
        assert client.tags("refused/r0") == ["latest", "v0"]
        assert client.request_counts["token"] == tokens_before + 1
        assert transport.auth.tokens.peek(key) is not stale


def test_basic_auth_sends_credentials_without_tokens(basic_registry, tmp_path):
    with make_client(basic_registry, tmp_path, cache=None) as client:
        seeded = push_fleet(client, "basic", repositories=1, tags=2)
        assert client.ping() == "basic"
        details = client.tag_details("basic/r0", "v0")
        truth = [i for i in seeded if i.tag == "v0"][0]
        assert details.digest == truth.digest
        assert details.layer_size == truth.layer_size
        assert details.created_at.isoformat() == "2025-01-10T10:00:00+00:00"
        assert client.request_counts["token"] == 0
        assert client.request_counts["ping"] == 1


def test_wrong_password_is_unauthorized_without_the_secret(basic_registry, tmp_path):
    secret = "definitely-wrong-pw"
    with ri.RegistryClient(basic_registry.url, username="alice", password=secret,
                           cache=None) as client:
        with pytest.raises(ri.Unauthorized) as info:
            client.tags("basic/r0")
    assert secret not in str(info.value)
    assert secret not in repr(client)
    assert info.value.status == 401


def test_token_server_refuses_bad_credentials(token_registry, tmp_path):
    with ri.RegistryClient(token_registry.url, username="alice", password="nope",
                           cache=None) as client:
        with pytest.raises(ri.Unauthorized, match="token server refused identity 'alice'"):
            client.repositories()


def test_anonymous_index_details_and_errors(anonymous_registry, tmp_path):
    with make_client(anonymous_registry, tmp_path, cache=None) as client:
        seeded = push_fleet(client, "anon", repositories=1, tags=3, index_every=3)
        assert client.ping() is None
        details = client.tag_details("anon/r0", "v2")
        assert details.manifest.is_index
        assert sorted(i.platform for i in details.images) == ["linux/amd64", "linux/arm64"]
        truth = {i.platform: i for i in seeded if i.tag == "v2"}
        for image in details.images:
            assert image.manifest_digest == truth[image.platform].manifest_digest
            assert image.layer_size == truth[image.platform].layer_size
            assert image.config_digest == truth[image.platform].config_digest
        with pytest.raises(ri.NotFound) as info:
            client.manifest("anon/r0", "no-such-tag")
        assert info.value.code == "MANIFEST_UNKNOWN"
        assert "anon/r0/manifests/no-such-tag" in str(info.value)
        with pytest.raises(ri.InvalidReference, match="'Anon/R0'"):
            client.tags("Anon/R0")
        assert client.request_counts["tags"] == 0


def test_deleted_repository_has_empty_tag_list(anonymous_registry, tmp_path):
    with make_client(anonymous_registry, tmp_path) as client:
        seeded = push_fleet(client, "gone", repositories=1, tags=1, index_every=0)
        assert client.tags("gone/r0") == ["latest", "v0"]
        removed = client.delete("gone/r0", digest=seeded[0].digest)
        assert removed == ["latest", "v0"]
        assert client.tags("gone/r0") == []  # "tags": null, cache entry dropped at once
        assert "gone/r0" in client.repositories()


def test_blob_is_streamed_and_verified(anonymous_registry, tmp_path):
    import io

    with make_client(anonymous_registry, tmp_path, cache=None) as client:
        push_fleet(client, "blob", repositories=1, tags=1, index_every=0)
        manifest = client.manifest("blob/r0", "v0")
        layer = manifest.layers[-1]
        out = io.BytesIO()
        assert client.blob("blob/r0", layer.digest, out) == layer.size
        assert ri.reference.sha256_digest(out.getvalue()) == layer.digest
        digest = ri.reference.sha256_digest(b"something else")
        with pytest.raises(ri.NotFound):
            client.blob("blob/r0", digest, io.BytesIO())


def test_secrets_stay_out_of_cache_and_logs(token_registry, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="registry_insights")
    with make_client(token_registry, tmp_path, verbose=True) as client:
        push_fleet(client, "secret", repositories=1, tags=1, index_every=0)
        ri.tags_frame(client, repositories=["secret/r0"], progress=False)
        tokens = [t.value for t in client._transport.auth.tokens._tokens.values()]
    assert tokens
    files = list((tmp_path / "cache").glob("*.sqlite*"))
    assert files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path  # the WAL files too
        data = path.read_bytes()
        assert token_registry.password.encode() not in data
        for token in tokens:
            assert token.encode() not in data
    text = caplog.text
    assert "GET" in text and "/v2/secret/r0/manifests/v0" in text
    assert token_registry.password not in text
    assert not any(token in text for token in tokens)


def test_client_import_does_not_load_pandas():
    code = ("import sys, registry_insights.registry.client, registry_insights.registry.transport; "
            "print(any(m in sys.modules for m in ('pandas', 'matplotlib', 'ipywidgets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tag_details_inside_client_map_does_not_deadlock(anonymous_registry, tmp_path):
    with make_client(anonymous_registry, tmp_path, cache=None, max_workers=2) as client:
        seeded = push_fleet(client, "nested", repositories=2, tags=3)
        pairs = sorted({(i.repository, i.tag) for i in seeded})
        details = client.map(lambda p: client.tag_details(*p), pairs)
        assert [(d.repository, d.tag) for d in details] == pairs
        truth = {(i.repository, i.tag): i.digest for i in seeded}
        assert all(d.digest == truth[(d.repository, d.tag)] for d in details)


def test_config_shared_across_repositories_is_cached_once(anonymous_registry, tmp_path):
    import json as _json

    from registry_insights.registry import mediatypes as mt

    with make_client(anonymous_registry, tmp_path) as client:
        config = b'{"architecture":"amd64","os":"linux","created":"2025-01-01T00:00:00Z"}'
        layer = b"same layer"
        for repo in ("sharedcfg/a", "sharedcfg/b"):
            client.upload_blob(repo, config)
            client.upload_blob(repo, layer)
            manifest = _json.dumps({
                "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": ri.reference.sha256_digest(
                    config), "size": len(config)},
                "layers": [{"mediaType": mt.OCI_LAYER, "digest": ri.reference.sha256_digest(
                    layer), "size": len(layer)}]}).encode()
            client.put_manifest(repo, "v1", manifest, mt.OCI_MANIFEST)
        client.request_counts.clear()
        frame = ri.tags_frame(client, repositories=["sharedcfg/a", "sharedcfg/b"],
                              progress=False)
        assert len(frame) == 2 and frame["config_digest"].nunique() == 1
        assert client.request_counts["blob"] == 1
    # a fresh client sharing the cache asks for neither config, whichever repository it reads
    with make_client(anonymous_registry, tmp_path) as fresh:
        fresh.config("sharedcfg/b", ri.models.Descriptor(
            mt.OCI_CONFIG, ri.reference.sha256_digest(config), len(config)))
        assert fresh.request_counts["blob"] == 0
