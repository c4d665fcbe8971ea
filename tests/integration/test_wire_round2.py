"""Wire behaviours, round two (issue 12): endless pagination, long Retry-After, remembered
delete refusals, unsupported auth schemes, catalogs refused to fresh tokens, broken and
oversized blob downloads, failed pulls, registries under a path, bounded error and token
bodies, IPv6 and anonymous-ping registries. Each is reproduced by the rewriting proxy
(tests/support/proxy.py) in front of a real Distribution registry."""

from __future__ import annotations

import logging
import secrets

import pytest

import registry_insights as ri
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, Request, RewritingProxy, oci_error

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied(token_registry):
    with RewritingProxy(token_registry.url) as proxy:
        yield proxy


def client_for(url, handle, **kwargs):
    kwargs.setdefault("cache", None)
    return ri.RegistryClient(url, username=handle.username, password=handle.password, **kwargs)


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
