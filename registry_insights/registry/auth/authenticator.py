"""Who we are to one registry: the probe's result, the challenge, basic and bearer credentials.

The handshake (OCI distribution-spec "API version check"; Docker "Token Authentication
Specification"), one :class:`Authenticator` per registry and identity:

1. The registry is probed once (``GET /v2/``) by the transport; a 401 hands its
   ``WWW-Authenticate`` to :meth:`Authenticator.adopt`: bearer is chosen over basic.
2. Basic: every request carries ``Authorization: Basic``. Bearer: the token for the request's
   scopes comes from memory (:class:`~registry_insights.registry.auth.tokens.TokenCache`) or is
   fetched from the realm (OAuth2 ``POST`` with an identity token, else ``GET`` with basic
   credentials or none). Pull scopes planned together share one token (:meth:`plan_scopes`).
3. On a 401, :meth:`Authenticator.retry_scopes` says whether and with which scopes to retry
   once: the refused token is dropped, a scope the group token did not grant gets its own.

Where credentials go (the safety rules): challenges are adopted only from answers of the
registry's own host (a 401 from a redirect target such as blob storage is never adopted); a
bearer realm must be http(s), https for an https registry, and not a private, loopback or
link-local address on another host; credentials go to that realm and to the registry only.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import requests

from ... import errors
from ...settings import DEFAULTS
from ..responses import check_response, read_bounded, redact_url
from .challenge import Challenge, choose_challenge, parse_challenges
from .credentials import Credentials
from .tokens import Token, TokenCache, token_from_response

#: Repositories' pull scopes asked for in one token when they were planned together.
SCOPE_GROUP_SIZE = DEFAULTS.scope_group_size


class TokenKey(NamedTuple):
    """What one bearer token is for."""

    realm: str
    service: str | None
    scopes: tuple[str, ...]
    identity: str


#: ``send(method, url, *, kind, **requests_kwargs) -> Response`` on the token session.
Send = Callable[..., requests.Response]


def _is_internal(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return address.is_private or address.is_loopback or address.is_link_local


def check_realm(realm: str | None, registry_url: str) -> str:
    """Return ``realm`` if credentials may be sent there, else raise InvalidResponse."""
    parts = urlsplit(realm or "")
    registry = urlsplit(registry_url)
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "it is not an http(s) URL"
    elif registry.scheme == "https" and parts.scheme == "http":
        problem = "it is plain http for an https registry"
    elif parts.hostname != registry.hostname and _is_internal(parts.hostname) \
            and not (_loopback(parts.hostname) and _loopback(registry.hostname or "")):
        problem = "it is a private, loopback or link-local address on another host"
    if problem:
        raise errors.InvalidResponse(
            f"refusing the bearer realm {redact_url(realm or '')!r} that {registry_url} "
            f"advertised: {problem}; no credentials were sent there")
    return realm


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Authenticator:
    """The auth state of one (registry, identity): thread safe.

    Not public API: :class:`~registry_insights.registry.transport.Transport` drives it.
    """

    def __init__(self, registry_url: str, credentials: Credentials, send: Send):
        self.registry_url = registry_url.rstrip("/")
        self.host = urlsplit(self.registry_url).netloc
        self.credentials = credentials
        self._send = send
        self.scheme: str | None = None
        self.challenge: Challenge | None = None
        self.tokens = TokenCache()
        #: scope -> the group of scopes asked for in one token (see :meth:`plan_scopes`)
        self._scope_groups: dict[str, tuple[str, ...]] = {}
        #: scopes a group token turned out not to grant: they get a token of their own
        self._narrowed: set[str] = set()
        self._lock = threading.Lock()

    # -- the challenge -----------------------------------------------------------------------
    def adopt(self, response: requests.Response) -> Challenge | None:
        """Adopt the challenge of a 401 from the registry's own host; return it, or None when
        the answer has none or comes from another host (never adopted)."""
        if urlsplit(response.url or "").netloc != self.host:
            return None
        header = response.headers.get("WWW-Authenticate", "")
        challenges = parse_challenges(header)
        challenge = choose_challenge(challenges)
        if challenge is None:
            if challenges:
                offered = ", ".join(sorted({c.scheme for c in challenges}))
                raise errors.Unauthorized(
                    f"the registry offers only authentication schemes this client does not "
                    f"speak ({offered}); basic and bearer are supported",
                    url=redact_url(response.url), status=response.status_code)
            return None
        if challenge.scheme == "bearer":
            check_realm(challenge.realm, self.registry_url)
        with self._lock:
            self.scheme, self.challenge = challenge.scheme, challenge
        return challenge

    # -- basic -------------------------------------------------------------------------------
    def basic_header(self) -> str | None:
        """``Basic`` credentials: user and password, or (OAuth2 identity token, asked with
        ``GET``) the user, else ``<token>``, and the identity token as password."""
        c = self.credentials
        if c.username is None and c.password is None and not c.identity_token:
            return None
        password = c.password if c.password is not None else (c.identity_token or "")
        user = c.username or ("<token>" if c.identity_token and c.password is None else "")
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    # -- bearer ------------------------------------------------------------------------------
    def token_key(self, scopes: tuple[str, ...]) -> TokenKey:
        ch = self.challenge
        return TokenKey(ch.realm, ch.service, tuple(scopes), self.credentials.identity)

    def plan_scopes(self, scopes, group_size: int = SCOPE_GROUP_SIZE) -> None:
        """Ask for these scopes together, ``group_size`` per token, when a token is next needed.

        Token servers that grant several ``scope`` parameters at once (Distribution's token
        spec allows repeating ``scope``) then need one round trip per group instead of one
        per repository. A scope the group token turns out not to grant gets its own token.
        """
        with self._lock:
            scopes = [s for s in dict.fromkeys(scopes) if s not in self._scope_groups]
            for i in range(0, len(scopes), group_size):
                group = tuple(scopes[i:i + group_size])
                for scope in group:
                    self._scope_groups[scope] = group

    def authorization(self, scopes: tuple[str, ...]
                      ) -> tuple[str | None, TokenKey | None, Token | None]:
        """The ``Authorization`` value for a request needing ``scopes``, with the token key and
        token used (None for basic or anonymous)."""
        if self.scheme == "basic":
            return self.basic_header(), None, None
        if self.scheme != "bearer":
            return None, None, None
        if len(scopes) == 1 and scopes[0] in self._scope_groups \
                and scopes[0] not in self._narrowed:
            key = self.token_key(self._scope_groups[scopes[0]])
            token = self.tokens.get(key, self.fetch_token)
            if token.grants(scopes[0]):
                return f"Bearer {token.value}", key, token
            self._narrowed.add(scopes[0])
        key = self.token_key(scopes)
        token = self.tokens.get(key, self.fetch_token)
        return f"Bearer {token.value}", key, token

    def fetch_token(self, key: TokenKey) -> Token:
        """Ask the realm for a token: OAuth2 ``POST`` (``grant_type=refresh_token``) when an
        identity/refresh token is held, falling back to ``GET`` if the realm answers 404/405;
        otherwise ``GET ?service=&scope=...`` with basic credentials (or none)."""
        obtained = time.monotonic()
        response = None
        refresh = self.credentials.identity_token
        if refresh:
            form = {"grant_type": "refresh_token", "refresh_token": refresh,
                    "client_id": "registry-insights", "scope": " ".join(key.scopes)}
            if key.service:
                form["service"] = key.service
            response = self._send("POST", key.realm, kind="token", data=form)
            if response.status_code in (404, 405):
                response = None
        if response is None:
            params = [("service", key.service)] if key.service else []
            params += [("scope", s) for s in key.scopes]
            auth_header = self.basic_header()
            headers = {"Authorization": auth_header} if auth_header else {}
            response = self._send("GET", key.realm, kind="token", params=params,
                                  headers=headers)
        method = response.request.method if response.request is not None else "GET"
        if response.status_code in (401, 403):
            raise errors.Unauthorized(
                f"the token server refused identity {self.credentials.identity!r} for scope "
                f"{' '.join(key.scopes)!r}",
                method=method, url=redact_url(response.url), status=response.status_code,
            )
        check_response(response)
        body = read_bounded(response)
        try:
            data = json.loads(body)
        except ValueError:
            raise errors.InvalidResponse(
                f"token server answered non-JSON: {body[:80]!r}",
                method=method, url=redact_url(response.url), status=response.status_code,
            ) from None
        try:
            return token_from_response(data, key.scopes, obtained)
        except ValueError as exc:
            raise errors.InvalidResponse(str(exc), method=method,
                                         url=redact_url(key.realm)) from None

    # -- a 401 -------------------------------------------------------------------------------
    def retry_scopes(self, response: requests.Response, scopes: tuple[str, ...],
                     key: TokenKey | None, token: Token | None,
                     sent_at: float | None = None) -> tuple[str, ...] | None:
        """After a 401: the scopes to retry once with, or None when a retry cannot help
        (no challenge from the registry, basic credentials refused again, or a token issued
        for this very request (``token.obtained >= sent_at``, monotonic seconds) refused
        while the challenge asks for nothing more: a new token would be refused alike, as
        GitLab refuses the catalog to non-admins)."""
        previous = self.scheme
        challenge = self.adopt(response)
        if challenge is None or (previous == "basic" and self.scheme == "basic"):
            return None
        extra: tuple[str, ...] = ()
        if challenge.scheme == "bearer" and challenge.scope:
            extra = tuple(s for s in challenge.scope.split(" ") if s and s not in scopes)
        own_token = key is not None and len(key.scopes) > 1 and len(scopes) == 1
        if previous == "bearer" and token is not None and sent_at is not None \
                and token.obtained >= sent_at and not extra and not own_token:
            return None  # just issued for these scopes and refused: asking again cannot help
        if key is not None:
            self.tokens.drop(key, token)
            if own_token:
                self._narrowed.add(scopes[0])  # the group token did not do: own token
        return tuple(scopes) + extra

    def refused(self, response: requests.Response) -> errors.Unauthorized:
        """A 401 to basic credentials: whether they were missing or refused."""
        if self.credentials.anonymous:
            message = ("the registry needs credentials: pass a username and password "
                       "(or run 'docker login')")
        else:
            message = f"the registry refused the credentials of {self.credentials.identity!r}"
        return errors.Unauthorized(message, method=response.request.method,
                                   url=redact_url(response.url), status=401,
                                   code="UNAUTHORIZED")
