"""The HTTP cache object (registry_insights.registry.cache): the policy table as cases, keys,
freshness against the current window, invalidation of every page, identity labels."""

from __future__ import annotations

import time

import pytest
import requests
from requests_cache import DO_NOT_CACHE, SQLiteCache

from registry_insights.registry.cache import (
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
    """Save an answer as the caching session would (a recorded 200, no network)."""
    from urllib3 import HTTPResponse

    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.url = url
    response.headers.update(headers or {})
    response.raw = HTTPResponse(body=b"", status=200, request_url=url)
    response.request = requests.Request("GET", url).prepare()
    cache.backend.save_response(response, cache.key("GET", url, None))


def test_invalidate_drops_every_page_of_a_tag_list_and_every_catalog(tmp_path):
    cache = make_cache(tmp_path)
    urls = [f"{BASE}/v2/team/app/tags/list", f"{BASE}/v2/team/app/tags/list?last=b&n=2",
            f"{BASE}/v2/_catalog?n=1000", f"{BASE}/v2/_catalog?n=50&last=x",
            f"{BASE}/v2/team/app/manifests/old", f"{BASE}/v2/team/app/manifests/keep",
            f"{BASE}/v2/team/app-two/tags/list", f"{BASE}/v2/team/app/blobs/{DIGEST}"]
    for url in urls:
        store(cache, url)
    assert cache.invalidate("team/app", ["old"]) == 5
    left = {cache.key("GET", u, None) for u in urls} & set(cache.backend.responses.keys())
    assert left == {cache.key("GET", u, None) for u in urls[5:]}


def test_freshness_is_judged_against_the_current_window(tmp_path):
    url = f"{BASE}/v2/team/app/tags/list"
    cache = make_cache(tmp_path, freshness=60)
    store(cache, url)
    assert cache.lookup("GET", url, None)[0] is not None
    # the same store read with freshness=0: asked again, although saved for 60 s
    strict = HttpCache(cache.backend, BASE, "anonymous", freshness=0)
    hit, options = strict.lookup("GET", url, None)
    assert hit is None and options == {"force_refresh": True}  # no validator: fetched again
    store(cache, f"{BASE}/v2/team/app/manifests/v1", headers={"ETag": '"x"'})
    hit, options = strict.lookup("GET", f"{BASE}/v2/team/app/manifests/v1", None)
    assert hit is None and options == {"refresh": True}  # revalidated with If-None-Match


def test_immutable_answers_stay_fresh_and_modes(tmp_path):
    cache = make_cache(tmp_path, freshness=0)
    url = f"{BASE}/v2/team/app/manifests/{DIGEST}"
    store(cache, url)
    time.sleep(0.01)
    assert cache.lookup("GET", url, None)[0] is not None
    assert cache.lookup("GET", url, None, mode=False) == (None, {"expire_after": DO_NOT_CACHE})
    assert cache.lookup("GET", url, None, mode="refresh")[0] is None
    cache.evict("GET", url, None)
    assert cache.lookup("GET", url, None) == (None, {})


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
