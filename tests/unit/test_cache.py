"""The HTTP cache object (registry_insights.registry.cache): the policy table as cases, keys,
freshness against the current window, invalidation of every page, identity labels."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from requests_cache import SQLiteCache
from requests_cache.policy import utcnow

from registry_insights.registry.cache import (
    BATCH_SIZE,
    IMMUTABLE,
    MUTABLE,
    HttpCache,
    cache_path,
    classify,
    identity_label,
)

BASE = "https://registry.example.com:5000"
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("path", "expected"), [
    (f"/v2/team/app/manifests/{DIGEST}", ("manifest", IMMUTABLE)),
    (f"/v2/team/app/blobs/{DIGEST}", ("blob", IMMUTABLE)),
    ("/v2/team/app/manifests/v1.2.3", ("manifest", MUTABLE)),
    ("/v2/team/app/tags/list", ("tags", MUTABLE)),
    ("/v2/team/app/tags/list?n=100&last=x", ("tags", MUTABLE)),
    ("/v2/_catalog", ("catalog", MUTABLE)),
    ("/v2/_catalog?n=1000", ("catalog", MUTABLE)),
    ("/v2/", None),
    ("/v2/team/app/blobs/uploads/", None),
    ("/token?scope=x", None),
])
def test_policy_table(path, expected):
    found = classify(BASE, BASE + path)
    assert (found[:2] if found else None) == expected


def test_other_hosts_are_never_cached():
    assert classify(BASE, "https://storage.example.net/v2/team/app/tags/list") is None


def make_cache(tmp_path, freshness=60.0, identity="anonymous"):
    return HttpCache(tmp_path, BASE, identity, freshness)


def test_keys_ignore_repository_for_blobs_and_order_of_accept(tmp_path):
    cache = make_cache(tmp_path)
    assert cache.key("GET", f"{BASE}/v2/a/blobs/{DIGEST}", None) == \
        cache.key("GET", f"{BASE}/v2/b/c/blobs/{DIGEST}", "x")
    m = f"{BASE}/v2/a/manifests/v1"
    assert cache.key("GET", m, "a, b") == cache.key("GET", m, "b,a")
    assert cache.key("GET", m, "a") != cache.key("GET", m, "b")
    assert cache.key("GET", m, "a") != cache.key("HEAD", m, "a")


def store(cache: HttpCache, url: str, body: bytes = b"{}", headers=None):
    """Store an answer as the transport does (a recorded 200, no network), written at once."""
    from urllib3 import HTTPResponse

    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.url = url
    response.headers.update(headers or {})
    response.raw = HTTPResponse(body=b"", status=200, request_url=url)
    response.request = requests.Request("GET", url, headers={"Authorization": "Bearer s3cr3t"})\
        .prepare()
    found = cache.lookup("GET", url, None, mode="refresh")
    assert found.key is not None
    assert cache.settle(found, response) is response
    cache.flush()


def test_invalidate_drops_every_page_of_a_tag_list_and_every_catalog(tmp_path):
    cache = make_cache(tmp_path)
    urls = [f"{BASE}/v2/team/app/tags/list", f"{BASE}/v2/team/app/tags/list?last=b&n=2",
            f"{BASE}/v2/_catalog?n=1000", f"{BASE}/v2/_catalog?n=50&last=x",
            f"{BASE}/v2/team/app/manifests/old", f"{BASE}/v2/team/app/manifests/keep",
            f"{BASE}/v2/team/app-two/tags/list", f"{BASE}/v2/team/app/blobs/{DIGEST}"]
    for url in urls:
        store(cache, url)
    assert cache.invalidate("team/app", ["old"]) == 5
    keys = set(cache.answers.keys()) | set(cache.content.keys())
    left = {cache.key("GET", u, None) for u in urls} & keys
    assert left == {cache.key("GET", u, None) for u in urls[5:]}


def test_freshness_is_judged_against_the_current_window(tmp_path):
    url = f"{BASE}/v2/team/app/tags/list"
    cache = make_cache(tmp_path, freshness=60)
    store(cache, url)
    assert cache.lookup("GET", url, None).hit is not None
    # the same store read with freshness=0: asked again, although saved for 60 s
    strict = HttpCache(tmp_path, BASE, "anonymous", freshness=0)
    found = strict.lookup("GET", url, None)
    assert found.hit is None and found.validators == {}  # no validator: fetched again
    assert found.key == cache.key("GET", url, None)  # and stored again
    store(cache, f"{BASE}/v2/team/app/manifests/v1", headers={"ETag": '"x"'})
    found = strict.lookup("GET", f"{BASE}/v2/team/app/manifests/v1", None)
    assert found.hit is None and found.validators == {"If-None-Match": '"x"'}


def test_immutable_answers_stay_fresh_and_modes(tmp_path):
    cache = make_cache(tmp_path, freshness=0)
    url = f"{BASE}/v2/team/app/manifests/{DIGEST}"
    store(cache, url)
    time.sleep(0.01)
    assert cache.lookup("GET", url, None).hit.content == b"{}"
    assert cache.lookup("GET", url, None, mode=False) == (None, None, None, False)
    assert cache.lookup("GET", url, None, mode="refresh").hit is None
    cache.evict("GET", url, None)
    assert cache.lookup("GET", url, None).hit is None


def test_identity_tokens_get_stores_of_their_own(tmp_path):
    a = identity_label("token", "secret-one")
    b = identity_label("token", "secret-two")
    assert a != b and a == identity_label("token", "secret-one")
    assert "secret" not in a
    assert cache_path(tmp_path, BASE, a) != cache_path(tmp_path, BASE, b)
    assert identity_label("alice") == "alice"


def test_a_backend_is_used_as_it_is(tmp_path):
    backend = SQLiteCache(str(tmp_path / "mine.sqlite"))
    cache = HttpCache(backend, BASE, "anonymous")
    assert cache.backend is backend and cache.enabled
    assert not HttpCache(None, BASE, "anonymous").enabled


def test_an_unwritable_default_cache_falls_back_to_none(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    cache = HttpCache("default", BASE, "anonymous")
    assert not cache.enabled and "no HTTP cache" in caplog.text
    with pytest.raises(OSError, match="--no-cache"):
        HttpCache(blocker / "cache", BASE, "anonymous")  # a directory asked for: an error


def test_content_addressed_answers_are_bytes_without_http_metadata(tmp_path):
    cache = make_cache(tmp_path)
    url = f"{BASE}/v2/team/app/manifests/{DIGEST}"
    store(cache, url, b'{"schemaVersion": 2}', {"Content-Type": "application/x.test",
                                                "ETag": '"e"'})
    row = cache.content[cache.key("GET", url, "whatever")]  # Accept does not matter
    assert row == b'application/x.test\n{"schemaVersion": 2}'  # no headers, no request
    hit = cache.lookup("GET", url, "application/vnd.oci.image.index.v1+json").hit
    assert (hit.status_code, hit.content, hit.headers["Content-Type"]) == \
        (200, b'{"schemaVersion": 2}', "application/x.test")
    assert hit.from_cache
    assert len(cache.answers) == 0 and len(cache.backend.responses) == 0  # nor elsewhere


@pytest.mark.parametrize("query", ["", "?n=100&last=a"])
def test_mutable_answers_are_stored_without_secrets(tmp_path, query):
    cache = make_cache(tmp_path)
    url = f"{BASE}/v2/team/app/tags/list{query}"
    store(cache, url, headers={"X-API-KEY": "s3cr3t", "Content-Type": "application/json"})
    row = cache.answers[cache.key("GET", url, None)]
    assert b"Authorization" not in row and b"Bearer" not in row  # no request header at all
    held = make_cache(tmp_path).lookup("GET", url, None).hit
    assert "X-API-KEY" not in held.headers and held.headers["Content-Type"] == "application/json"
    for path in tmp_path.glob("*.sqlite*"):
        assert b"s3cr3t" not in path.read_bytes()


def test_writes_go_behind_in_batches_and_are_read_back_meanwhile(tmp_path):
    from urllib3 import HTTPResponse

    cache = make_cache(tmp_path)
    other = HttpCache(tmp_path, BASE, "anonymous")  # another process's view of the file
    urls = [f"{BASE}/v2/team/app/blobs/sha256:{i:064x}" for i in range(BATCH_SIZE + 5)]
    for n, url in enumerate(urls):
        response = requests.Response()
        response.status_code, response._content, response.url = 200, b"%d" % n, url
        response.raw = HTTPResponse(body=b"", status=200, request_url=url)
        cache.settle(cache.lookup("GET", url, None), response)
        if n == BATCH_SIZE - 2:  # held in memory: this client reads it, the file has none
            assert cache.lookup("GET", url, None).hit.content == b"%d" % n
            assert other.lookup("GET", url, None).hit is None
    # the batch was written in one go when it was full; the rest waits for flush/close
    assert other.lookup("GET", urls[BATCH_SIZE - 1], None).hit.content == b"%d" % (BATCH_SIZE - 1)
    assert other.lookup("GET", urls[-1], None).hit is None
    cache.close()
    assert other.lookup("GET", urls[-1], None).hit.content == b"%d" % (len(urls) - 1)


def test_preload_reads_in_bulk_and_serves_from_memory(tmp_path):
    cache = make_cache(tmp_path)
    urls = [f"{BASE}/v2/team/app/blobs/sha256:{i:064x}" for i in range(3)]
    for url in urls:
        store(cache, url, url.encode())
    tags = f"{BASE}/v2/team/app/tags/list"
    store(cache, tags)
    fresh = make_cache(tmp_path)
    assert fresh.preload([(u, None) for u in urls] + [(tags, None), (f"{BASE}/v2/x/tags/list",
                                                                      None)]) == 4
    fresh.content.bulk_delete(list(fresh.content.keys()))  # served from memory now
    assert fresh.lookup("GET", urls[1], None).hit.content == urls[1].encode()
    assert fresh.lookup("GET", tags, None).hit is not None
    fresh.release()
    assert fresh.lookup("GET", urls[1], None).hit is None


def test_a_preloaded_answer_is_peeked_at_then_handed_to_one_lookup(tmp_path):
    tags = f"{BASE}/v2/team/app/tags/list"
    manifest = f"{BASE}/v2/team/app/manifests/{DIGEST}"
    store(make_cache(tmp_path), tags, b'{"tags": ["a"]}')
    store(make_cache(tmp_path), manifest, b'{"config": {}}',
          {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    fresh = make_cache(tmp_path)
    assert fresh.preload([(tags, None), (manifest, "x")]) == 2
    # held as the rows read: bytes, nothing for the garbage collector to go through
    assert all(type(v) is bytes for v in fresh._preloaded.values())
    for _ in range(2):  # peeking leaves them there
        assert fresh.peek(tags, None) == (b'{"tags": ["a"]}', True)
        assert fresh.peek(manifest, "x") == (b'{"config": {}}', True)
    assert fresh.peek(f"{BASE}/v2/other/tags/list", None) is None
    fresh.answers.bulk_delete(list(fresh.answers.keys()))
    fresh.content.bulk_delete(list(fresh.content.keys()))
    hit = fresh.lookup("GET", tags, None).hit
    assert hit.content == b'{"tags": ["a"]}' and hit.from_cache and hit.status_code == 200
    assert fresh.lookup("GET", manifest, "x").hit.headers["content-type"] == \
        "application/vnd.oci.image.manifest.v1+json"
    # each served one lookup: the next one reads the file (emptied above), and peek finds none
    assert fresh.lookup("GET", tags, None).hit is None
    assert fresh.lookup("GET", manifest, "x").hit is None
    assert fresh.peek(tags, None) is None and not fresh._preloaded


def test_peek_says_when_a_preloaded_answer_is_no_longer_fresh(tmp_path):
    tags = f"{BASE}/v2/team/app/tags/list"
    store(make_cache(tmp_path), tags, b'{"tags": []}', {"ETag": '"t1"'})
    time.sleep(0.05)
    strict = make_cache(tmp_path, freshness=0.01)
    assert strict.preload([(tags, None)]) == 1
    assert strict.peek(tags, None) == (b'{"tags": []}', False)
    found = strict.lookup("GET", tags, None)
    assert found.hit is None and found.validators == {"If-None-Match": '"t1"'}


def test_when_a_row_was_stored_is_read_from_the_end_of_its_line():
    from registry_insights.registry.cache import _answer_row, _row_created

    response = requests.Response()
    response.status_code, response.url, response._content = 200, f"{BASE}/v2/_catalog", b"{}"
    # a header value that looks like the members read does not mislead it
    response.headers["X-Note"] = ',"created":5,"expires":6'
    now = utcnow()
    row = _answer_row(response, now, now + timedelta(seconds=30))
    assert _row_created(row) == pytest.approx(now.timestamp())
    assert _row_created(_answer_row(response, now, None)) == pytest.approx(now.timestamp())
    for bad in (b'{"status":200}\n{}', b'{"status":200,"created":x,"expires":1}\n',
                b"no newline"):
        assert _row_created(bad) is None


def test_the_keys_preload_works_out_are_those_of_key(tmp_path):
    cache = make_cache(tmp_path)
    requests_ = [(f"{BASE}/v2/a/blobs/{DIGEST}", None), (f"{BASE}/v2/a/manifests/v1", "b, a"),
                 (f"{BASE}/v2/a/manifests/{DIGEST}", "a"), (f"{BASE}/v2/a/tags/list", None)]
    cache.preload(requests_)
    assert {u: k[0] for (u, _a), k in cache._keys.items()} == \
        {u: cache.key("GET", u, a) for u, a in requests_}
    cache.release()
    assert cache._keys == {}


def test_stored_mutable_answers_are_lean_responses_revalidated_by_their_validators(tmp_path):
    from registry_insights.registry.responses import LeanResponse

    url = f"{BASE}/v2/team/app/manifests/v1"
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "ETag": '"e1"',
               "Docker-Content-Digest": DIGEST, "Link": '</v2/x?n=1>; rel="next"',
               "Set-Cookie": "lb=node-7; Path=/"}
    before = utcnow()
    store(make_cache(tmp_path), url, body, headers)
    hit = make_cache(tmp_path).lookup("GET", url, None).hit
    assert type(hit) is LeanResponse and hit.from_cache
    assert (hit.status_code, hit.url, hit.content, hit.json()["schemaVersion"]) == \
        (200, url, body, 2)
    assert dict(hit.headers) == {k: v for k, v in headers.items() if k != "Set-Cookie"}
    assert list(hit.headers) == ["Content-Type", "ETag", "Docker-Content-Digest", "Link"]
    assert hit.headers["docker-content-digest"] == DIGEST  # case-insensitive
    assert hit.links["next"]["url"] == "/v2/x?n=1"
    assert before <= hit.created_at <= utcnow() and hit.created_at.tzinfo is not None
    assert hit.expires - hit.created_at == timedelta(seconds=60)
    assert hit.cookies is not None and len(hit.cookies) == 0  # made on first use
    bulk = make_cache(tmp_path)
    assert bulk.preload([(url, None)]) == 1
    assert type(bulk.lookup("GET", url, None).hit) is LeanResponse
    # not fresh under a shorter window: to be revalidated with its validator
    time.sleep(0.01)
    strict = HttpCache(tmp_path, BASE, "anonymous", freshness=0.001)
    stale = strict.lookup("GET", url, None)
    assert stale.hit is None and stale.stale.content == body
    assert stale.validators == {"If-None-Match": '"e1"'}
    # a 304: the stored answer, renewed, and stored renewed
    from urllib3 import HTTPResponse

    not_modified = requests.Response()
    not_modified.status_code = 304
    not_modified.raw = HTTPResponse(body=b"", status=304, request_url=url)
    renewed = strict.settle(stale, not_modified)
    assert renewed.content == body and renewed.revalidated and renewed.created_at > hit.created_at
    strict.flush()
    again = make_cache(tmp_path).lookup("GET", url, None).hit
    assert again.created_at == renewed.created_at and again.content == body


def test_a_corrupt_answer_row_is_a_miss(tmp_path):
    url = f"{BASE}/v2/team/app/tags/list"
    cache = make_cache(tmp_path)
    store(cache, url, b'{"tags": ["a"]}')
    key = cache.key("GET", url, None)
    for bad in (b"not json\n{}", b"no newline", b'["a list"]\n{}', b'{"status": 200}\n{}'):
        cache.answers[key] = bad
        fresh = make_cache(tmp_path)
        assert fresh.lookup("GET", url, None).hit is None
        assert fresh.preload([(url, None)]) == 0
    # broken further in than the end preload reads: held as found, a miss when looked up
    cache.answers[key] = b'{"status":200,"url":,"created":1.0,"expires":null}\n{}'
    fresh = make_cache(tmp_path)
    assert fresh.preload([(url, None)]) == 1
    assert fresh.peek(url, None) == (b"{}", False)
    assert fresh.lookup("GET", url, None).hit is None
    assert fresh.lookup("GET", url, None).stale is None


def test_a_backend_passed_in_keeps_requests_cache_s_own_responses(tmp_path):
    from requests_cache import BaseCache, CachedResponse

    backend = BaseCache()  # in memory: neither SQLite table of ours
    cache = HttpCache(backend, BASE, "anonymous")
    url = f"{BASE}/v2/team/app/tags/list"
    store(cache, url, b'{"tags": ["a"]}', {"X-API-KEY": "s3cr3t", "ETag": '"t"'})
    held = backend.responses[cache.key("GET", url, None)]
    assert isinstance(held, CachedResponse)
    assert "Authorization" not in held.request.headers and "X-API-KEY" not in held.headers
    hit = HttpCache(backend, BASE, "anonymous").lookup("GET", url, None).hit
    assert hit.json() == {"tags": ["a"]} and hit.from_cache
    stale = HttpCache(backend, BASE, "anonymous", freshness=0).lookup("GET", url, None)
    assert stale.validators == {"If-None-Match": '"t"'}


def test_stored_responses_pickle_and_take_cookies():
    import pickle

    from registry_insights.registry.cache import _content_response
    from registry_insights.registry.responses import LeanResponse

    response = _content_response(f"{BASE}/v2/a/blobs/{DIGEST}", b"application/json\n[1]")
    assert isinstance(response, LeanResponse) and response.json() == [1]
    copy = pickle.loads(pickle.dumps(response))
    assert (copy.status_code, copy.content, copy.headers["Content-Type"]) == \
        (200, b"[1]", "application/json")
    jar = requests.cookies.cookiejar_from_dict({"a": "b"})
    copy.cookies = jar
    assert copy.cookies is jar and response.cookies is not jar
    # headers given when it is made: one case-insensitive dict, from a mapping or pairs
    made = LeanResponse([("Docker-Content-Digest", DIGEST), ("ETag", '"e"')])
    assert made.headers["docker-content-digest"] == DIGEST and list(made.headers) == \
        ["Docker-Content-Digest", "ETag"]
    assert dict(LeanResponse({"A": "1"}).headers) == {"A": "1"} and not LeanResponse().headers
    without = _content_response(f"{BASE}/v2/a/blobs/{DIGEST}", b"\n[1]")
    assert without.json() == [1] and "Content-Type" not in without.headers


def test_a_cold_walk_reads_lookups_from_memory_only_until_released(tmp_path):
    url = f"{BASE}/v2/team/app/blobs/{DIGEST}"
    store(make_cache(tmp_path), url, b"stored")
    cache = make_cache(tmp_path)
    cache.assume_cold()
    assert cache.lookup("GET", url, None).hit is None  # not asked of the store
    pending = f"{BASE}/v2/team/app/tags/list"
    store(cache, pending, b"{}")  # written meanwhile: still served
    assert cache.lookup("GET", pending, None).hit.content == b"{}"
    cache.release()
    assert cache.lookup("GET", url, None).hit.content == b"stored"


@pytest.mark.parametrize("where", ["url", "link"])
@pytest.mark.parametrize("name", ["access_token", "ACCESS_TOKEN", "token", "api_key"])
def test_an_answer_with_a_secret_in_its_url_or_link_is_never_kept(tmp_path, where, name):
    from urllib3 import HTTPResponse

    cache = make_cache(tmp_path)
    secret_url = f"{BASE}/v2/team/app/tags/list?n=5&{name}=s3cr3t"
    plain_url = f"{BASE}/v2/team/app/tags/list"
    if where == "url":
        assert cache.lookup("GET", secret_url, None) == (None, None, None, False)  # no key
        assert not cache.cacheable("GET", secret_url)
        return
    response = requests.Response()
    response.status_code, response._content, response.url = 200, b'{"tags": ["a"]}', plain_url
    response.headers["Link"] = f'<{secret_url}>; rel="next"'
    response.raw = HTTPResponse(body=b"", status=200, request_url=plain_url)
    response.request = requests.Request("GET", plain_url).prepare()
    found = cache.lookup("GET", plain_url, None)
    assert found.key is not None
    assert cache.settle(found, response) is response
    cache.flush()
    assert cache.lookup("GET", plain_url, None).hit is None  # not kept: asked again
    for path in tmp_path.glob("*.sqlite*"):
        assert b"s3cr3t" not in path.read_bytes()


def test_holds_no_content_until_a_content_addressed_answer_is_kept(tmp_path):
    """What decides whether a walk streams (nothing to preload) or reads its answers in bulk
    first."""
    cache = make_cache(tmp_path)
    assert cache.holds_no_content()
    store(cache, f"{BASE}/v2/team/app/tags/list")  # a mutable answer: not content
    assert cache.holds_no_content()
    url = f"{BASE}/v2/team/app/blobs/{DIGEST}"
    found = cache.lookup("GET", url, None)
    from urllib3 import HTTPResponse

    response = requests.Response()
    response.status_code, response._content, response.url = 200, b"{}", url
    response.raw = HTTPResponse(body=b"", status=200, request_url=url)
    cache.settle(found, response)
    assert not cache.holds_no_content()  # pending, not written yet
    cache.flush()
    assert not cache.holds_no_content()
    assert not make_cache(tmp_path).holds_no_content()  # another client of the same store
    assert HttpCache(None, BASE, "anonymous").holds_no_content()
    mine = HttpCache(SQLiteCache(str(tmp_path / "mine.sqlite")), BASE, "anonymous")
    assert mine.holds_no_content()  # a SQLite backend passed in gets the content table too
    from requests_cache import BaseCache

    # another kind keeps content among the other answers: no cheap way to tell, so no
    assert not HttpCache(BaseCache(), BASE, "anonymous").holds_no_content()


def test_answers_an_earlier_version_kept_are_read_and_dropped_with_the_others(tmp_path):
    """Before session 5, mutable answers were requests-cache's ``CachedResponse`` rows in its
    ``responses`` table, where the rows of _answer_row now go: still served (one by one and
    in bulk), and gone after an invalidation like the new rows (a tag deleted must not be
    listed from them)."""
    from requests_cache import CachedResponse
    from urllib3 import HTTPResponse

    cache = make_cache(tmp_path)
    url = f"{BASE}/v2/team/app/tags/list"
    response = requests.Response()
    response.status_code, response._content, response.url = 200, b'{"tags": ["old"]}', url
    response.raw = HTTPResponse(body=b"", status=200, request_url=url)
    response.request = requests.Request("GET", url).prepare()
    key = cache.key("GET", url, None)
    cache.backend.responses[key] = CachedResponse.from_response(response)
    assert not cache.answers[key].startswith(b'{"status":')  # requests-cache's own row
    assert make_cache(tmp_path).lookup("GET", url, None).hit.json() == {"tags": ["old"]}
    bulk = make_cache(tmp_path)
    assert bulk.preload([(url, None)]) == 1
    assert bulk.lookup("GET", url, None).hit.json() == {"tags": ["old"]}
    assert make_cache(tmp_path).invalidate("team/app") == 1
    assert make_cache(tmp_path).lookup("GET", url, None).hit is None
    assert key not in cache.backend.responses


def test_an_answer_stored_after_preload_is_served_not_the_older_one_held(tmp_path):
    tags = f"{BASE}/v2/team/app/tags/list"
    store(make_cache(tmp_path), tags, b'{"tags": ["old"]}')
    cache = make_cache(tmp_path)
    assert cache.preload([(tags, None)]) == 1
    store(cache, tags, b'{"tags": ["new"]}')  # a fresh read ("refresh") while it is held
    assert cache.lookup("GET", tags, None).hit.content == b'{"tags": ["new"]}'
    assert cache.peek(tags, None) is None
