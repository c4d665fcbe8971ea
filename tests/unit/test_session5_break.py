"""Adversarial probes of session 5's changes without a registry: the rows of the answers
table, LeanResponse, the rate-limit pre-check, a requests-cache backend passed in."""

from __future__ import annotations

import copy
import pickle
import sqlite3
from datetime import timedelta

import pytest
import requests
import requests_cache
import urllib3
from requests.structures import CaseInsensitiveDict

from registry_insights.registry.auth.credentials import ANONYMOUS
from registry_insights.registry.cache import HttpCache, _answer_response, _answer_row
from registry_insights.registry.responses import LeanResponse
from registry_insights.registry.transport import Transport

BASE = "http://registry.example:5000"
TAGS = f"{BASE}/v2/team/app/tags/list"


def _answer(body: bytes, headers: dict, url: str = TAGS, status: int = 200) -> LeanResponse:
    r = LeanResponse()
    r.status_code, r.reason, r.url = status, "OK", url
    r.headers = CaseInsensitiveDict(headers)
    r._content, r._content_consumed = body, True
    r.encoding = requests.utils.get_encoding_from_headers(r.headers)
    r.raw = urllib3.HTTPResponse(body=b"", headers=headers, status=status,
                                 preload_content=False, request_url=url)
    r.request = requests.Request("GET", url, headers={"Authorization": "Bearer s3cret"}
                                 ).prepare()
    return r


@pytest.mark.parametrize("body", [
    b"", b"\n", b"\n\n{}\n", bytes(range(256)), b"\xff\xfe\x00not utf-8\n\r\n",
    b"{\"tags\": [\"a\"]}" * 200_000,
])
def test_answer_rows_keep_any_body_byte_for_byte(body):
    from requests_cache.policy import utcnow

    now = utcnow()
    row = _answer_row(_answer(body, {"Content-Type": "application/json"}), now,
                      now + timedelta(seconds=60))
    back = _answer_response(row)
    assert back.content == body and back.status_code == 200 and back.url == TAGS
    assert back.from_cache and abs(back.created_at - now) < timedelta(milliseconds=1)
    assert back.expires - back.created_at == timedelta(seconds=60)


def test_answer_rows_keep_odd_headers_and_drop_secret_ones():
    from requests_cache.policy import utcnow

    headers = {
        "Content-Type": "text/plain; charset=latin-1",
        "X-Latin": "caf\u00e9 \u00ff",  # what the wire's bytes decode to (ISO-8859-1)
        "X-Json": "{\"a\": [1, \"\\n\"]}\\",
        "X-Newline-Escaped": "a\nb\r\nc",  # not from the wire, but must not split the row
        "Link": '</v2/a/tags/list?n=1&last=x>; rel="next", <https://x/y>; rel="help"',
        "Set-Cookie": "sid=s3cret", "set-cookie2": "old=s3cret",
        "Authorization": "Bearer s3cret", "X-API-KEY": "s3cret", "Cookie": "c=s3cret",
    }
    row = _answer_row(_answer(b"body", headers, url=TAGS + "?n=1&last=caf%C3%A9"), utcnow(),
                      None)
    assert b"s3cret" not in row and row.count(b"\n") == 1
    back = _answer_response(row)
    assert back.content == b"body" and back.expires is None
    assert back.url == TAGS + "?n=1&last=caf%C3%A9"
    for name in ("X-Latin", "X-Json", "X-Newline-Escaped", "Link", "Content-Type"):
        assert back.headers[name] == headers[name]
    assert back.encoding == "latin-1" and back.text == "body"
    assert not back.cookies and "Set-Cookie" not in back.headers


@pytest.mark.parametrize("row", [b"", b"{}", b"[]\n", b"{\"status\": 200}\nbody",
                                 b"\xff\xfe\n", b"null\nx"])
def test_corrupt_answer_rows_raise_what_the_reader_catches(row):
    with pytest.raises(Exception):  # noqa: B017, PT011 - any: the store treats it as a miss
        _answer_response(row)


def test_a_corrupt_row_in_the_store_is_a_miss_one_by_one_and_in_bulk(tmp_path):
    cache = HttpCache(tmp_path, BASE, "anonymous")
    found = cache.lookup("GET", TAGS, None)
    cache.settle(found, _answer(b'{"tags": ["a"]}', {"Content-Type": "application/json"}))
    cache.flush()
    db = next(tmp_path.glob("*.sqlite"))
    with sqlite3.connect(db) as con:
        assert con.execute("UPDATE responses SET value = ?", (b"\xff\n",)).rowcount == 1
    again = HttpCache(tmp_path, BASE, "anonymous")
    assert again.lookup("GET", TAGS, None).hit is None
    assert again.preload([(TAGS, None)]) == 0
    assert again.lookup("GET", TAGS, None).hit is None


def test_lean_responses_pickle_copy_and_behave_as_responses():
    r = _answer(b'{"tags": ["a"]}', {"Content-Type": "application/json", "ETag": '"e"'})
    r.cookies.set("late", "1")  # the jar made on first use is the response's own
    for other in (pickle.loads(pickle.dumps(r)), copy.deepcopy(r), copy.copy(r)):
        assert other.json() == {"tags": ["a"]} and other.headers["etag"] == '"e"'
        assert other.cookies.get("late") == "1" and other.ok and other.status_code == 200
    fresh = LeanResponse()
    assert not fresh.cookies and fresh.cookies is fresh.cookies
    assert LeanResponse().cookies is not fresh.cookies  # no jar shared between responses
    assert fresh.elapsed == timedelta(0) and fresh.history == [] and fresh.history is not \
        LeanResponse().history
    with pytest.raises(requests.HTTPError):
        _answer(b"", {}, status=404).raise_for_status()


@pytest.mark.parametrize("headers, limits", [
    ({"Content-Type": "x"}, {}),
    ({"RateLimit-Remaining": "7"}, {"RateLimit-Remaining": "7"}),
    ({"X-RATELIMIT-LIMIT": "100;w=21600"}, {"X-RATELIMIT-LIMIT": "100;w=21600"}),
    ({"x-ratelimit-reset": "5", "Other": "1"}, {"x-ratelimit-reset": "5"}),
])
@pytest.mark.parametrize("kind", [CaseInsensitiveDict, dict])
def test_rate_limit_headers_are_found_in_any_case_and_any_mapping(headers, limits, kind):
    for mapping in (kind(headers), urllib3.HTTPHeaderDict(headers)):
        t = Transport(BASE, ANONYMOUS, HttpCache(None, BASE, "anonymous"))
        t._note_rate_limit(mapping)
        assert t.rate_limit == limits


def test_backend_passed_in_keeps_cached_responses_and_revalidates(tmp_path):
    backend = requests_cache.BaseCache()
    cache = HttpCache(backend, BASE, "anonymous", freshness=0)
    url = f"{BASE}/v2/team/app/manifests/v1"
    found = cache.lookup("GET", url, "application/json")
    cache.settle(found, _answer(b"{}", {"ETag": '"d1"', "Set-Cookie": "s=1",
                                        "Content-Type": "application/json"}, url=url))
    cache.flush()
    (stored,) = list(backend.responses.values())
    assert isinstance(stored, requests_cache.CachedResponse)
    assert "Authorization" not in stored.request.headers
    stale = cache.lookup("GET", url, "application/json")
    assert stale.hit is None and stale.validators == {"If-None-Match": '"d1"'}
    not_modified = _answer(b"", {}, url=url, status=304)
    renewed = cache.settle(stale, not_modified)
    assert renewed.content == b"{}" and renewed.revalidated
    cache.flush()
    (stored,) = list(backend.responses.values())
    assert isinstance(stored, requests_cache.CachedResponse) and stored.content == b"{}"
    assert cache.invalidate("team/app", ("v1",)) == 1 and not list(backend.responses.keys())


def test_revalidation_moves_a_row_between_pending_and_store(tmp_path):
    cache = HttpCache(tmp_path, BASE, "anonymous", freshness=0)
    url = f"{BASE}/v2/team/app/manifests/v1"
    cache.settle(cache.lookup("GET", url, None),
                 _answer(b"{}", {"ETag": '"d1"', "Content-Type": "application/json"}, url=url))
    pending = cache.lookup("GET", url, None)  # from the pending row (bytes)
    assert pending.stale is not None and pending.validators == {"If-None-Match": '"d1"'}
    cache.settle(pending, _answer(b"", {}, url=url, status=304))
    cache.flush()
    again = HttpCache(tmp_path, BASE, "anonymous", freshness=60)
    hit = again.lookup("GET", url, None).hit
    assert hit is not None and hit.content == b"{}" and hit.headers["ETag"] == '"d1"'


def test_a_delete_through_one_client_reaches_another_on_the_same_memory_backend():
    """A requests-cache SQLite backend passed in (here in memory, where every connection is
    a database of its own) keeps its answers in its own ``responses``, shared by every
    client given it: an invalidation through one is seen by the other."""
    backend = requests_cache.SQLiteCache(":memory:")
    reader = HttpCache(backend, BASE, "anonymous")
    deleter = HttpCache(backend, BASE, "anonymous")
    reader.settle(reader.lookup("GET", TAGS, None),
                  _answer(b'{"tags": ["a", "gone"]}', {"Content-Type": "application/json"}))
    reader.flush()
    assert deleter.lookup("GET", TAGS, None).hit.json() == {"tags": ["a", "gone"]}
    assert deleter.invalidate("team/app", ("gone",)) == 1
    assert reader.lookup("GET", TAGS, None).hit is None
