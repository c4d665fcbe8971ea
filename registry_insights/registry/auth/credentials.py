"""Where credentials come from: explicit arguments, else the Docker client configuration.

Order (as the docker CLI does): explicit ``username``/``password``; else
``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``: ``credHelpers[host]``, then
``credsStore``, then ``auths[host]`` (base64 ``auth`` = ``user:password``, the password may contain
colons; ``identitytoken``); else anonymous. Helpers are run as ``docker-credential-<name> get``
with the server address on stdin (docker-credential-helpers protocol).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import CredentialHelperError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = {
    "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
}



@dataclass(frozen=True)
class Credentials:
    """A username and secret (password, identity token or refresh token). The secret never shows."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = "anonymous"

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    @property
    def identity(self) -> str:
        """A name for this identity that is safe to show and to use in cache file names."""
        if self.anonymous:
            return "anonymous"
        return self.username or "token"

    def __repr__(self) -> str:
        secret = "<redacted>" if (self.password or self.identity_token) else None
        return f"Credentials(username={self.username!r}, secret={secret}, source={self.source!r})"


ANONYMOUS = Credentials()


def normalize_host(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``; Docker Hub's names -> ``docker.io``."""
    text = key.strip()
    host = urlsplit(text).netloc if "://" in text else text.split("/", 1)[0]
    host = host.lower()
    return "docker.io" if host in _DOCKER_HUB_HOSTS else host


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _run_helper(name: str, host: str) -> Credentials:
    program = f"docker-credential-{name}"
    if shutil.which(program) is None:
        raise CredentialHelperError(f"credential helper {program!r} is not installed (on PATH)")
    servers = [host, f"https://{host}"] if host != "docker.io" else [DOCKER_HUB_KEY, host]
    for server in servers:
        proc = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=60, check=False
        )
        out = proc.stdout.decode(errors="replace").strip()
        if proc.returncode != 0:
            if "credentials not found" in (out + proc.stderr.decode(errors="replace")).lower():
                continue
            raise CredentialHelperError(
                f"credential helper {program!r} failed for {host!r} (exit {proc.returncode})"
            )
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise CredentialHelperError(f"credential helper {program!r} gave no JSON") from exc
        user, secret = data.get("Username"), data.get("Secret")
        if not secret:
            continue
        if user == "<token>":
            return Credentials(identity_token=secret, source=f"helper:{name}")
        return Credentials(username=user, password=secret, source=f"helper:{name}")
    return ANONYMOUS


def from_docker_config(host: str, path: Path | None = None) -> Credentials:
    """Credentials for ``host`` from the docker configuration file, or anonymous.

    Raises
    ------
    CredentialHelperError
        When a configured helper fails (a helper that has no entry means anonymous).
    """
    path = path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return ANONYMOUS
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CredentialHelperError(
            f"the docker configuration {str(path)!r} cannot be read ({type(exc).__name__}): "
            "fix it, or pass username and password explicitly"
        ) from None
    if not isinstance(config, dict):
        raise CredentialHelperError(f"the docker configuration {str(path)!r} is not an object")
    host = normalize_host(host)
    helpers = {normalize_host(k): v for k, v in (config.get("credHelpers") or {}).items()}
    if host in helpers:
        return _run_helper(helpers[host], host)
    auths = {normalize_host(k): v for k, v in (config.get("auths") or {}).items()}
    entry = auths.get(host) or {}
    if config.get("credsStore") and not entry.get("auth") and not entry.get("identitytoken"):
        return _run_helper(config["credsStore"], host)
    if entry.get("identitytoken"):
        return Credentials(
            username=entry.get("username"),
            identity_token=entry["identitytoken"],
            source=str(path),
        )
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise CredentialHelperError(
                f"the 'auth' entry for {host!r} in {str(path)!r} is not base64 of "
                "'user:password'"
            ) from None
        user, _, password = decoded.partition(":")
        return Credentials(username=user, password=password, source=str(path))
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"], source=str(path))
    return ANONYMOUS


def resolve_credentials(host: str, username: str | None = None, password: str | None = None
                        ) -> Credentials:
    """Explicit credentials win; else the docker configuration; else anonymous."""
    if username is not None or password is not None:
        return Credentials(username=username, password=password, source="explicit")
    return from_docker_config(host)
