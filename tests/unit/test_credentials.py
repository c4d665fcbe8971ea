"""Unit tests of the credentials module: explicit, docker config.json, credential helpers.

Helpers are small shell scripts named ``docker-credential-<name>`` in a temporary directory put
first on PATH; they log the server address they were given on stdin.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from registry_insights.registry.auth.credentials import (
    ANONYMOUS,
    DOCKER_HUB_KEY,
    CredentialHelperError,
    Credentials,
    docker_config_path,
    from_docker_config,
    normalize_host,
    resolve_credentials,
)

PASSWORD = "s3cr:et:with:colons"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """Write ``config.json`` into a temporary DOCKER_CONFIG directory."""
    directory = tmp_path / "docker"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def write(config: dict) -> Path:
        path = directory / "config.json"
        path.write_text(json.dumps(config))
        return path

    return write


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    """Create ``docker-credential-<name>`` scripts on PATH; returns (make, log_of)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")

    def make(name: str, body: str) -> Path:
        log = tmp_path / f"{name}.log"
        script = bindir / f"docker-credential-{name}"
        script.write_text(
            "#!/bin/sh\n"
            'server="$(cat)"\n'
            f'printf "%s %s\\n" "$1" "$server" >> "{log}"\n'
            f"{body}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return log

    return make


def json_body(username: str, secret: str) -> str:
    payload = json.dumps({"ServerURL": "ignored", "Username": username, "Secret": secret})
    return f"cat <<'EOF'\n{payload}\nEOF"


# -- explicit -------------------------------------------------------------------------------------


def test_explicit_credentials_win(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64("fromfile:filepass")}}})
    creds = resolve_credentials("host:5000", "alice", "explicit-pass")
    assert creds.username == "alice"
    assert creds.password == "explicit-pass"
    assert creds.source == "explicit"
    assert not creds.anonymous


def test_explicit_password_only_counts_as_explicit(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64("fromfile:filepass")}}})
    creds = resolve_credentials("host:5000", None, "only-a-password")
    assert creds.source == "explicit"
    assert creds.password == "only-a-password"


def test_no_explicit_uses_config(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64("fromfile:filepass")}}})
    creds = resolve_credentials("host:5000")
    assert (creds.username, creds.password) == ("fromfile", "filepass")


# -- config.json auths ----------------------------------------------------------------------------


def test_docker_config_env_sets_the_path(docker_config, tmp_path):
    assert docker_config_path() == tmp_path / "docker" / "config.json"


def test_default_path_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert docker_config_path() == tmp_path / ".docker" / "config.json"


def test_auth_password_with_colons(docker_config):
    path = docker_config({"auths": {"host:5000": {"auth": b64(f"bob:{PASSWORD}")}}})
    creds = from_docker_config("host:5000")
    assert creds.username == "bob"
    assert creds.password == PASSWORD
    assert creds.identity_token is None
    assert creds.source == str(path)
    assert creds.identity == "bob"


@pytest.mark.parametrize("key", ["https://host:5000/v1/", "host:5000", "http://host:5000",
                                 "HOST:5000", "host:5000/v2/"])
def test_key_forms_match_host(docker_config, key):
    docker_config({"auths": {key: {"auth": b64("u:p")}}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.password) == ("u", "p")


def test_other_host_or_port_does_not_match(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64("u:p")}}})
    assert from_docker_config("host:5001") == ANONYMOUS
    assert from_docker_config("host") == ANONYMOUS
    assert from_docker_config("otherhost:5000").anonymous


@pytest.mark.parametrize(
    "host", ["docker.io", "registry-1.docker.io", "index.docker.io", "https://registry-1.docker.io"]
)
def test_docker_hub_key_matches_docker_hub_names(docker_config, host):
    docker_config({"auths": {DOCKER_HUB_KEY: {"auth": b64("hubuser:hubpass")}}})
    creds = from_docker_config(host)
    assert (creds.username, creds.password) == ("hubuser", "hubpass")


def test_normalize_host():
    assert normalize_host("https://index.docker.io/v1/") == "docker.io"
    assert normalize_host("registry-1.docker.io") == "docker.io"
    assert normalize_host("https://host:5000/v1/") == "host:5000"
    assert normalize_host("host:5000") == "host:5000"
    assert normalize_host(" Registry.Example.com/v2/ ") == "registry.example.com"


def test_identity_token(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64("<token>:"), "identitytoken": "idtok-xyz"}}})
    creds = from_docker_config("host:5000")
    assert creds.identity_token == "idtok-xyz"
    assert creds.password is None
    assert not creds.anonymous


def test_identity_token_with_username(docker_config):
    docker_config({"auths": {"host:5000": {"username": "carol", "identitytoken": "idtok-xyz"}}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.identity_token) == ("carol", "idtok-xyz")


def test_plain_username_password_fields(docker_config):
    docker_config({"auths": {"host:5000": {"username": "dave", "password": "pw"}}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.password) == ("dave", "pw")


def test_missing_file_is_anonymous(docker_config):
    creds = from_docker_config("host:5000")
    assert creds == ANONYMOUS
    assert creds.anonymous
    assert creds.identity == "anonymous"
    assert resolve_credentials("host:5000").anonymous


def test_unreadable_json_is_an_error_naming_the_file(docker_config, tmp_path):
    path = tmp_path / "docker" / "config.json"
    path.write_text("{not json")
    with pytest.raises(CredentialHelperError, match="config.json"):
        from_docker_config("host:5000")


def test_auth_that_is_not_base64_is_an_error_without_the_value(docker_config):
    docker_config({"auths": {"host:5000": {"auth": "%%%secret%%%"}}})
    with pytest.raises(CredentialHelperError, match="not base64") as info:
        from_docker_config("host:5000")
    assert "secret" not in str(info.value)


def test_empty_auth_entry_is_anonymous(docker_config):
    docker_config({"auths": {"host:5000": {}}})
    assert from_docker_config("host:5000") == ANONYMOUS


def test_explicit_path_argument(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps({"auths": {"h.example": {"auth": b64("e:f")}}}))
    creds = from_docker_config("h.example", path)
    assert (creds.username, creds.password, creds.source) == ("e", "f", str(path))


# -- credential helpers ---------------------------------------------------------------------------


def test_cred_helper_for_host(docker_config, helpers):
    log = helpers("fake", json_body("helperuser", "helper:secret"))
    docker_config({"credHelpers": {"host:5000": "fake"},
                   "auths": {"host:5000": {"auth": b64("fromfile:filepass")}}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.password) == ("helperuser", "helper:secret")
    assert creds.source == "helper:fake"
    assert log.read_text().splitlines() == ["get host:5000"]


def test_creds_store(docker_config, helpers):
    log = helpers("fake", json_body("storeuser", "storepass"))
    docker_config({"credsStore": "fake", "auths": {"registry.example.com": {}}})
    creds = from_docker_config("registry.example.com")
    assert (creds.username, creds.password) == ("storeuser", "storepass")
    assert creds.source == "helper:fake"
    assert log.read_text().splitlines() == ["get registry.example.com"]


def test_creds_store_asked_docker_hub_key_first(docker_config, helpers):
    log = helpers("fake", json_body("hub", "hubsecret"))
    docker_config({"credsStore": "fake"})
    creds = from_docker_config("registry-1.docker.io")
    assert (creds.username, creds.password) == ("hub", "hubsecret")
    assert log.read_text().splitlines() == [f"get {DOCKER_HUB_KEY}"]


def test_helper_not_found_is_anonymous(docker_config, helpers):
    log = helpers("fake", 'echo "credentials not found in native keychain"\nexit 1')
    docker_config({"credHelpers": {"host:5000": "fake"}})
    assert from_docker_config("host:5000") == ANONYMOUS
    # both address forms were tried
    assert log.read_text().splitlines() == ["get host:5000", "get https://host:5000"]


def test_helper_not_found_on_stderr_is_anonymous(docker_config, helpers):
    helpers("fake", 'echo "Credentials not found" >&2\nexit 1')
    docker_config({"credsStore": "fake"})
    assert from_docker_config("host:5000") == ANONYMOUS


def test_helper_found_under_https_address(docker_config, helpers):
    log = helpers(
        "fake",
        'if [ "$server" = "https://host:5000" ]; then\n'
        + json_body("late", "found")
        + '\nelse echo "credentials not found in native keychain"; exit 1; fi',
    )
    docker_config({"credHelpers": {"host:5000": "fake"}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.password) == ("late", "found")
    assert log.read_text().splitlines() == ["get host:5000", "get https://host:5000"]


def test_helper_failure_raises_naming_the_helper(docker_config, helpers):
    helpers("fake", 'echo "error getting credentials - err: exit status 3, out: dbus" >&2\nexit 3')
    docker_config({"credHelpers": {"host:5000": "fake"}})
    with pytest.raises(CredentialHelperError) as info:
        from_docker_config("host:5000")
    message = str(info.value)
    assert "docker-credential-fake" in message
    assert "host:5000" in message
    assert "3" in message


def test_helper_not_json_raises(docker_config, helpers):
    helpers("fake", "echo this is not json")
    docker_config({"credsStore": "fake"})
    with pytest.raises(CredentialHelperError, match="docker-credential-fake"):
        from_docker_config("host:5000")


def test_missing_helper_raises(docker_config, helpers):
    docker_config({"credHelpers": {"host:5000": "absent-helper-xyz"}})
    with pytest.raises(CredentialHelperError, match="docker-credential-absent-helper-xyz"):
        from_docker_config("host:5000")


def test_helper_token_username_means_identity_token(docker_config, helpers):
    helpers("fake", json_body("<token>", "refresh-token-abc"))
    docker_config({"credHelpers": {"host:5000": "fake"}})
    creds = from_docker_config("host:5000")
    assert creds.identity_token == "refresh-token-abc"
    assert creds.username is None
    assert creds.password is None
    assert creds.identity == "token"


def test_helper_for_other_host_not_used(docker_config, helpers):
    log = helpers("fake", json_body("x", "y"))
    docker_config({"credHelpers": {"other:5000": "fake"},
                   "auths": {"host:5000": {"auth": b64("u:p")}}})
    creds = from_docker_config("host:5000")
    assert (creds.username, creds.password) == ("u", "p")
    assert not log.exists()


# -- never showing secrets ------------------------------------------------------------------------


def test_repr_never_contains_the_password():
    creds = Credentials(username="alice", password=PASSWORD, source="explicit")
    for text in (repr(creds), str(creds), f"{creds!r}", repr([creds])):
        assert PASSWORD not in text
        assert "alice" in text
        assert "redacted" in text


def test_repr_never_contains_the_identity_token():
    creds = Credentials(identity_token="idtok-very-secret", source="helper:fake")
    assert "idtok-very-secret" not in repr(creds)
    assert "redacted" in repr(creds)


def test_repr_of_loaded_credentials(docker_config):
    docker_config({"auths": {"host:5000": {"auth": b64(f"bob:{PASSWORD}")}}})
    creds = resolve_credentials("host:5000")
    assert PASSWORD not in repr(creds)
    assert b64(f"bob:{PASSWORD}") not in repr(creds)


def test_anonymous():
    assert ANONYMOUS.anonymous
    assert repr(ANONYMOUS) == "Credentials(username=None, secret=None, source='anonymous')"
    assert not Credentials(identity_token="t").anonymous
