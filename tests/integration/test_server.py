"""Tests of registry_insights.testing.server and of the test registries (tests/registry_auth.py).

They talk to the registry with plain ``requests``, never through the project's client.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
from urllib.parse import urljoin

import jwt
import pytest
import requests

from registry_insights.errors import RegistryBinaryNotFound
from registry_insights.testing.server import RegistryServer
from tests.support.registries import (
    USERS,
    RegistryHandle,
    TokenServer,
    libtrust_key_id,
    make_htpasswd,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique_name(prefix: str = "test") -> str:
    return f"{prefix}/server-{uuid.uuid4().hex[:10]}"


def session_for(handle: RegistryHandle, scopes: list[str]) -> requests.Session:
    """A session authenticated to ``handle`` as its user (a bearer token for ``scopes``)."""
    session = requests.Session()
    session.trust_env = False  # no proxy, no netrc: loopback only
    if handle.mode == "basic":
        session.auth = handle.credentials
    elif handle.mode == "token":
        assert handle.token_server is not None
        answer = requests.get(
            handle.token_server.url,
            params={"service": handle.token_server.service, "scope": scopes},
            auth=handle.credentials,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        session.headers["Authorization"] = "Bearer " + answer.json()["token"]
    return session


def push_blob(session: requests.Session, url: str, name: str, data: bytes) -> str:
    """Monolithic upload: POST an upload session, PUT the bytes with ``?digest=``."""
    started = session.post(f"{url}/v2/{name}/blobs/uploads/", timeout=10)
    assert started.status_code == 202, started.text
    location = urljoin(url + "/", started.headers["Location"])
    digest = digest_of(data)
    finished = session.put(
        location,
        params={"digest": digest},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    assert finished.status_code == 201, finished.text
    assert finished.headers["Docker-Content-Digest"] == digest
    return digest


def push_image(
    session: requests.Session, url: str, name: str, tag: str, layer: bytes
) -> tuple[bytes, str, int]:
    """Push a config blob, one layer and an OCI manifest; return (manifest, digest, config size)."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = push_blob(session, url, name, config)
    layer_digest = push_blob(session, url, name, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        },
        indent=1,
    ).encode()
    put = session.put(
        f"{url}/v2/{name}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest_of(manifest)
    return manifest, digest_of(manifest), len(config)


# -- RegistryServer without a registry binary -----------------------------------------------


def test_missing_binary_raises():
    with pytest.raises(RegistryBinaryNotFound) as raised:
        RegistryServer(binary="no-such-registry-binary")
    assert "no-such-registry-binary" in str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)


# -- the three auth modes --------------------------------------------------------------------


@pytest.mark.integration
def test_anonymous_round_trip(anonymous_registry):
    handle = anonymous_registry
    assert handle.mode == "anonymous" and handle.username is None and handle.password is None
    assert handle.url == f"http://{handle.host}" and handle.host.startswith("127.0.0.1:")
    ping = requests.get(handle.url + "/v2/", timeout=10)
    assert ping.status_code == 200
    assert ping.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    check_round_trip(handle, session_for(handle, []))


@pytest.mark.integration
def test_basic_round_trip(basic_registry):
    handle = basic_registry
    assert (handle.mode, handle.username, handle.password) == ("basic", "alice", USERS["alice"])
    ping = requests.get(handle.url + "/v2/", timeout=10)
    assert ping.status_code == 401
    assert ping.headers["WWW-Authenticate"] == 'Basic realm="registry-insights-basic"'
    assert requests.get(handle.url + "/v2/", auth=("alice", "wrong"), timeout=10).status_code == 401
    assert requests.get(handle.url + "/v2/", auth=("bob", "hunter2"), timeout=10).status_code == 200
    check_round_trip(handle, session_for(handle, []))


@pytest.mark.integration
def test_token_round_trip(token_registry):
    handle = token_registry
    tokens = handle.token_server
    assert handle.mode == "token" and handle.username == "alice" and tokens is not None
    ping = requests.get(handle.url + "/v2/", timeout=10)
    assert ping.status_code == 401
    assert ping.headers["WWW-Authenticate"] == (
        f'Bearer realm="{tokens.url}",service="registry-insights-test"'
    )
    name = unique_name("token")
    tokens.reset_counts()
    session = session_for(handle, [f"repository:{name}:pull,push", "registry:catalog:*"])
    assert tokens.requests == 1
    assert tokens.issued == [("alice", (f"repository:{name}:pull,push", "registry:catalog:*"))]
    check_round_trip(handle, session, name)


def check_round_trip(
    handle: RegistryHandle, session: requests.Session, name: str | None = None
) -> None:
    name = name or unique_name(handle.mode)
    url = handle.url
    assert session.get(url + "/v2/", timeout=10).status_code == 200
    blob = os.urandom(1000)
    blob_digest = push_blob(session, url, name, blob)
    got = session.get(f"{url}/v2/{name}/blobs/{blob_digest}", timeout=10)
    assert got.status_code == 200 and got.content == blob

    manifest, manifest_digest, _ = push_image(session, url, name, "v1", os.urandom(3000))
    fetched = session.get(
        f"{url}/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=10
    )
    assert fetched.status_code == 200
    assert fetched.content == manifest
    assert fetched.headers["Content-Type"] == OCI_MANIFEST
    assert fetched.headers["Docker-Content-Digest"] == manifest_digest
    by_digest = session.get(
        f"{url}/v2/{name}/manifests/{manifest_digest}", headers={"Accept": OCI_MANIFEST}, timeout=10
    )
    assert by_digest.status_code == 200 and by_digest.content == manifest

    tags = session.get(f"{url}/v2/{name}/tags/list", timeout=10)
    assert tags.status_code == 200 and tags.json() == {"name": name, "tags": ["v1"]}
    catalog = session.get(f"{url}/v2/_catalog", params={"n": 1000}, timeout=10)
    assert catalog.status_code == 200
    assert name in catalog.json()["repositories"]


@pytest.mark.integration
def test_token_scopes_are_enforced(token_registry):
    handle = token_registry
    tokens = handle.token_server
    name = unique_name("scoped")
    pusher = session_for(handle, [f"repository:{name}:pull,push"])
    push_blob(pusher, handle.url, name, b"scoped blob")

    # A token without the catalog scope may not list the catalog.
    assert pusher.get(handle.url + "/v2/_catalog", timeout=10).status_code == 401

    # Anonymous identities get a token, with no access in it (anonymous pull is off).
    answer = requests.get(
        tokens.url, params={"service": tokens.service, "scope": f"repository:{name}:pull"}
    )
    assert answer.status_code == 200
    claims = jwt.decode(answer.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == "" and claims["access"] == []
    denied = requests.get(
        f"{handle.url}/v2/{name}/blobs/{digest_of(b'scoped blob')}",
        headers={"Authorization": "Bearer " + answer.json()["token"]},
        timeout=10,
    )
    assert denied.status_code == 401
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]

    # Bad credentials never get a token.
    refused = requests.get(tokens.url, params={"service": tokens.service}, auth=("alice", "nope"))
    assert refused.status_code == 401


@pytest.mark.integration
def test_anonymous_pull_and_narrowed_grants(make_registry):
    handle = make_registry("token", anonymous_pull=True, max_scopes_per_token=1)
    tokens = handle.token_server
    name = unique_name("narrow")
    pusher = session_for(handle, [f"repository:{name}:pull,push", "registry:catalog:*"])
    digest = push_blob(pusher, handle.url, name, b"narrow")
    # Only the first scope was granted: no catalog.
    assert pusher.get(handle.url + "/v2/_catalog", timeout=10).status_code == 401

    answer = requests.get(
        tokens.url, params={"service": tokens.service, "scope": f"repository:{name}:pull,push"}
    ).json()
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": name, "actions": ["pull"]}]
    pulled = requests.get(
        f"{handle.url}/v2/{name}/blobs/{digest}",
        headers={"Authorization": "Bearer " + answer["token"]},
        timeout=10,
    )
    assert pulled.status_code == 200 and pulled.content == b"narrow"


@pytest.mark.integration
def test_short_token_expires_at_the_registry(make_registry):
    handle = make_registry("token", lifetime=2, algorithm="ES256")
    tokens = handle.token_server
    answer = requests.get(
        tokens.url, params={"service": tokens.service}, auth=handle.credentials, timeout=10
    )
    assert answer.json()["expires_in"] == 2
    bearer = {"Authorization": "Bearer " + answer.json()["token"]}
    issued = time.monotonic()
    assert requests.get(handle.url + "/v2/", headers=bearer, timeout=10).status_code == 200
    time.sleep(max(0.0, 3.1 - (time.monotonic() - issued)))
    expired = requests.get(handle.url + "/v2/", headers=bearer, timeout=10)
    assert expired.status_code == 401
    assert "token not to be used after" in handle.server.log()


# -- the token server alone ------------------------------------------------------------------


def test_token_server_answers_and_switches(tmp_path):
    with TokenServer(directory=tmp_path) as tokens:
        assert tokens.realm == tokens.url and re.fullmatch(
            r"http://127\.0\.0\.1:\d+/token", tokens.url
        )
        assert tokens.certificate_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        kid = tokens.key_id
        assert re.fullmatch(r"([A-Z2-7]{4}:){11}[A-Z2-7]{4}", kid)

        before = time.time()
        answer = requests.get(
            tokens.url,
            params={"service": "svc", "scope": ["repository:a/b:pull", "repository:c:push"]},
            auth=("bob", "hunter2"),
        )
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        header = jwt.get_unverified_header(body["token"])
        assert header["kid"] == kid and header["alg"] == "RS256"
        public_key = tokens._certificate.public_key()
        claims = jwt.decode(
            body["token"],
            public_key,
            algorithms=["RS256"],
            audience="svc",
            options={"verify_exp": False, "verify_nbf": False},
        )
        assert claims["iss"] == TokenServer.issuer and claims["sub"] == "bob"
        assert all(isinstance(claims[key], int) for key in ("exp", "nbf", "iat"))
        assert claims["nbf"] <= before and claims["iat"] >= int(before)
        assert claims["exp"] - claims["iat"] in (240, 241)  # 300 s minus the registry's leeway
        assert claims["access"] == [
            {"type": "repository", "name": "a/b", "actions": ["pull"]},
            {"type": "repository", "name": "c", "actions": ["push"]},
        ]
        assert tokens.issued == [("bob", ("repository:a/b:pull", "repository:c:push"))]

        tokens.json_fields, tokens.omit_expires_in = "access_token", True
        assert set(requests.get(tokens.url).json()) == {"access_token", "issued_at"}
        tokens.json_fields = "token"
        assert set(requests.get(tokens.url).json()) == {"token", "issued_at"}
        assert tokens.requests == 3
        tokens.reset_counts()
        assert (tokens.requests, tokens.issued, tokens.request_log) == (0, [], [])


def test_token_server_oauth_post_and_refresh(tmp_path):
    with TokenServer(directory=tmp_path, algorithm="ES256") as tokens:
        form = {
            "grant_type": "password",
            "service": tokens.service,
            "scope": "repository:x:pull registry:catalog:*",
            "username": "alice",
            "password": USERS["alice"],
            "client_id": "registry-insights",
        }
        answer = requests.post(tokens.url, data=form)
        assert answer.status_code == 200
        body = answer.json()
        assert {"access_token", "refresh_token", "expires_in"} <= set(body)
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert [entry["name"] for entry in claims["access"]] == ["x", "catalog"]
        assert jwt.get_unverified_header(body["access_token"])["alg"] == "ES256"

        again = requests.post(
            tokens.url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "service": tokens.service,
                "scope": "repository:y:pull",
            },
        )
        assert again.status_code == 200 and again.json()["refresh_token"] == body["refresh_token"]
        assert tokens.issued == [
            ("alice", ("repository:x:pull", "registry:catalog:*")),
            ("alice", ("repository:y:pull",)),
        ]
        bad = requests.post(tokens.url, data={"grant_type": "refresh_token", "refresh_token": "x"})
        assert bad.status_code == 401
        wrong = requests.post(tokens.url, data={**form, "password": "nope"})
        assert wrong.status_code == 401


def test_libtrust_key_id_and_htpasswd(tmp_path):
    import bcrypt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    kid = libtrust_key_id(key.public_key())
    assert len(kid) == 59 and kid.count(":") == 11
    path = make_htpasswd(tmp_path / "htpasswd", {"u": "p:w"})
    user, hashed = path.read_text().strip().split(":", 1)
    assert user == "u" and hashed.startswith("$2b$04$")
    assert bcrypt.checkpw(b"p:w", hashed.encode())


# -- RegistryServer --------------------------------------------------------------------------


@pytest.mark.integration
def test_garbage_collect_frees_unreferenced_blob(make_registry):
    handle = make_registry("anonymous")
    server = handle.server
    session = session_for(handle, [])
    name = unique_name("gc")
    layer = os.urandom(5000)
    _, _, config_size = push_image(session, handle.url, name, "keep", layer)
    kept = server.blob_bytes()
    orphan = os.urandom(7777)
    orphan_digest = push_blob(session, handle.url, name, orphan)
    assert server.blob_bytes() == kept + len(orphan)
    url, pid = server.url, server.pid

    output = server.garbage_collect()

    assert server.blob_bytes() == kept
    assert kept >= len(layer) + config_size  # the manifest's blobs stayed
    assert f"blob eligible for deletion: {orphan_digest}" in output
    assert server.url == url and server.running and server.pid != pid
    assert requests.get(url + "/v2/", timeout=10).status_code == 200
    image = session.get(f"{url}/v2/{name}/manifests/keep", headers={"Accept": OCI_MANIFEST})
    assert image.status_code == 200


@pytest.mark.integration
def test_server_lifecycle_and_environment(tmp_path, monkeypatch):
    # Both would break the registry if they reached it (panic; another port).
    monkeypatch.setenv("REGISTRY_AUTH", "token")
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:1")
    storage = tmp_path / "storage"
    server = RegistryServer(storage, delete_enabled=False, log_path=tmp_path / "r.log")
    with server:
        assert server.running and requests.get(server.url + "/v2/").status_code == 200
        assert f"listening on {server.host}" in server.log()
        config = json.loads(server.config_path.read_text())
        assert config["http"]["addr"] == server.host and config["http"]["secret"]
        assert config["storage"]["filesystem"]["rootdirectory"] == str(storage)
        assert config["storage"]["delete"] == {"enabled": False}
        # Deletion disabled: 405 UNSUPPORTED.
        deleted = requests.delete(f"{server.url}/v2/x/manifests/{digest_of(b'x')}")
        assert deleted.status_code == 405 and deleted.json()["errors"][0]["code"] == "UNSUPPORTED"
        pid = server.pid
    assert not server.running and server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()  # idempotent
    assert storage.is_dir()  # a given storage directory is kept
    assert (tmp_path / "r.log").read_text() == server.log()

    temporary = RegistryServer()
    with temporary:
        own = temporary.storage_dir
        assert own.is_dir()
    assert not own.exists()  # a temporary one is removed


@pytest.mark.integration
def test_start_failure_reports_log(tmp_path):
    auth = {
        "token": {
            "realm": "http://127.0.0.1:1/token",
            "service": "s",
            "issuer": "i",
            "rootcertbundle": str(tmp_path / "missing.pem"),
        }
    }
    server = RegistryServer(auth=auth)
    with pytest.raises(RuntimeError, match="exited with status") as raised:
        server.start()
    assert "missing.pem" in str(raised.value)
    assert not server.running
    server.stop()


@pytest.mark.integration
def test_explicit_busy_port_fails_with_the_log():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = RegistryServer(port=port)
        with pytest.raises(RuntimeError, match="address already in use"):
            server.start()
        assert server.port == port and not server.running
        server.stop()
