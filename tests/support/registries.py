"""Test support: the three ways a test registry authenticates.

- :func:`make_htpasswd` writes the bcrypt ``htpasswd`` file of the registry's ``htpasswd`` mode.
- :class:`TokenServer` is a small bearer-token server (Docker's token protocol, GET and OAuth2 POST)
  that signs JWTs the registry verifies through ``auth.token.rootcertbundle``.
- :func:`launch_registry` starts a a ``RegistryServer`` in one of the
  modes ``"anonymous"``, ``"basic"`` or ``"token"`` and returns a :class:`RegistryHandle`.

Nothing here uses the project's client: the tests of the client compare against these servers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from registry_insights.testing.server import RegistryServer

#: The test users of the ``basic`` and ``token`` modes (a password with colons on purpose).
USERS: dict[str, str] = {"alice": "s3cret:with:colons", "bob": "hunter2"}
#: ``Leeway`` of CNCF Distribution's token verification: it accepts a token this long past ``exp``.
REGISTRY_CLOCK_LEEWAY = 60
MODES = ("anonymous", "basic", "token")
BASIC_REALM = "registry-insights-basic"


def make_htpasswd(path: str | Path, users: Mapping[str, str]) -> Path:
    """Write an htpasswd file with one bcrypt entry (cost 4) per user.

    The registry checks the bcrypt hash on every request, hence the low cost.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write (parent directories are created).
    users : mapping of str to str
        User name to password.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for user, password in users.items():
        if ":" in user:
            raise ValueError(f"an htpasswd user name cannot hold ':': {user!r}")
        digest = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=4))
        lines.append(f"{user}:{digest.decode('ascii')}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def libtrust_key_id(public_key: Any) -> str:
    """Return the libtrust fingerprint of a public key, the ``kid`` the registry trusts.

    Parameters
    ----------
    public_key : cryptography public key
        An RSA or EC public key.

    Returns
    -------
    str
        SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 without padding,
        in 12 groups of 4 characters joined by ``:``.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split ``type:name:actions`` (the name may hold ``:``, e.g. a port); None if malformed."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
    if not kind or not name:
        return None
    return kind, name, [action for action in actions.split(",") if action]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _TokenHandler(BaseHTTPRequestHandler):
    """Request handler of :class:`TokenServer` (``self.server.token_server`` is the owner)."""

    protocol_version = "HTTP/1.1"
    server_version = "registry-insights-test-token/1"

    def setup(self) -> None:
        super().setup()
        # Without this, small responses wait for the peer's delayed ACK (~40 ms each).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # the TokenServer keeps its own request log

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.token_server._handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.server.token_server._handle(self, "POST")  # type: ignore[attr-defined]


class TokenServer:
    """A bearer-token server for the registry's ``token`` auth mode, on 127.0.0.1.

    ``GET /token?service=S&scope=A&scope=B&account=U`` (optionally with HTTP Basic credentials)
    answers ``{"token", "access_token", "expires_in", "issued_at"}`` (see ``json_fields`` and
    ``omit_expires_in``), plus ``refresh_token`` when ``offline_token=true``.
    ``POST /token`` (form: ``grant_type=password|refresh_token``, ``service``, ``scope``
    space-separated, ``username``, ``password``, ``refresh_token``, ``client_id``) answers
    ``{"access_token", "refresh_token", "expires_in", "issued_at", "scope"}``.

    Known users are granted every action they ask for (``registry:catalog:*`` included). Without
    credentials the identity is anonymous: granted ``pull`` on repositories only when
    ``anonymous_pull`` is true, else nothing (the token is still issued, with no access). Bad
    credentials answer 401.

    Parameters
    ----------
    users : mapping of str to str, optional
        User name to password; default :data:`USERS`.
    anonymous_pull : bool, default False
        Grant ``pull`` to anonymous requests.
    lifetime : int, default 300
        Seconds a token is valid, as the registry sees it (``expires_in`` of the answer).
    max_scopes_per_token : int, optional
        Grant only the first N scopes asked for (None: all of them).
    json_fields : {"both", "token", "access_token"}, default "both"
        Which token fields the GET answer carries.
    omit_expires_in : bool, default False
        Leave ``expires_in`` out of the answers.
    algorithm : {"RS256", "ES256"}, default "RS256"
        Signing algorithm (RSA 2048 or EC P-256 key).
    directory : str or pathlib.Path, optional
        Where the certificate is written; default a temporary directory removed by :meth:`stop`.

    Attributes
    ----------
    requests : int
        Requests received (every path, every status).
    issued : list of (str or None, tuple of str)
        One entry per token issued: the identity (None when anonymous) and the scopes asked for.
    request_log : list of str
        One line per request: method, path (query included, no secrets), status, identity.
    refresh_tokens : dict of str to str
        Refresh token to user name.
    """

    service = "registry-insights-test"
    issuer = "registry-insights-test-issuer"

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        anonymous_pull: bool = False,
        lifetime: int = 300,
        max_scopes_per_token: int | None = None,
        json_fields: str = "both",
        omit_expires_in: bool = False,
        algorithm: str = "RS256",
        directory: str | Path | None = None,
    ) -> None:
        if json_fields not in ("both", "token", "access_token"):
            raise ValueError(f"json_fields must be both, token or access_token: {json_fields!r}")
        self.users: dict[str, str] = dict(USERS if users is None else users)
        self.anonymous_pull = anonymous_pull
        self.lifetime = lifetime
        self.max_scopes_per_token = max_scopes_per_token
        self.json_fields = json_fields
        self.omit_expires_in = omit_expires_in
        self.algorithm = algorithm
        self._lock = threading.Lock()
        self.requests = 0
        self.issued: list[tuple[str | None, tuple[str, ...]]] = []
        self.request_log: list[str] = []
        self.refresh_tokens: dict[str, str] = {}
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="registry-insights-token-")
            directory = self._tempdir.name
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._private_key, self._certificate = self._make_key_and_certificate(algorithm)
        self.key_id = libtrust_key_id(self._private_key.public_key())
        self.certificate_path = self.directory / "token-signing-cert.pem"
        self.certificate_path.write_bytes(
            self._certificate.public_bytes(serialization.Encoding.PEM)
        )
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- key material ------------------------------------------------------------------------

    @staticmethod
    def _make_key_and_certificate(algorithm: str) -> tuple[Any, x509.Certificate]:
        """Generate the signing key and a self-signed certificate of it."""
        if algorithm == "RS256":
            key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"algorithm must be RS256 or ES256: {algorithm!r}")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry-insights test token")])
        now = datetime.now(timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return key, certificate

    # -- addresses and lifecycle -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The token endpoint, ``http://127.0.0.1:PORT/token``."""
        if self._port is None:
            raise RuntimeError("the token server is not started")
        return f"http://127.0.0.1:{self._port}/token"

    @property
    def realm(self) -> str:
        """The ``realm`` of the registry's ``Bearer`` challenge (the token endpoint)."""
        return self.url

    def auth_config(self) -> dict[str, Any]:
        """Return the registry's ``auth:`` block for this token server."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.certificate_path),
            }
        }

    def start(self) -> TokenServer:
        """Serve in a daemon thread on a free 127.0.0.1 port; returns ``self``."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        httpd.daemon_threads = True
        httpd.token_server = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"token-server-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and remove the temporary directory; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        """Zero :attr:`requests` and empty :attr:`issued` and :attr:`request_log`."""
        with self._lock:
            self.requests = 0
            self.issued.clear()
            self.request_log.clear()

    # -- tokens ------------------------------------------------------------------------------

    def grant(self, identity: str | None, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """Return the ``access`` claim granted to ``identity`` for ``scopes``.

        Parameters
        ----------
        identity : str or None
            A known user name, or None for anonymous.
        scopes : iterable of str
            ``type:name:actions`` scopes, in the order asked.

        Returns
        -------
        list of dict
            ``[{"type", "name", "actions"}]``, entries with no action left out.
        """
        scopes = list(scopes)
        if self.max_scopes_per_token is not None:
            scopes = scopes[: self.max_scopes_per_token]
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if identity is not None:
                granted = actions
            elif self.anonymous_pull and kind == "repository":
                granted = [action for action in actions if action == "pull"]
            else:
                granted = []
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        return access

    def issue(self, identity: str | None, scopes: Iterable[str], service: str | None) -> str:
        """Sign and record a token for ``identity`` and ``scopes``.

        ``exp`` is ``now + lifetime - 60``, so that with the registry's 60 s clock leeway the
        token really stops working ``lifetime`` seconds (at most one more) after it was issued.
        """
        scopes = tuple(scopes)
        now = time.time()
        claims = {
            "iss": self.issuer,
            "sub": identity or "",
            "aud": service or self.service,
            "exp": math.ceil(now) + int(self.lifetime) - REGISTRY_CLOCK_LEEWAY,
            "nbf": int(now) - 1,
            "iat": int(now),
            "jti": secrets.token_hex(16),
            "access": self.grant(identity, scopes),
        }
        token = jwt.encode(
            claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.key_id}
        )
        with self._lock:
            self.issued.append((identity, scopes))
        return token

    def refresh_token_for(self, user: str) -> str:
        """Return the refresh token of ``user`` (one per user, created on first use)."""
        with self._lock:
            for token, owner in self.refresh_tokens.items():
                if owner == user:
                    return token
            token = secrets.token_urlsafe(24)
            self.refresh_tokens[token] = user
            return token

    # -- HTTP --------------------------------------------------------------------------------

    def _check_basic(self, header: str | None) -> tuple[bool, str | None]:
        """Return (ok, identity) for an ``Authorization`` header (None: anonymous)."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False, None
        if sep and user in self.users and secrets.compare_digest(self.users[user], password):
            return True, user
        return False, None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.requests += 1
        split = urlsplit(handler.path)
        body = b""
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(length)
        if split.path != "/token":
            self._answer(handler, method, split.path, 404, {"details": "not found"}, None)
            return
        if method == "GET":
            status, payload, identity = self._token_get(
                parse_qs(split.query), handler.headers.get("Authorization")
            )
        else:
            status, payload, identity = self._token_post(
                parse_qs(body.decode("utf-8", errors="replace"))
            )
        self._answer(handler, method, handler.path, status, payload, identity)

    def _token_get(
        self, query: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, Any], str | None]:
        ok, identity = self._check_basic(authorization)
        if not ok:
            return 401, {"details": "incorrect username or password"}, None
        scopes = [part for value in query.get("scope", []) for part in value.split()]
        service = (query.get("service") or [None])[0]
        token = self.issue(identity, scopes, service)
        payload: dict[str, Any] = {}
        if self.json_fields in ("both", "token"):
            payload["token"] = token
        if self.json_fields in ("both", "access_token"):
            payload["access_token"] = token
        self._add_times(payload)
        offline = (query.get("offline_token") or ["false"])[0].lower() == "true"
        if offline and identity is not None:
            payload["refresh_token"] = self.refresh_token_for(identity)
        return 200, payload, identity

    def _token_post(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any], str | None]:
        def first(key: str) -> str | None:
            return (form.get(key) or [None])[0]

        grant_type = first("grant_type")
        if grant_type == "password":
            user, password = first("username"), first("password")
            if user is None or password is None:
                return 400, {"error": "invalid_request", "details": "username/password"}, None
            if user not in self.users or not secrets.compare_digest(self.users[user], password):
                return 401, {"error": "invalid_grant", "details": "bad credentials"}, None
            identity = user
        elif grant_type == "refresh_token":
            with self._lock:
                identity = self.refresh_tokens.get(first("refresh_token") or "")
            if identity is None:
                return 401, {"error": "invalid_grant", "details": "unknown refresh token"}, None
        else:
            return 400, {"error": "unsupported_grant_type", "details": str(grant_type)}, None
        scope_text = " ".join(form.get("scope", []))
        token = self.issue(identity, scope_text.split(), first("service"))
        payload: dict[str, Any] = {
            "access_token": token,
            "refresh_token": self.refresh_token_for(identity),
            "scope": scope_text,
        }
        self._add_times(payload)
        return 200, payload, identity

    def _add_times(self, payload: dict[str, Any]) -> None:
        if not self.omit_expires_in:
            payload["expires_in"] = int(self.lifetime)
        payload["issued_at"] = (
            datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        )

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        path: str,
        status: int,
        payload: dict[str, Any],
        identity: str | None,
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        # logged before the answer goes out: a test reading the log right after its request
        # returned must find the line (under load the handler thread may lag behind)
        line = f"{method} {path} -> {status} identity={identity or '-'}"
        with self._lock:
            self.request_log.append(line)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        if status == 401:
            handler.send_header("WWW-Authenticate", 'Basic realm="registry-insights-test-token"')
        handler.end_headers()
        handler.wfile.write(data)


@dataclass
class RegistryHandle:
    """A running test registry and how to authenticate to it.

    Attributes
    ----------
    server : RegistryServer
    mode : {"anonymous", "basic", "token"}
    username, password : str or None
        The credentials of a user allowed everything (None in anonymous mode).
    token_server : TokenServer or None
        The token server of the ``token`` mode.
    users : dict of str to str
        Every user the registry (or its token server) knows.
    """

    server: RegistryServer
    mode: str
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.server.url

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return self.server.host

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` for ``requests``' ``auth=``, or None."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password

    def stop(self) -> None:
        """Stop the registry (removing its temporary files), then its token server; idempotent."""
        try:
            self.server.close()
        finally:
            if self.token_server is not None:
                self.token_server.stop()

    def diagnostics(self, log_offset: int = 0, token_log_offset: int = 0) -> list[tuple[str, str]]:
        """Return (title, text) report sections: the registry's log, the token server's requests.

        Parameters
        ----------
        log_offset : int
            Show only the registry log written after this byte offset (at most 80 lines).
        token_log_offset : int
            Show only the token requests after this index (at most 80).
        """
        sections = []
        try:
            with open(self.server.log_path, "rb") as handle:
                handle.seek(log_offset)
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = ["(no log file)"]
        sections.append(
            (
                f"registry log ({self.mode}, {self.host})",
                "\n".join(lines[-80:]) or "(nothing logged)",
            )
        )
        if self.token_server is not None:
            requests = self.token_server.request_log[token_log_offset:]
            sections.append(
                (f"token server requests ({self.token_server.url})", "\n".join(requests[-80:]))
            )
        return sections

    def log_offsets(self) -> tuple[int, int]:
        """Return the current (registry log size, token request count), for :meth:`diagnostics`."""
        try:
            size = self.server.log_path.stat().st_size
        except FileNotFoundError:
            size = 0
        return size, len(self.token_server.request_log) if self.token_server else 0


def launch_registry(
    mode: str,
    directory: str | Path,
    *,
    users: Mapping[str, str] | None = None,
    delete_enabled: bool = True,
    storage_dir: str | Path | None = None,
    **token_server_options: Any,
) -> RegistryHandle:
    """Start a registry in ``mode`` (and its token server) and return its handle.

    Parameters
    ----------
    mode : {"anonymous", "basic", "token"}
    directory : str or pathlib.Path
        Where the htpasswd file, the token certificate and the registry log are written.
    users : mapping of str to str, optional
        The users of the basic and token modes; default :data:`USERS` (alice is the one the
        handle carries).
    delete_enabled : bool, default True
        ``storage.delete.enabled``.
    storage_dir : str or pathlib.Path, optional
        Storage root; default a temporary directory removed when the registry stops.
    **token_server_options
        Passed to :class:`TokenServer` (token mode only).

    Returns
    -------
    RegistryHandle
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}: {mode!r}")
    if token_server_options and mode != "token":
        raise TypeError(f"token server options in {mode!r} mode: {sorted(token_server_options)}")
    users = dict(USERS if users is None else users)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    token_server: TokenServer | None = None
    auth: dict[str, Any] | None = None
    if mode == "basic":
        htpasswd = make_htpasswd(directory / "htpasswd", users)
        auth = {"htpasswd": {"realm": BASIC_REALM, "path": str(htpasswd)}}
    elif mode == "token":
        token_server = TokenServer(users, directory=directory, **token_server_options).start()
        auth = token_server.auth_config()
    log_path = directory / f"registry-{mode}-{secrets.token_hex(3)}.log"
    server: RegistryServer | None = None
    try:
        server = RegistryServer(
            storage_dir, auth=auth, delete_enabled=delete_enabled, log_path=log_path
        )
        server.start()
    except BaseException:
        if server is not None:
            server.stop()
        if token_server is not None:
            token_server.stop()
        raise
    username, password = (None, None)
    if mode != "anonymous" and users:
        username = "alice" if "alice" in users else next(iter(users))
        password = users[username]
    return RegistryHandle(
        server=server,
        mode=mode,
        username=username,
        password=password,
        token_server=token_server,
        users=users if mode != "anonymous" else {},
    )
