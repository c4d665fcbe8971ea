"""Adversarial probes of session 6's changes to the HTTP cache (rows held as bytes by
preload and handed to one lookup, peek, the memoised keys, LeanResponse's headers) and to
the walk's preload, with recorded bytes and no registry."""

from __future__ import annotations

import json
import time

import pytest
from requests_cache import SQLiteCache

import registry_insights as ri
from registry_insights.registry import mediatypes as mt
from registry_insights.registry import walk as walk_module
from registry_insights.registry.cache import HttpCache, _answer_row, _row_created
from registry_insights.registry.names import sha256_digest
from tests.unit.test_cache import BASE, DIGEST, make_cache, store

TAG_URL = f"{BASE}/v2/team/app/manifests/v1"


def _tag_row(cache: HttpCache, url: str, body: bytes, headers=None, accept=None):
    """Store ``body`` as the answer to ``GET url`` with ``Accept: accept`` (a recorded 200)."""
    import requests
    from urllib3 import HTTPResponse

    response = requests.Response()
    response.status_code, response._content, response.url = 200, body, url
    response.headers.update(headers or {})
    response.raw = HTTPResponse(body=b"", status=200, request_url=url)
    response.request = requests.Request("GET", url, headers={"Accept": accept or "*/*"}).prepare()
    found = cache.lookup("GET", url, accept, mode="refresh")
    cache.settle(found, response)
    cache.flush()


def test_peek_and_lookup_agree_on_freshness_for_every_row_kind(tmp_path):
    """A row of this version, one with ``expires`` null, one created in the future (a clock
    set back), under freshness 0 and 60: peek's quick read of ``created`` says what the
    lookup then does."""
    url = f"{BASE}/v2/team/app/tags/list"
    writer = make_cache(tmp_path)
    store(writer, url, b'{"tags": ["a"]}', {"ETag": '"e"'})
    key = writer.key("GET", url, None)
    row = writer.answers[key]
    meta = json.loads(row.partition(b"\n")[0])
    body = row.partition(b"\n")[2]
    variants = {
        "as written": row,
        "expires null": row.replace(b',"expires":' + json.dumps(meta["expires"]).encode(),
                                    b',"expires":null'),
        "created ahead": row.replace(json.dumps(meta["created"]).encode(),
                                     repr(time.time() + 3600).encode()),
        "created an hour ago": row.replace(json.dumps(meta["created"]).encode(),
                                           repr(time.time() - 3600).encode()),
        # another writer's order of members (status first): not read from the end, decoded
        "members reordered": json.dumps({k: meta[k] for k in (
            "status", "created", "expires", "url", "reason", "encoding", "headers")}).encode()
        + b"\n" + body,
    }
    for name, value in variants.items():
        assert (_row_created(value) is None) is (name == "members reordered"), name
        for freshness in (0.0, 60.0):
            writer.answers[key] = value
            reader = make_cache(tmp_path, freshness=freshness)
            assert reader.preload([(url, None)]) == 1
            peeked = reader.peek(url, None)
            found = reader.lookup("GET", url, None)
            assert peeked[0] == body, name
            assert peeked[1] is (found.hit is not None), (name, freshness)
            assert (found.hit or found.stale).content == body


def test_a_non_utf8_body_and_non_ascii_headers_survive_preload_peek_and_lookup(tmp_path):
    body = b"\xff\xfe\x00binary\n\xc3(\n" + bytes(range(256))
    writer = make_cache(tmp_path)
    _tag_row(writer, TAG_URL, body, {"ETag": '"\u00e9t\u00e9"', "X-Note": "caf\u00e9",
                                     "Content-Type": mt.OCI_MANIFEST}, mt.MANIFEST_ACCEPT)
    reader = make_cache(tmp_path)
    assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)]) == 1
    assert reader.peek(TAG_URL, mt.MANIFEST_ACCEPT) == (body, True)
    hit = reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit
    assert hit.content == body and hit.headers["x-note"] == "caf\u00e9"
    assert hit.headers["content-type"] == mt.OCI_MANIFEST


def test_invalidate_or_evict_between_preload_and_lookup_is_a_miss(tmp_path):
    digest_url = f"{BASE}/v2/team/app/manifests/{DIGEST}"
    writer = make_cache(tmp_path)
    _tag_row(writer, TAG_URL, b'{"config": {}}', accept=mt.MANIFEST_ACCEPT)
    _tag_row(writer, digest_url, b'{"manifests": []}', accept=mt.MANIFEST_ACCEPT)
    reader = make_cache(tmp_path)
    assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT), (digest_url, mt.MANIFEST_ACCEPT)]) == 2
    assert reader.invalidate("team/app", ["v1", DIGEST]) == 2
    assert reader.peek(TAG_URL, mt.MANIFEST_ACCEPT) is None
    assert reader.peek(digest_url, mt.MANIFEST_ACCEPT) is None
    assert reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit is None
    assert reader.lookup("GET", digest_url, mt.MANIFEST_ACCEPT).hit is None
    # evict: the same for one answer
    _tag_row(writer, TAG_URL, b'{"config": {}}', accept=mt.MANIFEST_ACCEPT)
    assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)]) == 1
    reader.evict("GET", TAG_URL, mt.MANIFEST_ACCEPT)
    assert reader.peek(TAG_URL, mt.MANIFEST_ACCEPT) is None
    assert reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit is None


def test_a_row_another_client_rewrote_after_preload_is_read_again_on_the_second_lookup(
        tmp_path):
    """Handed over: the first lookup gets what preload read, the second reads the file as
    it is now (what another client on the same file wrote meanwhile)."""
    writer = make_cache(tmp_path)
    _tag_row(writer, TAG_URL, b'{"old": 1}', accept=mt.MANIFEST_ACCEPT)
    reader = make_cache(tmp_path)
    reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)])
    _tag_row(writer, TAG_URL, b'{"new": 2}', accept=mt.MANIFEST_ACCEPT)
    assert reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit.content == b'{"old": 1}'
    assert reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit.content == b'{"new": 2}'
    reader.release()
    assert reader._preloaded == {} and reader._keys == {}


def test_the_memoised_keys_follow_the_accept_and_the_method(tmp_path):
    """A key preload worked out for one Accept never answers a lookup with another Accept,
    nor a HEAD."""
    writer = make_cache(tmp_path)
    _tag_row(writer, TAG_URL, b'{"a": 1}', accept=mt.MANIFEST_ACCEPT)
    reader = make_cache(tmp_path)
    assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)]) == 1
    assert reader.lookup("GET", TAG_URL, mt.OCI_MANIFEST).hit is None
    assert reader.lookup("HEAD", TAG_URL, mt.MANIFEST_ACCEPT).hit is None
    # the accept in another order is the same key (normalised), served by the row held
    reordered = ", ".join(reversed(mt.MANIFEST_ACCEPT.split(", ")))
    assert reader.lookup("GET", TAG_URL, reordered).hit.content == b'{"a": 1}'


def test_a_preloaded_row_is_never_handed_to_two_threads(tmp_path):
    """Many threads look the same preloaded key up at once: exactly one gets the row held
    (the others read the file), and each gets a response of its own."""
    import threading

    writer = make_cache(tmp_path)
    _tag_row(writer, TAG_URL, b'{"a": 1}', accept=mt.MANIFEST_ACCEPT)
    reader = make_cache(tmp_path)
    for _ in range(20):
        assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)]) == 1
        got, barrier = [], threading.Barrier(6)

        def look(got=got, barrier=barrier):
            barrier.wait()
            got.append(reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit)

        threads = [threading.Thread(target=look) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(h is not None and h.content == b'{"a": 1}' for h in got)
        assert len({id(h) for h in got}) == 6 and not reader._preloaded


def _walk_client(tmp_path):
    """A client of a registry that is never asked (port 9: nothing listens)."""
    return ri.RegistryClient("http://127.0.0.1:9", cache=tmp_path / "cache")


def _content(client, repository, digest, body: bytes, ctype=mt.OCI_INDEX):
    key = client.cache.key("GET", client._transport.url(
        f"/v2/{repository}/manifests/{digest}"), mt.MANIFEST_ACCEPT)
    client.cache.content[key] = ctype.encode() + b"\n" + body


def test_preload_of_a_cached_index_that_lists_itself_ends(tmp_path, monkeypatch):
    loop = sha256_digest(b"not the bytes below")
    body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_INDEX, "digest": loop, "size": 10}]}).encode()
    with _walk_client(tmp_path) as client:
        url = client._transport.url("/v2/team/app/manifests/v1")
        _tag_row(client.cache, url, body, {"Content-Type": mt.OCI_INDEX},
                 mt.MANIFEST_ACCEPT)
        _content(client, "team/app", loop, body)
        calls = []
        real = client.cache.preload

        def counted(requests_):
            calls.append(len(requests_))
            if len(calls) > 50:
                raise RuntimeError("preload does not end")
            return real(requests_)

        monkeypatch.setattr(client.cache, "preload", counted)
        try:
            walk_module.preload(client, [("team/app", "v1")])
        finally:
            client.cache.release()
        assert len(calls) <= walk_module.MAX_INDEX_DEPTH + 2


def test_preload_of_a_deep_chain_of_cached_indexes_reads_each_level_once(tmp_path):
    """A chain of 12 indexes (deeper than the walk reads): preload reads level by level,
    each row once, no deeper than the walk goes, and says the walk needs nothing more (all
    of it fresh; the tag is then unreadable: too deep)."""
    with _walk_client(tmp_path) as client:
        leaf = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": DIGEST,
                                      "size": 2}, "layers": []}).encode()
        below = sha256_digest(leaf)
        _content(client, "team/app", below, leaf, mt.OCI_MANIFEST)
        client.cache.content[client.cache.key("GET", client._transport.url(
            f"/v2/team/app/blobs/{DIGEST}"), None)] = b"application/json\n{}"
        for _ in range(12):
            body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
                {"mediaType": mt.OCI_INDEX, "digest": below, "size": 1}]}).encode()
            below = sha256_digest(body)
            _content(client, "team/app", below, body)
        top = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": mt.OCI_INDEX, "digest": below, "size": 1}]}).encode()
        _tag_row(client.cache, client._transport.url("/v2/team/app/manifests/v1"), top,
                 {"Content-Type": mt.OCI_INDEX}, mt.MANIFEST_ACCEPT)
        try:
            # the tag's index and 8 levels below it: what the walk reads (MAX_INDEX_DEPTH)
            assert walk_module.preload(client, [("team/app", "v1")]) == \
                (1 + walk_module.MAX_INDEX_DEPTH, 0)
        finally:
            client.cache.release()


def test_preload_counts_a_stale_tag_as_a_request_and_still_reads_what_it_names(tmp_path):
    child = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                        "config": {"mediaType": mt.OCI_CONFIG, "digest": DIGEST, "size": 2},
                        "layers": []}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha256_digest(child), "size": 1}]}).encode()
    with _walk_client(tmp_path) as client:
        _content(client, "team/app", sha256_digest(child), child, mt.OCI_MANIFEST)
        client.cache.content[client.cache.key("GET", client._transport.url(
            f"/v2/team/app/blobs/{DIGEST}"), None)] = b"application/json\n{}"
        _tag_row(client.cache, client._transport.url("/v2/team/app/manifests/v1"), index,
                 {"Content-Type": mt.OCI_INDEX}, mt.MANIFEST_ACCEPT)
    time.sleep(0.05)
    with ri.RegistryClient("http://127.0.0.1:9", cache=tmp_path / "cache",
                           freshness=0.01) as client:
        try:
            assert walk_module.preload(client, [("team/app", "v1")] * 2) == (1 + 1 + 1, 2)
            assert len(client.cache._preloaded) == 3
        finally:
            client.cache.release()


def test_preload_reads_the_rows_of_a_sqlite_backend_passed_in(tmp_path):
    backend = SQLiteCache(str(tmp_path / "mine.sqlite"))
    writer = HttpCache(backend, BASE, "anonymous")
    _tag_row(writer, TAG_URL, b'{"a": 1}', accept=mt.MANIFEST_ACCEPT)
    reader = HttpCache(SQLiteCache(str(tmp_path / "mine.sqlite")), BASE, "anonymous")
    assert reader.lookup("GET", TAG_URL, mt.MANIFEST_ACCEPT).hit.content == b'{"a": 1}'
    assert reader.preload([(TAG_URL, mt.MANIFEST_ACCEPT)]) == 1


def test_row_created_is_not_misled_by_urls_or_headers_that_carry_the_members(tmp_path):
    """Whatever text a header name, a header value or the URL holds, JSON escapes its
    quotes: the end of the line is the row's own ``created`` and ``expires``."""
    import requests
    from requests_cache.policy import utcnow

    response = requests.Response()
    response.status_code, response._content = 200, b"{}"
    response.url = f"{BASE}/v2/a/tags/list?x=,%22created%22:1,%22expires%22:2"
    response.headers[',"created":3,"expires":4'] = ',"created":5,"expires":null}'
    now = utcnow()
    row = _answer_row(response, now, None)
    assert _row_created(row) == pytest.approx(now.timestamp())
