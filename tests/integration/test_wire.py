"""Wire behaviours of other registries, reproduced by a rewriting proxy in front of a real
Distribution registry (tests/proxy.py), and what the client does about each."""

from __future__ import annotations

import io
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import registry_insights as ri
from registry_insights.registry import mediatypes as mt
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, RewritingProxy, client_for, oci_error

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wire_fleet(token_registry):
    with client_for(token_registry.url, token_registry) as client:
        return push_fleet(client, "wire", repositories=2, tags=3)


def rewrite_challenge(value):
    def rewrite(request, reply):
        if reply.status == 401 and reply.header("WWW-Authenticate"):
            original = reply.header("WWW-Authenticate")
            params = dict(p.split("=", 1) for p in original.split(" ", 1)[1].split(","))
            realm, service = params["realm"].strip('"'), params["service"].strip('"')
            reply.set_header("WWW-Authenticate", value.format(realm=realm, service=service))
        return reply
    return rewrite


@pytest.mark.parametrize("form", [
    'bearer realm={realm},service={service}',                         # unquoted, lower case
    'Basic realm="basic", Bearer realm="{realm}", service="{service}"',  # two, basic first
    'BEARER realm="{realm}",service="{service}",error="invalid_token"',
])
def test_challenge_forms(proxied, token_registry, wire_fleet, form):
    proxied.rewrites.append(rewrite_challenge(form))
    with client_for(proxied.url, token_registry) as client:
        assert client.ping() == "bearer"
        assert client.tags("wire/r0") == ["latest", "v0", "v1", "v2"]


@pytest.mark.parametrize("fields,omit", [("access_token", False), ("token", True)])
def test_token_json_variants(token_registry, wire_fleet, fields, omit):
    token_registry.token_server.json_fields = fields
    token_registry.token_server.omit_expires_in = omit
    with client_for(token_registry.url, token_registry) as client:
        assert client.tags("wire/r1") == ["latest", "v0", "v1", "v2"]
        token = next(iter(client._transport.auth.tokens._tokens.values()))
        assert token.expires_in == (60.0 if omit else 300.0)


def test_missing_digest_header_is_computed_and_a_wrong_one_raises(proxied, token_registry,
                                                                   wire_fleet):
    truth = {(i.repository, i.tag): i.digest for i in wire_fleet}
    mode = {"strip": True}

    def digest_header(request, reply):
        if "/manifests/" in request.path and reply.status == 200:
            reply.set_header("Docker-Content-Digest",
                             None if mode["strip"] else "sha256:" + "0" * 64)
        return reply
    proxied.rewrites.append(digest_header)
    with client_for(proxied.url, token_registry) as client:
        assert client.manifest("wire/r0", "v1").digest == truth[("wire/r0", "v1")]
        mode["strip"] = False
        with pytest.raises(ri.DigestMismatch, match="hash to"):
            client.manifest("wire/r0", "v1")


def test_429_with_retry_after_every_20th_request(proxied, token_registry, wire_fleet):
    repos = ["wire/r0", "wire/r1"]
    with client_for(token_registry.url, token_registry) as direct:
        expected = ri.tags_frame(direct, repositories=repos, progress=False)

    def limit(request):
        if request.n % 20 == 0:
            return oci_error(429, "TOOMANYREQUESTS", "slow down",
                             [("Retry-After", "1"), ("RateLimit-Remaining", "0")])
        return None
    proxied.rules.append(limit)
    with client_for(proxied.url, token_registry, max_workers=4) as client:
        frame = ri.tags_frame(client, repositories=repos, progress=False)
        assert client.request_counts["retry"] >= 1
        assert client.rate_limit.get("RateLimit-Remaining") is not None
    columns = ["repository", "tag", "platform", "digest", "created_at", "layer_size"]
    key = ["repository", "tag", "platform"]
    assert frame[columns].sort_values(key).reset_index(drop=True).equals(
        expected[columns].sort_values(key).reset_index(drop=True))
    assert sum(1 for _m, _p, status in proxied.log if status == 429) >= 1


def test_429_retries_are_bounded(proxied, token_registry, wire_fleet):
    proxied.rules.append(lambda r: oci_error(429, "TOOMANYREQUESTS", "no", [("Retry-After", "0")]))
    with client_for(proxied.url, token_registry, retries=2) as client:
        with pytest.raises(ri.TooManyRequests):
            client.ping()
        assert client.request_counts["retry"] == 2


def test_head_refused_falls_back_to_get(proxied, token_registry, wire_fleet):
    proxied.rules.append(lambda r: Reply(405) if r.method == "HEAD" else None)
    truth = {(i.repository, i.tag): i.digest for i in wire_fleet}
    with client_for(proxied.url, token_registry) as client:
        assert client.head_manifest("wire/r1", "v0").digest == truth[("wire/r1", "v0")]


class _Storage(BaseHTTPRequestHandler):
    blobs: dict = {}
    authorizations: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        type(self).authorizations.append(self.headers.get("Authorization"))
        data = self.blobs.get(self.path.rsplit("/", 1)[-1])
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")


def test_blob_redirect_to_storage_host_drops_authorization(proxied, token_registry, wire_fleet):
    image = wire_fleet[0]
    with client_for(token_registry.url, token_registry) as direct:
        manifest = direct.manifest(image.repository, image.manifest_digest)
        layer = manifest.layers[-1]
        data = io.BytesIO()
        direct.blob(image.repository, layer.digest, data)
    _Storage.blobs = {layer.digest: data.getvalue()}
    _Storage.authorizations = []
    storage = ThreadingHTTPServer(("127.0.0.1", 0), _Storage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    port = storage.server_address[1]
    try:
        def redirect(request):
            if request.method == "GET" and "/blobs/sha256:" in request.path \
                    and request.headers.get("Authorization"):
                digest = request.path.rsplit("/", 1)[-1]
                return Reply(307, [("Location", f"http://localhost:{port}/b/{digest}")])
            return None
        proxied.rules.append(redirect)
        with client_for(proxied.url, token_registry) as client:
            out = io.BytesIO()
            assert client.blob(image.repository, layer.digest, out) == layer.size
        assert out.getvalue() == data.getvalue()
        assert _Storage.authorizations == [None]
    finally:
        storage.shutdown()
        storage.server_close()


def test_html_answers_raise_with_first_bytes(proxied, token_registry, wire_fleet):
    page = b"<html><body>Service Temporarily Unavailable</body></html>"

    def html(request):
        if "/manifests/" in request.path or "/tags/list" in request.path:
            return Reply(200, [("Content-Type", "text/html")], page)
        return None
    proxied.rules.append(html)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.InvalidResponse, match="Service Temporarily"):
            client.manifest("wire/r0", "v0")
        with pytest.raises(ri.InvalidResponse, match="<html>"):
            client.tags("wire/r0")


def test_catalog_page_size_cap_is_halved(proxied, token_registry, wire_fleet):
    def cap(request):
        if request.path.startswith("/v2/_catalog?n="):
            n = int(request.path.split("n=")[1].split("&")[0])
            if n > 100:
                return oci_error(400, "PAGINATION_NUMBER_INVALID", "n too large")
        return None
    proxied.rules.append(cap)
    with client_for(proxied.url, token_registry) as client:
        repos = client.repositories()
    assert {"wire/r0", "wire/r1"} <= set(repos)
    asked = [p for m, p, s in proxied.log if p.startswith("/v2/_catalog?n=")]
    assert asked[:4] == ["/v2/_catalog?n=1000", "/v2/_catalog?n=500", "/v2/_catalog?n=250",
                         "/v2/_catalog?n=125"]
    assert asked[4] == "/v2/_catalog?n=62"


def test_link_loops_and_foreign_hosts_are_refused(proxied, token_registry, wire_fleet):
    target = {"link": '</v2/_catalog?n=1000>; rel="next"'}

    def link(request, reply):
        if request.path.startswith("/v2/_catalog"):
            reply.set_header("Link", target["link"])
        return reply
    proxied.rewrites.append(link)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.InvalidResponse, match="pagination loop"):
            client.repositories()
        target["link"] = '<http://localhost:1/v2/_catalog?last=x>; rel="next"'
        with pytest.raises(ri.InvalidResponse, match="another host"):
            client.repositories()


def test_catalog_unavailable_and_explicit_repositories(proxied, token_registry, wire_fleet):
    proxied.rules.append(lambda r: oci_error(404, "NOT_FOUND", "no catalog")
                         if r.path.startswith("/v2/_catalog") else None)
    with client_for(proxied.url, token_registry) as client:
        with pytest.raises(ri.CatalogUnavailable, match="pass the repositories explicitly"):
            ri.tags_frame(client, progress=False)
        frame = ri.tags_frame(client, repositories=["wire/r0"], progress=False)
    assert sorted(set(frame["tag"])) == ["latest", "v0", "v1", "v2"]


SCHEMA1 = {
    "schemaVersion": 1, "name": "wire/r0", "tag": "old", "architecture": "amd64",
    "fsLayers": [{"blobSum": "sha256:" + "a" * 64}],
    "history": [{"v1Compatibility": json.dumps({"created": "2016-01-01T00:00:00Z"})}],
    "signatures": [{"header": {}, "signature": "x", "protected": "y"}],
}


def test_schema1_manifest_is_reported_not_crashed_on(proxied, token_registry, wire_fleet):
    body = json.dumps(SCHEMA1).encode()

    def schema1(request):
        if request.path == "/v2/wire/r0/manifests/v0":
            return Reply(200, [("Content-Type", mt.DOCKER_SCHEMA1_SIGNED)], body)
        return None
    proxied.rules.append(schema1)
    with client_for(proxied.url, token_registry) as client:
        frame = ri.tags_frame(client, repositories=["wire/r0"], progress=False)
    row = frame[frame["tag"] == "v0"].iloc[0]
    assert row["media_type"] == mt.DOCKER_SCHEMA1_SIGNED
    assert row["layer_size"] is None or str(row["layer_size"]) == "<NA>"
    assert len(frame[frame["tag"] == "v1"]) == 1


def test_multi_scope_tokens(make_registry):
    handle = make_registry("token")
    with client_for(handle.url, handle) as client:
        seeded = push_fleet(client, "many", repositories=25, tags=1, index_every=0)
    handle.token_server.reset_counts()
    with client_for(handle.url, handle) as client:
        frame = ri.tags_frame(client, progress=False)
        assert len(frame) == len(seeded)
        assert client.request_counts["token"] <= math.ceil(25 / 20) + 1
    # a token server that grants only the first scope: the client falls back per repository
    handle.token_server.max_scopes_per_token = 1
    handle.token_server.reset_counts()
    with client_for(handle.url, handle) as client:
        frame = ri.tags_frame(client, progress=False)
        assert len(frame) == len(seeded)
        assert client.request_counts["token"] <= 1 + 2 + 25


def _docker_config(tmp_path, monkeypatch, host, entry):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: entry}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))


def test_identity_token_uses_oauth2_refresh_grant(token_registry, wire_fleet, tmp_path,
                                                  monkeypatch):
    server = token_registry.token_server
    _docker_config(tmp_path, monkeypatch, token_registry.host,
                   {"identitytoken": server.refresh_token_for("alice")})
    server.reset_counts()
    with ri.RegistryClient(token_registry.url, cache=None) as client:
        assert client.credentials.source.endswith("config.json")
        assert client.tags("wire/r0") == ["latest", "v0", "v1", "v2"]
        assert "identity" in repr(client) and server.refresh_token_for("alice") not in repr(
            client.credentials)
    assert [line.split(" ", 1)[0] for line in server.request_log] == ["POST"]


def test_refresh_grant_falls_back_to_get_when_post_is_refused(token_registry, wire_fleet,
                                                              tmp_path, monkeypatch):
    import base64

    server = token_registry.token_server
    refresh = server.refresh_token_for("alice")
    with RewritingProxy(server.url) as realm, RewritingProxy(token_registry.url) as registry:
        def no_post_and_translate(request):
            if request.method == "POST":
                return Reply(405)
            sent = request.headers.get("Authorization", "")
            if sent == "Basic " + base64.b64encode(f"<token>:{refresh}".encode()).decode():
                pair = f"alice:{token_registry.password}".encode()
                request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            return None
        realm.rules.append(no_post_and_translate)
        registry.rewrites.append(rewrite_challenge(
            f'Bearer realm="{realm.url}/token",service="{{service}}"'))
        _docker_config(tmp_path, monkeypatch, registry.url.split("://")[1],
                       {"identitytoken": refresh})
        with ri.RegistryClient(registry.url, cache=None) as client:
            assert client.tags("wire/r1") == ["latest", "v0", "v1", "v2"]
        assert [m for m, _p, _s in realm.log] == ["POST", "GET"]


def test_layer_labelled_content_encoding_gzip_is_kept_as_stored(proxied, token_registry,
                                                                wire_fleet):
    image = wire_fleet[0]

    def label(request, reply):
        if "/blobs/sha256:" in request.path:
            reply.set_header("Content-Encoding", "gzip")  # as some object stores do for .tar.gz
        return reply
    proxied.rewrites.append(label)
    with client_for(proxied.url, token_registry) as client:
        layer = client.manifest(image.repository, image.manifest_digest).layers[0]
        out = io.BytesIO()
        assert client.blob(image.repository, layer.digest, out) == layer.size
    assert ri.reference.sha256_digest(out.getvalue()) == layer.digest


def test_delete_asks_for_a_delete_token_never_reusing_the_pull_token(proxied, token_registry):
    server = token_registry.token_server
    with client_for(proxied.url, token_registry) as client:
        seeded = push_fleet(client, "deltok", repositories=1, tags=1, index_every=0)
        assert client.tags("deltok/r0") == ["latest", "v0"]  # a pull token is now held
        server.reset_counts()
        proxied.log.clear()
        assert client.delete("deltok/r0", digest=seeded[0].digest) == ["latest", "v0"]
    scopes = [s for _identity, asked in server.issued for s in asked]
    assert "repository:deltok/r0:delete" in scopes
    deletes = [(m, s) for m, p, s in proxied.log if m == "DELETE"]
    assert deletes == [("DELETE", 202)]  # sent with the delete token at once: no 401 first
