"""Unit tests of the tokens module: token responses and the single-flight token cache."""

from __future__ import annotations

import threading
import time
import types

import pytest

from registry_insights.registry.auth import tokens
from registry_insights.registry.auth.tokens import (
    DEFAULT_EXPIRES_IN,
    Token,
    TokenCache,
    token_from_response,
)

SECRET = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl"
SCOPES = ("repository:team/app:pull",)


# -- token responses ------------------------------------------------------------------------------


def test_token_only():
    token = token_from_response({"token": SECRET, "expires_in": 300}, SCOPES, 100.0)
    assert token.value == SECRET
    assert token.expires_in == 300.0
    assert token.obtained == 100.0
    assert token.scopes == SCOPES


def test_access_token_only():
    token = token_from_response({"access_token": SECRET, "expires_in": 120}, SCOPES, 5.0)
    assert token.value == SECRET
    assert token.expires_in == 120.0


def test_both_prefers_token():
    token = token_from_response({"token": "from-token", "access_token": "from-access"}, (), 0.0)
    assert token.value == "from-token"


def test_empty_token_falls_back_to_access_token():
    token = token_from_response({"token": "", "access_token": "from-access"}, (), 0.0)
    assert token.value == "from-access"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"expires_in": 300, "refresh_token": SECRET},
        {"token": "", "access_token": "", "issued_at": "2024-01-02T03:04:05Z"},
        {"token": 12345, "refresh_token": SECRET},
        {"token": None, "expires_in": 60},
    ],
)
def test_neither_raises_value_error_naming_keys_only(data):
    with pytest.raises(ValueError) as info:
        token_from_response(data, SCOPES, 0.0)
    message = str(info.value)
    assert "'token'" in message
    assert "'access_token'" in message
    for key in data:
        assert repr(key) in message
    assert SECRET not in message
    assert "12345" not in message


def test_expires_in_missing_defaults_to_60():
    assert DEFAULT_EXPIRES_IN == 60
    assert token_from_response({"token": SECRET}, (), 0.0).expires_in == 60.0


@pytest.mark.parametrize("value", ["soon", None, [], {}, "", 0, -5, "0"])
def test_expires_in_unusable_defaults_to_60(value):
    assert token_from_response({"token": SECRET, "expires_in": value}, (), 0.0).expires_in == 60.0


@pytest.mark.parametrize(("value", "expected"), [("300", 300.0), (3600, 3600.0), (1.5, 1.5)])
def test_expires_in_numeric_values(value, expected):
    assert token_from_response({"token": SECRET, "expires_in": value}, (), 0.0).expires_in == (
        expected
    )


# -- Token ----------------------------------------------------------------------------------------


def test_token_repr_and_str_never_show_the_value():
    token = Token(value=SECRET, expires_in=300.0, obtained=1.0, scopes=SCOPES)
    for text in (repr(token), str(token), f"{token!r}", repr([token]), repr({"t": token})):
        assert SECRET not in text
    assert "redacted" in repr(token)
    assert "repository:team/app:pull" in repr(token)


def test_token_freshness_renews_early():
    token = Token(value=SECRET, expires_in=300.0, obtained=1000.0)
    # renews 10 s early (less than 10 % of 300 s)
    assert token.renew_at == 1290.0
    assert token.is_fresh(now=1289.9)
    assert not token.is_fresh(now=1290.0)
    short = Token(value=SECRET, expires_in=20.0, obtained=0.0)
    # 10 % of 20 s = 2 s early
    assert short.renew_at == 18.0
    assert short.is_fresh(now=17.0)
    assert not short.is_fresh(now=18.5)


# -- TokenCache -----------------------------------------------------------------------------------


class CountingFetch:
    """A fetch function that sleeps a little, counts its calls and hands out distinct tokens."""

    def __init__(self, expires_in: float = 300.0, delay: float = 0.05):
        self.expires_in = expires_in
        self.delay = delay
        self.calls: list[tuple] = []
        self._lock = threading.Lock()

    def __call__(self, key: tuple) -> Token:
        with self._lock:
            self.calls.append(key)
            n = len(self.calls)
        time.sleep(self.delay)
        return Token(value=f"token-{n}", expires_in=self.expires_in,
                     obtained=tokens.time.monotonic(), scopes=key)


def run_threads(count: int, target) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = target(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    return results


def test_concurrent_callers_of_one_key_fetch_once():
    cache = TokenCache()
    fetch = CountingFetch()
    key = ("https://auth/token", "registry", SCOPES, "alice")
    results = run_threads(16, lambda i: cache.get(key, fetch))
    assert len(fetch.calls) == 1
    assert fetch.calls == [key]
    assert {t.value for t in results} == {"token-1"}
    assert all(t is results[0] for t in results)
    assert len(cache) == 1


def test_fetches_separately_per_key():
    cache = TokenCache()
    fetch = CountingFetch()
    keys = [("realm", "svc", (f"repository:r{i % 4}:pull",), "alice") for i in range(16)]
    results = run_threads(16, lambda i: cache.get(keys[i], fetch))
    assert sorted(fetch.calls) == sorted(set(keys))
    assert len(fetch.calls) == 4
    assert len({t.value for t in results}) == 4
    for i, token in enumerate(results):
        assert token.scopes == keys[i]
        assert cache.peek(keys[i]) is token
    assert len(cache) == 4


def test_different_keys_fetch_in_parallel():
    cache = TokenCache()
    fetch = CountingFetch(delay=0.1)
    started = time.monotonic()
    run_threads(4, lambda i: cache.get(("k", i), fetch))
    elapsed = time.monotonic() - started
    assert len(fetch.calls) == 4
    assert elapsed < 0.3, f"keys were fetched one after another ({elapsed:.2f} s)"


def test_fresh_token_served_without_fetching():
    cache = TokenCache()
    fetch = CountingFetch(delay=0)
    first = cache.get(("k",), fetch)
    second = cache.get(("k",), fetch)
    assert first is second
    assert len(fetch.calls) == 1


@pytest.fixture
def clock(monkeypatch):
    """A controllable monotonic clock seen by the tokens module only."""
    now = [1000.0]
    monkeypatch.setattr(tokens, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_fetches_again_after_expiry(clock):
    cache = TokenCache()
    fetch = CountingFetch(expires_in=60.0, delay=0)
    key = ("realm", "svc", SCOPES, "anonymous")
    first = cache.get(key, fetch)
    assert first.obtained == 1000.0
    clock[0] = 1049.9  # renew_at = 1000 + 60 - 6
    assert cache.get(key, fetch) is first
    assert cache.peek(key) is first
    clock[0] = 1054.0
    assert cache.peek(key) is None
    second = cache.get(key, fetch)
    assert second is not first
    assert second.value == "token-2"
    assert len(fetch.calls) == 2
    assert cache.get(key, fetch) is second


def test_fetches_again_after_real_expiry():
    cache = TokenCache()
    fetch = CountingFetch(expires_in=0.05, delay=0)
    first = cache.get(("k",), fetch)
    time.sleep(0.06)
    second = cache.get(("k",), fetch)
    assert first.value == "token-1"
    assert second.value == "token-2"


def test_peek_never_fetches():
    cache = TokenCache()
    assert cache.peek(("k",)) is None
    assert len(cache) == 0


def test_drop_only_drops_the_same_token():
    cache = TokenCache()
    fetch = CountingFetch(delay=0)
    key = ("k",)
    held = cache.get(key, fetch)
    stale = Token(value="older", expires_in=300.0, obtained=tokens.time.monotonic())
    cache.drop(key, stale)
    assert cache.peek(key) is held
    # an equal-looking token that is not the held object does not drop it either
    cache.drop(key, Token(value=held.value, expires_in=held.expires_in, obtained=held.obtained,
                          scopes=held.scopes))
    assert cache.peek(key) is held
    cache.drop(key, held)
    assert cache.peek(key) is None
    assert len(cache) == 0
    again = cache.get(key, fetch)
    assert again.value == "token-2"


def test_drop_without_token_drops_whatever_is_held():
    cache = TokenCache()
    fetch = CountingFetch(delay=0)
    cache.get(("a",), fetch)
    kept = cache.get(("b",), fetch)
    cache.drop(("a",))
    cache.drop(("missing",))
    assert cache.peek(("a",)) is None
    assert cache.peek(("b",)) is kept
    assert len(cache) == 1


def test_cache_repr_shows_no_token():
    cache = TokenCache()
    cache.get(("k",), lambda key: Token(value=SECRET, expires_in=300.0,
                                        obtained=tokens.time.monotonic()))
    assert SECRET not in repr(cache)
    assert "1 tokens" in repr(cache)


def test_fetch_error_propagates_and_caches_nothing():
    cache = TokenCache()

    def failing(key):
        raise RuntimeError("token server down")

    with pytest.raises(RuntimeError, match="token server down"):
        cache.get(("k",), failing)
    assert len(cache) == 0
    assert cache.get(("k",), CountingFetch(delay=0)).value == "token-1"
