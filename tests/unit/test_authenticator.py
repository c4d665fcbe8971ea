"""The handshake with a fake adapter (no network): the one 401 retry, scope narrowing, where
credentials may go (challenges from the registry's own host only, realm checks)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from registry_insights import errors
from registry_insights.registry.auth.authenticator import check_realm
from registry_insights.registry.auth.credentials import Credentials
from registry_insights.registry.cache import HttpCache
from registry_insights.registry.transport import Transport

REGISTRY = "https://reg.example.com"
CHALLENGE = 'Bearer realm="https://auth.example.com/token",service="reg"'


def jwt(access: list[dict]) -> str:
    """An unsigned JWT whose ``access`` claim the client reads to see what was granted."""
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{b64({'alg': 'none'})}.{b64({'access': access})}.sig"


class FakeAdapter(BaseAdapter):
    """Answers from ``handler(request) -> (status, headers, body)``; records every request."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.seen.append(request)
        status, headers, body = self.handler(request)
        response = requests.Response()
        response.status_code, response.url, response.request = status, request.url, request
        response.headers.update(headers)
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return response

    def close(self):
        pass


USER = Credentials(username="u", password="p")


def make_transport(handler, credentials=USER):
    transport = Transport(REGISTRY, credentials, HttpCache(None, REGISTRY, "u"), retries=0)
    adapter = FakeAdapter(handler)
    for session in (transport.session, transport._token_session):
        session.mount("https://", adapter)
    return transport, adapter


def scopes_of(request) -> list[str]:
    return parse_qs(urlsplit(request.url).query).get("scope", [])


def test_a_refused_token_is_dropped_and_fetched_once_more():
    issued = []
    revoked = set()

    def handler(request):
        if request.url.startswith("https://auth.example.com/"):
            issued.append(f"t{len(issued) + 1}")
            return 200, {}, {"token": issued[-1], "expires_in": 300}
        if request.url.endswith("/v2/"):
            return 401, {"WWW-Authenticate": CHALLENGE}, b""
        sent = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if sent in issued and sent not in revoked:
            return 200, {}, {"tags": ["v1"]}
        return 401, {"WWW-Authenticate": CHALLENGE + ',scope="repository:a:pull"'}, b""

    transport, adapter = make_transport(handler)
    transport.request("tags", "GET", "/v2/a/tags/list", scopes=("repository:a:pull",))
    revoked.add("t1")  # the registry stops accepting the token it accepted before
    response = transport.request("tags", "GET", "/v2/a/tags/list",
                                 scopes=("repository:a:pull",))
    assert response.json() == {"tags": ["v1"]}
    assert issued == ["t1", "t2"]
    assert transport.request_counts == {}  # the fake adapter bypasses the counting one
    assert [r.headers.get("Authorization") for r in adapter.seen if "/tags/" in r.url] == \
        ["Bearer t1", "Bearer t1", "Bearer t2"]


def test_a_token_just_issued_and_refused_is_not_fetched_again():
    issued = []

    def handler(request):
        if request.url.startswith("https://auth.example.com/"):
            issued.append(f"t{len(issued) + 1}")
            return 200, {}, {"token": issued[-1], "expires_in": 300}
        return 401, {"WWW-Authenticate": CHALLENGE + ',scope="registry:catalog:*"'}, b""

    transport, adapter = make_transport(handler)
    with pytest.raises(errors.Unauthorized):
        transport.request("catalog", "GET", "/v2/_catalog", scopes=("registry:catalog:*",))
    assert issued == ["t1"]
    assert len([r for r in adapter.seen if "/_catalog" in r.url]) == 1


def test_a_second_refusal_is_not_retried_again():
    def handler(request):
        if request.url.startswith("https://auth.example.com/"):
            return 200, {}, {"token": "t", "expires_in": 300}
        return 401, {"WWW-Authenticate": CHALLENGE}, b""

    transport, adapter = make_transport(handler)
    with pytest.raises(errors.Unauthorized):
        transport.request("tags", "GET", "/v2/a/tags/list", scopes=("repository:a:pull",))
    # the token was issued for this request: refused, it is not asked for again (no loop)
    assert sum("/tags/" in r.url for r in adapter.seen) == 1


def test_a_group_token_that_does_not_grant_a_scope_narrows_to_its_own():
    def handler(request):
        if request.url.startswith("https://auth.example.com/"):
            asked = scopes_of(request)
            granted = [{"type": "repository", "name": "a", "actions": ["pull"]}]
            if asked == ["repository:b:pull"]:
                granted = [{"type": "repository", "name": "b", "actions": ["pull"]}]
            return 200, {}, {"token": jwt(granted), "expires_in": 300}
        if request.url.endswith("/v2/"):
            return 401, {"WWW-Authenticate": CHALLENGE}, b""
        return 200, {}, {"tags": []}

    transport, adapter = make_transport(handler)
    transport.auth.plan_scopes(["repository:a:pull", "repository:b:pull"])
    transport.request("tags", "GET", "/v2/a/tags/list", scopes=("repository:a:pull",))
    transport.request("tags", "GET", "/v2/b/tags/list", scopes=("repository:b:pull",))
    transport.request("tags", "GET", "/v2/b/tags/list", scopes=("repository:b:pull",))
    token_requests = [scopes_of(r) for r in adapter.seen if "auth.example.com" in r.url]
    assert token_requests == [["repository:a:pull", "repository:b:pull"],
                              ["repository:b:pull"]]


def test_a_challenge_from_another_host_is_never_adopted():
    """A blob redirected to storage that answers 401 with its own realm: no credentials go
    there and the registry's bearer scheme stays."""
    def handler(request):
        if request.url.startswith("https://auth.example.com/"):
            return 200, {}, {"token": "t", "expires_in": 300}
        if request.url.endswith("/v2/"):
            return 401, {"WWW-Authenticate": CHALLENGE}, b""
        if request.url.startswith("https://storage.example.net/"):
            return 401, {"WWW-Authenticate":
                         'Basic realm="storage"'}, b"no"
        return 307, {"Location": "https://storage.example.net/blob"}, b""

    transport, adapter = make_transport(handler)
    with pytest.raises(errors.Unauthorized):
        transport.request("blob", "GET", "/v2/a/blobs/sha256:" + "0" * 64,
                          scopes=("repository:a:pull",), cache=False)
    assert transport.scheme == "bearer"
    storage = [r for r in adapter.seen if "storage.example.net" in r.url]
    assert storage and all("Authorization" not in r.headers for r in storage)


@pytest.mark.parametrize(("realm", "registry", "ok"), [
    ("https://auth.example.com/token", "https://reg.example.com", True),
    ("http://auth.example.com/token", "https://reg.example.com", False),   # downgrade
    ("http://auth.example.com/token", "http://localhost:5000", True),
    ("https://10.0.0.5/token", "https://reg.example.com", False),          # private IP
    ("https://169.254.169.254/token", "https://reg.example.com", False),   # link-local
    ("https://127.0.0.1:9999/token", "https://reg.example.com", False),    # loopback
    ("http://127.0.0.1:9999/token", "http://127.0.0.1:5000", True),        # both loopback
    ("https://10.0.0.5:8443/token", "https://10.0.0.5", True),             # the same host
    ("ftp://auth.example.com/token", "https://reg.example.com", False),
    ("", "https://reg.example.com", False),
])
def test_realm_checks(realm, registry, ok):
    if ok:
        assert check_realm(realm, registry) == realm
    else:
        with pytest.raises(errors.InvalidResponse, match="no credentials were sent"):
            check_realm(realm, registry)


def test_only_unsupported_schemes_are_named():
    def handler(request):
        return 401, {"WWW-Authenticate": "Negotiate, NTLM"}, b""

    transport, _adapter = make_transport(handler)
    with pytest.raises(errors.Unauthorized, match="negotiate, ntlm"):
        transport.ping()
