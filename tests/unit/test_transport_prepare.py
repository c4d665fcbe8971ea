"""The transport's own preparation of the requests a walk sends by the thousand: the same
request ``Session.request`` would prepare, or no shortcut at all."""

from __future__ import annotations

import pytest
import requests

from registry_insights.errors import InvalidResponse
from registry_insights.registry.auth.credentials import ANONYMOUS
from registry_insights.registry.cache import HttpCache
from registry_insights.registry.transport import Transport

BASE = "https://registry.example.com:5000"
DIGEST = "sha256:" + "ab" * 32


def transport(base: str = BASE) -> Transport:
    return Transport(base, ANONYMOUS, HttpCache(None, base, "anonymous"))


def reference(t: Transport, method: str, url: str, **kwargs) -> requests.PreparedRequest:
    return t.session.prepare_request(requests.Request(method, url, **kwargs))


@pytest.mark.parametrize("path", [
    f"/v2/team/app/manifests/{DIGEST}",
    "/v2/team/app/manifests/v1.2.3_rc-1",
    f"/v2/a/b/c/blobs/{DIGEST}",
    "/v2/team/app/tags/list?n=100&last=v1.0",
    "/v2/_catalog?n=1000",
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_plain_requests_are_prepared_as_session_request_would(path, method):
    t = transport()
    url = t.url(path)
    assert url == BASE + path
    headers = {"Accept": "application/vnd.oci.image.index.v1+json", "Authorization": "Bearer x"}
    ours = t._prepared(t.session, method, url, {"headers": headers})
    theirs = reference(t, method, url, headers=headers)
    assert ours is not None
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)
    assert ours.hooks == theirs.hooks


def test_session_cookies_go_with_a_prepared_request():
    t = transport()
    t.session.cookies.set("AWSALB", "sticky", domain="registry.example.com", path="/")
    url = t.url("/v2/team/app/tags/list")
    ours = t._prepared(t.session, "GET", url, {})
    assert ours.headers["Cookie"] == reference(t, "GET", url).headers["Cookie"] == \
        "AWSALB=sticky"


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "/v2/team/app/tags/list?last=%zz", {}),  # requests would re-quote
    ("GET", "/v2/team/../app/tags/list", {}),  # dot segments
    ("GET", "/v2/", {}),  # the probe
    ("PUT", "/v2/team/app/manifests/v1", {"data": b"{}"}),  # a body
    ("DELETE", f"/v2/team/app/manifests/{DIGEST}", {}),  # not a read
    ("GET", "/v2/team/app/tags/list", {"params": {"n": 5}}),
    ("GET", "/v2/team/app/tags/list", {"auth": ("u", "p")}),
])
def test_anything_else_goes_through_session_request(method, path, kwargs):
    t = transport()
    assert t._prepared(t.session, method, BASE + path, kwargs) is None


def test_a_base_url_requests_would_rewrite_gets_no_shortcut():
    t = transport("https://Registry.Example.com")  # requests lower-cases the host
    assert t._prepared(t.session, "GET", t.url("/v2/a/tags/list"), {}) is None
    assert transport("https://host.example/reg")._prepared(
        requests.Session(), "GET", "https://host.example/reg/v2/a/tags/list", {}) is not None


def test_plain_paths_stay_under_a_base_path_and_other_urls_are_still_checked():
    t = transport("https://host.example/reg")
    assert t.url("/v2/a/tags/list?n=5") == "https://host.example/reg/v2/a/tags/list?n=5"
    assert t.url("https://host.example/v2/a/tags/list?n=5&last=b") == \
        "https://host.example/reg/v2/a/tags/list?n=5&last=b"
    with pytest.raises(InvalidResponse, match="another host"):
        t.url("https://evil.example/v2/a/tags/list")
