"""The only place that talks HTTP: auth handshake, cache, retries, request counts, errors.

The handshake (OCI distribution-spec "API version check"; Docker token authentication):

1. A GET or HEAD that the cache can answer fresh is answered from the cache: no probe, no token,
   no request.
2. Otherwise the registry is probed once (``GET /v2/``) and the answer remembered: 200 means no
   auth; 401 carries ``WWW-Authenticate`` challenges, bearer chosen over basic.
3. Basic: every request carries ``Authorization: Basic``. Bearer: the token for the request's
   scope (``repository:<name>:pull``, ``registry:catalog:*``) is taken from memory or fetched from
   the challenge's realm with ``service`` and ``scope`` and the identity's credentials.
4. A 401 on a request that carried a token drops that token, fetches a new one once (for the
   scope the new challenge names, if any) and retries once.
5. Every answer goes through :func:`check_response`, the one place that turns an error answer into
   a typed :class:`~registry_insights.errors.RegistryError`.

Retries of 429, 502, 503, 504 and connection errors, with exponential backoff, jitter and
``Retry-After``, are urllib3's ``Retry`` in the session's adapter. Requests are counted by kind at
the adapter, so cache hits are not counted and every network request is.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests_cache import DO_NOT_CACHE
from urllib3.util.retry import Retry

from .. import errors
from .auth.challenge import Challenge, choose_challenge, parse_challenges
from .auth.credentials import Credentials
from .auth.tokens import Token, TokenCache, token_from_response

log = logging.getLogger("registry_insights")

#: Seconds a ``Retry-After`` may ask us to wait, at most, per retry.
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
_SECRET_PARAMS = {"access_token", "token", "password", "refresh_token", "client_secret"}

_CODE_CLASSES = {
    "UNAUTHORIZED": errors.Unauthorized,
    "DENIED": errors.Denied,
    "NAME_UNKNOWN": errors.NotFound,
    "MANIFEST_UNKNOWN": errors.NotFound,
    "BLOB_UNKNOWN": errors.NotFound,
    "UNSUPPORTED": errors.Unsupported,
    "TOOMANYREQUESTS": errors.TooManyRequests,
}
_STATUS_CLASSES = {
    401: errors.Unauthorized,
    403: errors.Denied,
    404: errors.NotFound,
    405: errors.Unsupported,
    429: errors.TooManyRequests,
}


def redact_url(url: str) -> str:
    """The URL with userinfo removed and secret query parameters replaced by ``<redacted>``."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, "<redacted>" if k.lower() in _SECRET_PARAMS else v)
         for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe=":/*,<>",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _network_reason(exc: requests.RequestException, timeout: float) -> str:
    """A short reason for a failed connection (no URL: the error names it already)."""
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (is it plain http? then use http:// or --insecure)"
    for marker, reason in (("Connection refused", "connection refused (nothing listens there)"),
                           ("Name or service not known", "unknown host name"),
                           ("Max retries exceeded", "gave up after retries")):
        if marker in text:
            return reason
    return type(exc).__name__


def check_response(response: requests.Response, ok=(200,)) -> requests.Response:
    """Return ``response`` if its status is in ``ok``; else raise the matching RegistryError.

    The OCI error body ``{"errors": [{"code", "message", "detail"}]}`` gives the code and message
    (OCI distribution-spec, "Error Codes"); other bodies are quoted by their first bytes.
    """
    status = response.status_code
    if status in ok:
        return response
    method = response.request.method if response.request is not None else None
    url = redact_url(response.url or (response.request.url if response.request else ""))
    entries: list = []
    body = b""
    try:
        body = response.content or b""
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
            entries = [e for e in parsed["errors"] if isinstance(e, dict)]
    except (ValueError, requests.RequestException):
        pass
    code = str(entries[0].get("code")) if entries and entries[0].get("code") else None
    if entries:
        message = "; ".join(
            str(e.get("message") or e.get("code") or "") for e in entries
        ) or "error"
    else:
        snippet = body[:120].decode("utf-8", errors="replace").strip()
        message = f"unexpected answer: {snippet!r}" if snippet else (response.reason or "error")
    cls = _CODE_CLASSES.get(code or "", None) or _STATUS_CLASSES.get(status, errors.RegistryError)
    if status == 405:
        cls = errors.Unsupported
    raise cls(message, method=method, url=url, status=status, code=code, errors=entries)


class _CountingRetry(Retry):
    """urllib3 Retry that caps ``Retry-After`` and counts each retry on the transport."""

    transport: Transport | None = None

    def new(self, **kw):
        retry = super().new(**kw)
        retry.transport = self.transport
        return retry

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)

    def increment(self, method=None, url=None, response=None, *args, **kwargs):
        if self.transport is not None and response is not None:
            self.transport._note_rate_limit(response.headers)
        retry = super().increment(method, url, response, *args, **kwargs)  # raises when spent
        if self.transport is not None:
            self.transport._count("retry")
        return retry


class _CountingAdapter(HTTPAdapter):
    """Counts every request that really goes to the network, by the kind the transport set."""

    def __init__(self, transport: Transport, **kwargs):
        self._transport = transport
        super().__init__(**kwargs)

    def send(self, request, *args, **kwargs):
        self._transport._count(getattr(self._transport._local, "kind", None) or "other")
        return super().send(request, *args, **kwargs)


class Transport:
    """HTTP for one registry and one identity. Thread safe; one connection pool per session.

    Not public API: :class:`~registry_insights.client.RegistryClient` drives it.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        session: requests.Session,
        *,
        max_workers: int = 8,
        timeout: float = 30.0,
        verify=True,
        retries: int = 5,
        backoff_factor: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.credentials = credentials
        self.session = session
        self.timeout = timeout
        # The environment's proxy and CA settings, read once: requests would otherwise scan
        # os.environ on every request (a large share of the client's CPU in a walk).
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") \
                or True
        self.verify = verify
        self.request_counts: Counter = Counter()
        self._counts_lock = threading.Lock()
        self._local = threading.local()
        self._ping_lock = threading.Lock()
        self._probed = False
        self.scheme: str | None = None
        self.challenge: Challenge | None = None
        self.tokens = TokenCache()
        #: scope -> the group of scopes asked for in one token (see :meth:`plan_scopes`)
        self._scope_groups: dict[str, tuple[str, ...]] = {}
        #: scopes a group token turned out not to grant: they get a token of their own
        self._narrowed: set[str] = set()
        #: the last rate-limit headers seen (``RateLimit-Remaining`` and friends)
        self.rate_limit: dict[str, str] = {}
        self._cached = hasattr(session, "cache")
        retry = _CountingRetry(
            total=retries,
            connect=min(retries, 2),
            read=2,
            status=retries,
            backoff_factor=backoff_factor,
            backoff_max=30,
            backoff_jitter=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.transport = self
        pool = max(int(max_workers), 1)
        for s in (session,):
            adapter = _CountingAdapter(
                self, pool_connections=4, pool_maxsize=pool, max_retries=retry
            )
            s.mount("http://", adapter)
            s.mount("https://", adapter)
        self._token_session = requests.Session()
        token_adapter = _CountingAdapter(self, pool_connections=2, pool_maxsize=pool,
                                         max_retries=retry)
        self._token_session.mount("http://", token_adapter)
        self._token_session.mount("https://", token_adapter)

    # -- bookkeeping -------------------------------------------------------------------------
    def _count(self, kind: str) -> None:
        with self._counts_lock:
            self.request_counts[kind] += 1

    def _log(self, method: str, url: str, status, started: float, source: str) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s -> %s (%.0f ms, %s)", method, redact_url(url), status,
                     (time.monotonic() - started) * 1000, source)

    def url(self, path_or_url: str) -> str:
        """Absolute URL on this registry; refuses URLs that leave the registry's host."""
        url = urljoin(self.base_url + "/", path_or_url)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base_url:
            raise errors.InvalidResponse(
                f"refusing to follow a URL to another host ({parts.scheme}://{parts.netloc}); "
                f"requests stay on {self.base_url}",
                url=redact_url(url),
            )
        return url

    def _send(self, session, method, url, *, kind, cache_kwargs=None, **kwargs):
        self._local.kind = kind
        try:
            if self._cached and session is self.session:
                kwargs.update(cache_kwargs or {})
            response = session.request(method, url, timeout=self.timeout, verify=self.verify,
                                       **kwargs)
        except requests.RequestException as exc:
            raise errors.RegistryError(
                f"the registry could not be reached: {_network_reason(exc, self.timeout)}",
                method=method, url=redact_url(url),
            ) from None
        finally:
            self._local.kind = None
        self._note_rate_limit(response.headers)
        return response

    def _note_rate_limit(self, headers) -> None:
        limits = {k: v for k, v in headers.items()
                  if k.lower().startswith(("ratelimit", "x-ratelimit"))}
        if limits:
            self.rate_limit = limits

    # -- probe -------------------------------------------------------------------------------
    def ping(self) -> str | None:
        """Probe ``GET /v2/`` once; return and remember the scheme: "basic", "bearer" or None."""
        if self._probed:
            return self.scheme
        with self._ping_lock:
            if self._probed:
                return self.scheme
            url = self.base_url + "/v2/"
            started = time.monotonic()
            response = self._send(self.session, "GET", url, kind="ping")
            self._log("GET", url, response.status_code, started, "network")
            if response.status_code == 401:
                self._adopt_challenge(response)
            elif response.status_code == 404:
                raise errors.NotFound(
                    "this host does not serve the registry API v2 at /v2/",
                    method="GET", url=url, status=404,
                )
            elif response.status_code != 200:
                check_response(response)
            self._probed = True
            return self.scheme

    def _adopt_challenge(self, response: requests.Response) -> Challenge | None:
        header = response.headers.get("WWW-Authenticate", "")
        challenge = choose_challenge(parse_challenges(header))
        if challenge is not None:
            if challenge.scheme == "bearer":
                realm = challenge.realm or ""
                if urlsplit(realm).scheme not in ("http", "https"):
                    raise errors.InvalidResponse(
                        f"bearer challenge has no http(s) realm ({realm!r})",
                        url=redact_url(response.url), status=response.status_code,
                    )
            self.scheme, self.challenge = challenge.scheme, challenge
        return challenge

    # -- credentials -------------------------------------------------------------------------
    def _basic_header(self) -> str | None:
        """``Basic`` credentials: user and password, or (OAuth2 identity token, asked with
        ``GET``) the user, else ``<token>``, and the identity token as password."""
        c = self.credentials
        if c.username is None and c.password is None and not c.identity_token:
            return None
        password = c.password if c.password is not None else (c.identity_token or "")
        user = c.username or ("<token>" if c.identity_token and c.password is None else "")
        raw = f"{user}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _token_key(self, scopes: tuple[str, ...]) -> tuple:
        ch = self.challenge
        return (ch.realm, ch.service, tuple(scopes), self.credentials.identity)

    def _fetch_token(self, key: tuple) -> Token:
        """Ask the realm for a token: OAuth2 ``POST`` (``grant_type=refresh_token``) when an
        identity/refresh token is held, falling back to ``GET`` if the realm answers 404/405;
        otherwise ``GET ?service=&scope=...`` with basic credentials (or none)."""
        realm, service, scopes, _identity = key
        obtained = time.monotonic()
        started = time.monotonic()
        response = None
        refresh = self.credentials.identity_token
        if refresh:
            form = {"grant_type": "refresh_token", "refresh_token": refresh,
                    "client_id": "registry-insights", "scope": " ".join(scopes)}
            if service:
                form["service"] = service
            response = self._send(self._token_session, "POST", realm, kind="token", data=form)
            self._log("POST", realm, response.status_code, started, "network")
            if response.status_code in (404, 405):
                response = None
        if response is None:
            params = [("service", service)] if service else []
            params += [("scope", s) for s in scopes]
            auth_header = self._basic_header()
            headers = {"Authorization": auth_header} if auth_header else {}
            response = self._send(self._token_session, "GET", realm, kind="token",
                                  params=params, headers=headers)
            self._log("GET", response.url, response.status_code, started, "network")
        method = response.request.method if response.request is not None else "GET"
        if response.status_code in (401, 403):
            who = self.credentials.identity
            raise errors.Unauthorized(
                f"the token server refused identity {who!r} for scope {' '.join(scopes)!r}",
                method=method, url=redact_url(response.url), status=response.status_code,
            )
        check_response(response)
        try:
            data = response.json()
        except ValueError:
            raise errors.InvalidResponse(
                f"token server answered non-JSON: {response.content[:80]!r}",
                method=method, url=redact_url(response.url), status=response.status_code,
            ) from None
        try:
            return token_from_response(data, scopes, obtained)
        except ValueError as exc:
            raise errors.InvalidResponse(str(exc), method=method, url=redact_url(realm)) from None

    def plan_scopes(self, scopes, group_size: int = 20) -> None:
        """Ask for these scopes together, ``group_size`` per token, when a token is next needed.

        Token servers that grant several ``scope`` parameters at once (Distribution's token
        spec allows repeating ``scope``) then need one round trip per group instead of one
        per repository. A scope the group token turns out not to grant gets its own token.
        """
        scopes = [s for s in dict.fromkeys(scopes) if s not in self._scope_groups]
        for i in range(0, len(scopes), group_size):
            group = tuple(scopes[i:i + group_size])
            for scope in group:
                self._scope_groups[scope] = group

    def _authorization(self, scopes: tuple[str, ...]):
        if self.scheme == "basic":
            return self._basic_header(), None, None
        if self.scheme == "bearer":
            if len(scopes) == 1 and scopes[0] in self._scope_groups \
                    and scopes[0] not in self._narrowed:
                key = self._token_key(self._scope_groups[scopes[0]])
                token = self.tokens.get(key, self._fetch_token)
                if token.grants(scopes[0]):
                    return f"Bearer {token.value}", key, token
                self._narrowed.add(scopes[0])
            key = self._token_key(scopes)
            token = self.tokens.get(key, self._fetch_token)
            return f"Bearer {token.value}", key, token
        return None, None, None

    # -- requests ----------------------------------------------------------------------------
    def request(
        self,
        kind: str,
        method: str,
        path_or_url: str,
        *,
        scopes: tuple[str, ...] = (),
        headers: dict | None = None,
        ok=(200,),
        stream: bool = False,
        cache: bool = True,
        **kwargs,
    ) -> requests.Response:
        """Send one request through the handshake; return the response or raise.

        ``cache=False`` sends the request past the cache and stores nothing (layer blobs,
        uploads). ``ok`` lists the statuses that are not errors.
        """
        url = self.url(path_or_url)
        headers = dict(headers or {})
        started = time.monotonic()
        cacheable = self._cached and cache and method in ("GET", "HEAD")
        if cacheable:
            cached = self._fresh_from_cache(method, url, headers)
            if cached is not None:
                self._log(method, url, cached.status_code, started, "cache")
                return check_response(cached, ok)
        cache_kwargs = {} if cacheable else {"expire_after": DO_NOT_CACHE}
        self.ping()
        for attempt in (0, 1):
            auth_header, key, token = self._authorization(scopes)
            send_headers = dict(headers)
            if auth_header:
                send_headers["Authorization"] = auth_header
            response = self._send(self.session, method, url, kind=kind, headers=send_headers,
                                  stream=stream, cache_kwargs=cache_kwargs, **kwargs)
            source = "revalidated" if getattr(response, "revalidated", False) else "network"
            self._log(method, url, response.status_code, started, source)
            if response.status_code != 401 or attempt == 1:
                break
            previous = self.scheme
            challenge = self._adopt_challenge(response)
            if challenge is None or (previous == "basic" and self.scheme == "basic"):
                if self.scheme == "basic" and 401 not in ok:
                    return self._refused(response)
                break
            if key is not None:
                self.tokens.drop(key, token)
                if len(key[2]) > 1 and len(scopes) == 1:
                    self._narrowed.add(scopes[0])  # the group token did not do: own token
            if challenge.scheme == "bearer" and challenge.scope:
                extra = tuple(s for s in challenge.scope.split(" ") if s and s not in scopes)
                scopes = tuple(scopes) + extra
            response.close()
        return check_response(response, ok)

    def _refused(self, response: requests.Response):
        """A 401 to basic credentials: say whether they were missing or refused."""
        if self.credentials.anonymous:
            message = ("the registry needs credentials: pass a username and password "
                       "(or run 'docker login')")
        else:
            message = f"the registry refused the credentials of {self.credentials.identity!r}"
        raise errors.Unauthorized(message, method=response.request.method,
                                  url=redact_url(response.url), status=401, code="UNAUTHORIZED")

    def _fresh_from_cache(self, method: str, url: str, headers: dict):
        """The cached answer if it is still fresh, else None, looked up straight in the store
        with the key requests-cache would compute (cheaper than a second pass through the
        caching session: this runs before every cacheable request)."""
        cache = self.session.cache
        prepared = self.session.prepare_request(requests.Request(method, url, headers=headers))
        response = cache.get_response(cache.create_key(prepared, verify=self.verify))
        if response is None or response.is_expired:
            return None
        return response

    def close(self) -> None:
        self.session.close()
        self._token_session.close()
