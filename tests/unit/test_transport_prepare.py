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


# -- the adapter's shortcuts: the same outcome as HTTPAdapter's, with less work per request


def _answer(headers, status=200, body=b'{"a": 1}'):
    import io

    import urllib3

    return urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                                reason="OK", preload_content=False)


def _adapter(t: Transport):
    return t.session.get_adapter(BASE)


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json; charset=utf-8", "Docker-Content-Digest": DIGEST},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/json", "Set-Cookie": "lb=node-7; Path=/"},
    {},
])
def test_a_response_is_built_as_requests_builds_it(headers):
    from requests.adapters import HTTPAdapter

    from registry_insights.registry.responses import LeanResponse

    t = transport()
    request = reference(t, "GET", f"{BASE}/v2/team/app/manifests/v1")
    ours = _adapter(t).build_response(request, _answer(headers))
    theirs = HTTPAdapter().build_response(request, _answer(headers))
    assert (ours.status_code, dict(ours.headers), ours.encoding, ours.reason, ours.url) == \
        (theirs.status_code, dict(theirs.headers), theirs.encoding, theirs.reason, theirs.url)
    assert ours.request is request and ours.connection is _adapter(t)
    assert dict(ours.cookies) == dict(theirs.cookies)
    assert ours.content == theirs.content == b'{"a": 1}'
    # requests reads cookies from a live answer (tests/integration/test_issue14_break.py
    # has a registry that sets them); here: built by requests itself when one is set
    assert isinstance(ours, LeanResponse) == ("Set-Cookie" not in headers)


def test_an_origin_s_pool_is_looked_up_once_and_again_once_closed(monkeypatch):
    from requests.adapters import HTTPAdapter

    t = transport()
    adapter = _adapter(t)
    looked_up = []
    real = HTTPAdapter.get_connection_with_tls_context

    def counting(self, request, verify, proxies=None, cert=None):
        looked_up.append(request.url)
        return real(self, request, verify, proxies, cert)

    monkeypatch.setattr(HTTPAdapter, "get_connection_with_tls_context", counting)
    first = reference(t, "GET", f"{BASE}/v2/team/app/manifests/v1")
    second = reference(t, "GET", f"{BASE}/v2/other/blobs/{DIGEST}")
    pool = adapter.get_connection_with_tls_context(first, True, {}, None)
    assert adapter.get_connection_with_tls_context(second, True, {}, None) is pool
    assert len(looked_up) == 1
    # another origin, another verify: pools of their own
    elsewhere = reference(t, "GET", "https://storage.example.com/b/x")
    assert adapter.get_connection_with_tls_context(elsewhere, True, {}, None) is not pool
    assert adapter.get_connection_with_tls_context(first, False, {}, None) is not pool
    # a proxy set: requests decides each time
    adapter.get_connection_with_tls_context(first, True, {"https": "http://proxy:3128"}, None)
    assert len(looked_up) == 4
    # the pool closed (urllib3 1.26 closes the pools its manager drops): asked again
    pool.close()
    again = adapter.get_connection_with_tls_context(first, True, {}, None)
    assert len(looked_up) == 5
    # the adapter closed: every pool forgotten
    adapter.close()
    assert adapter.get_connection_with_tls_context(first, True, {}, None) is not again
    assert len(looked_up) == 6


def test_a_pool_s_certificate_settings_are_made_once(monkeypatch, tmp_path):
    import requests.adapters

    bundle = tmp_path / "ca.pem"
    bundle.write_text("not read here")
    t = transport()
    adapter = _adapter(t)
    checked = []
    real = requests.adapters.os.path.exists
    monkeypatch.setattr(requests.adapters.os.path, "exists",
                        lambda path: checked.append(path) or real(path))
    request = reference(t, "GET", f"{BASE}/v2/team/app/manifests/v1")
    pool = adapter.get_connection_with_tls_context(request, str(bundle), {}, None)
    for _ in range(3):
        adapter.cert_verify(pool, request.url, str(bundle), None)
    assert checked == [str(bundle)]
    assert (pool.cert_reqs, pool.ca_certs) == ("CERT_REQUIRED", str(bundle))
    adapter.cert_verify(pool, request.url, False, None)  # other settings: made again
    assert pool.cert_reqs == "CERT_NONE" and pool.ca_certs is None
    with pytest.raises(OSError, match="invalid path"):
        adapter.cert_verify(pool, request.url, str(tmp_path / "gone.pem"), None)


@pytest.mark.parametrize("url", [
    f"{BASE}/v2/team/app/manifests/v1",
    f"{BASE}/v2/team/app/tags/list?n=100&last=v1.0",
    f"{BASE}/v2/",
    "https://storage.example.com/b/x?X-Amz-Signature=abc&X-Amz-Expires=60",
])
def test_the_request_target_is_the_one_requests_makes(url):
    from requests.adapters import HTTPAdapter

    t = transport()
    request = reference(t, "GET", url)
    for proxies in ({}, {"https": "http://proxy.example.com:3128"},
                    {"http": "http://proxy.example.com:3128"}):
        assert _adapter(t).request_url(request, proxies) == \
            HTTPAdapter().request_url(request, proxies)


def test_rate_limit_headers_are_kept_as_the_registry_named_them():
    t = transport()
    t._note_rate_limit(requests.structures.CaseInsensitiveDict({"Content-Type": "x"}))
    assert t.rate_limit == {}
    t._note_rate_limit(requests.structures.CaseInsensitiveDict(
        {"RateLimit-Remaining": "7", "x-ratelimit-limit": "100", "Date": "d"}))
    assert t.rate_limit == {"RateLimit-Remaining": "7", "x-ratelimit-limit": "100"}
    t._note_rate_limit({"X-RateLimit-Reset": "60"})  # urllib3's or a plain dict: the same
    assert t.rate_limit == {"X-RateLimit-Reset": "60"}
    t._note_rate_limit(requests.structures.CaseInsensitiveDict({"Date": "d"}))
    assert t.rate_limit == {"X-RateLimit-Reset": "60"}  # the last seen stays
