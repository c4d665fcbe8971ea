"""The only place that talks HTTP: the send loop, its one 401 retry, and request counts.

The order of work for one request (:meth:`Transport.request`):

1. A GET or HEAD that the :class:`~registry_insights.registry.cache.HttpCache` holds fresh is
   answered from it: no probe, no token, no request.
2. Otherwise the registry is probed once (``GET /v2/``, :meth:`Transport.ping`); the answer's
   challenge goes to the :class:`~registry_insights.registry.auth.authenticator.Authenticator`.
3. The request is sent with the authenticator's ``Authorization`` for its scopes.
4. On a 401 the authenticator says whether to retry once (a new token, narrower scopes).
5. The answer goes through :func:`~registry_insights.registry.responses.check_response`, the one
   place that turns an error answer into a typed ``RegistryError``.

Retries of 429, 502, 503, 504 and connection errors, with exponential backoff, jitter and
``Retry-After``, are urllib3's ``Retry`` in the session's adapter (never for ``DELETE``, whose
lost answers the deletes check themselves). Requests are counted by kind at the adapter, so
cache hits are not counted and every network request is.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from .. import errors
from ..errors import DigestMismatch
from ..settings import DEFAULTS
from .auth.authenticator import Authenticator
from .auth.credentials import Credentials
from .cache import HttpCache
from .names import sha256_digest
from .responses import (
    LeanResponse,
    check_response,
    network_reason,
    read_bounded,
    redact_url,
    retry_after_seconds,
    untrusted_certificate,
)

log = logging.getLogger("registry_insights")

#: Seconds a ``Retry-After`` may ask us to wait (per retry) by default; a longer wait is not
#: slept: :class:`~registry_insights.errors.RateLimited` is raised at once.
MAX_RETRY_AFTER = DEFAULTS.max_retry_after
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Methods retried after a failure; DELETE is not (a lost answer may mean it was done).
RETRY_METHODS = frozenset({"GET", "HEAD", "PUT", "OPTIONS"})


#: An API path that joins the base URL as it is: no dot segments, no empty segment, no
#: character ``requests`` would quote or IDNA-encode (repository names, tags and digests are
#: validated to this alphabet before they reach a path).
_PLAIN_PATH = re.compile(r"/v2/(?:[A-Za-z0-9_:-][A-Za-z0-9._:-]*/)*[A-Za-z0-9_:-][A-Za-z0-9._:-]*"
                         r"(?:\?[A-Za-z0-9._~=&:-]*)?\Z")
#: What the names of rate-limit headers start with (lower case): ``RateLimit-Remaining``,
#: ``X-RateLimit-Limit`` ...
_RATE_LIMIT = ("ratelimit", "x-ratelimit")
#: Methods sent through :meth:`Transport._prepared` when they carry no body.
_LEAN_METHODS = frozenset({"GET", "HEAD"})


class _CountingRetry(Retry):
    """urllib3 Retry that does not wait longer than ``max_retry_after`` and reports each retry
    to ``on_retry``.

    A ``Retry-After`` (seconds or HTTP-date) up to ``max_retry_after`` is slept, then the same
    request is sent again; a longer one ends the retries at once: the answer goes back to
    the transport, which raises :class:`~registry_insights.errors.RateLimited`.
    """

    on_retry: Callable[[dict | None], None] | None = None
    max_retry_after: float = MAX_RETRY_AFTER

    def new(self, **kw):
        retry = super().new(**kw)
        retry.on_retry = self.on_retry
        retry.max_retry_after = self.max_retry_after
        return retry

    def get_retry_after(self, response):
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        return None if seconds is None else min(seconds, self.max_retry_after)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None):
        if error is not None and untrusted_certificate(error):
            raise MaxRetryError(_pool, url, error)  # the same answer every time: say it now
        if response is not None and response.status in RETRY_STATUSES:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.max_retry_after:
                # not worth sleeping: hand the answer back (raise_on_status is False)
                raise MaxRetryError(_pool, url, ResponseError(
                    f"Retry-After {wait:.0f} s is more than {self.max_retry_after:g} s"))
        retry = super().increment(method, url, response, error, _pool,
                                  _stacktrace)  # raises when spent
        if self.on_retry is not None:
            self.on_retry(response.headers if response is not None else None)
        return retry


class _CountingAdapter(HTTPAdapter):
    """Calls ``on_send`` for every request that really goes to the network.

    It also does less per request than ``HTTPAdapter`` where the outcome is the same, through
    the methods requests documents for subclasses (a walk sends thousands of requests to
    one origin, and this work was a tenth of the client's CPU, profiled):

    - the connection pool of an origin is looked up once per (origin, ``verify``, ``cert``)
      when no proxy is set, instead of parsing the URL and building the pool's key again for
      each request; a pool closed since (urllib3 1.26 closes the pools its manager drops) is
      looked up anew, and :meth:`close` forgets them all;
    - a pool's certificate settings are made once per (``verify``, ``cert``), not checked
      on disk for each request;
    - without a proxy the request line's target is the URL's path and query, as requests
      makes it, without first asking which proxy applies;
    - an answer that sets no cookie is a :class:`~.responses.LeanResponse` (its empty
      cookie jar made on first use); one with ``Set-Cookie`` is built by requests as before.
    """

    #: pools remembered at most (origins: the registry, a blob store it redirects to ...)
    MAX_POOLS = 16

    def __init__(self, on_send: Callable[[], None], **kwargs):
        self._on_send = on_send
        self._pools: dict[tuple, object] = {}
        super().__init__(**kwargs)

    def send(self, request, *args, **kwargs):
        self._on_send()
        return super().send(request, *args, **kwargs)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if proxies:  # requests decides, per request, whether one applies
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        scheme, _, rest = request.url.partition("://")
        key = (scheme, rest.split("/", 1)[0].split("?", 1)[0], verify, cert)
        try:
            pool = self._pools.get(key)
        except TypeError:  # an unhashable verify or cert
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        if pool is None or getattr(pool, "pool", None) is None:  # new, or closed since
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            if len(self._pools) >= self.MAX_POOLS:
                self._pools.clear()
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        self._pools.clear()
        super().close()

    def request_url(self, request, proxies):
        if proxies:
            return super().request_url(request, proxies)
        return request.path_url

    def cert_verify(self, conn, url, verify, cert):
        settings = (url.partition("://")[0].lower(), verify, cert)
        if getattr(conn, "_registry_insights_cert", None) == settings:
            return
        super().cert_verify(conn, url, verify, cert)
        conn._registry_insights_cert = settings

    def build_response(self, req, resp):
        headers = getattr(resp, "headers", None)
        if headers is None or "set-cookie" in headers or "set-cookie2" in headers:
            return super().build_response(req, resp)
        response = LeanResponse(headers)
        response.status_code = getattr(resp, "status", None)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        response.request = req
        response.connection = self
        return response


class Transport:
    """HTTP for one registry and one identity. Thread safe; one connection pool per session.

    Not public API: :class:`~registry_insights.registry.client.RegistryClient` drives it.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        cache: HttpCache,
        *,
        max_workers: int = DEFAULTS.max_workers,
        timeout: float = DEFAULTS.timeout,
        verify=True,
        retries: int = DEFAULTS.retries,
        backoff_factor: float = 0.5,
        max_retry_after: float = MAX_RETRY_AFTER,
    ):
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        self.host = base.netloc
        # the base URL as requests would prepare it: URLs under it that match _PLAIN_PATH
        # need no preparing (see _prepared); a base URL requests would rewrite never matches
        prepared = requests.Request("GET", self.base_url + "/v2/").prepare().url
        self._lean_prefix = self.base_url + "/v2/" if prepared == self.base_url + "/v2/" \
            else "\0"
        #: ``scheme://host[:port]`` and the path the API is served under ("" or "/reg")
        self.origin, self.base_path = f"{base.scheme}://{base.netloc}", base.path.rstrip("/")
        self.credentials = credentials
        self.cache = cache
        self.session = cache.session
        self.timeout = timeout
        # The environment's proxy and CA settings, read once: requests would otherwise scan
        # os.environ on every request (a large share of the client's CPU in a walk).
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") \
                or True
        self.verify = verify
        self.request_counts: Counter = Counter()
        self._counts_lock = threading.Lock()
        self._local = threading.local()
        self._ping_lock = threading.Lock()
        self._probed = False
        #: the last rate-limit headers seen (``RateLimit-Remaining`` and friends)
        self.rate_limit: dict[str, str] = {}
        self._token_session = requests.Session()
        self._token_session.trust_env = False
        self._token_session.proxies.update(self.session.proxies)
        self.auth = Authenticator(self.base_url, credentials, self._send_token)
        retry = _CountingRetry(
            total=retries, connect=min(retries, 2), read=2, status=retries,
            backoff_factor=backoff_factor, backoff_max=30, backoff_jitter=backoff_factor,
            status_forcelist=RETRY_STATUSES, allowed_methods=RETRY_METHODS,
            respect_retry_after_header=True, raise_on_status=False,
        )
        retry.on_retry = self._on_retry
        retry.max_retry_after = self.max_retry_after = float(max_retry_after)
        pool = max(int(max_workers), 1)
        for session, connections in ((self.session, 4), (self._token_session, 2)):
            adapter = _CountingAdapter(self._on_send, pool_connections=connections,
                                       pool_maxsize=pool, max_retries=retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def scheme(self) -> str | None:
        """"basic", "bearer" or None (anonymous), as the probe found."""
        return self.auth.scheme

    def _count(self, kind: str) -> None:
        with self._counts_lock:
            self.request_counts[kind] += 1

    def add_counts(self, counts: dict) -> None:
        """Add requests counted elsewhere (a copy of this client in another process)."""
        with self._counts_lock:
            self.request_counts.update({k: v for k, v in counts.items() if v})

    def _on_send(self) -> None:
        self._count(getattr(self._local, "kind", None) or "other")

    def _on_retry(self, headers) -> None:
        if headers is not None:
            self._note_rate_limit(headers)
        self._count("retry")

    def _log(self, method: str, url: str, status, started: float, source: str) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s -> %s (%.0f ms, %s)", method, redact_url(url), status,
                     (time.monotonic() - started) * 1000, source)

    def _note_rate_limit(self, headers) -> None:
        lowered = getattr(headers, "lower_items", None)  # requests' headers: names lowered
        if lowered is not None and not any(k.startswith(_RATE_LIMIT) for k, _ in lowered()):
            return  # the usual answer: none (no name lowered again, no value looked up)
        limits = {k: v for k, v in headers.items() if k.lower().startswith(_RATE_LIMIT)}
        if limits:
            self.rate_limit = limits

    def url(self, path_or_url: str) -> str:
        """Absolute URL on this registry; refuses URLs that leave the registry's host.

        An API path (``/v2/...``) is put under the registry's base path, if it has one
        (``https://host/reg`` + ``/v2/x`` -> ``https://host/reg/v2/x``), also in a URL the
        registry sent (a ``Link`` or ``Location`` from a registry that does not know the path
        a reverse proxy serves it under).
        """
        if path_or_url.startswith("/v2/"):
            if _PLAIN_PATH.match(path_or_url):
                return self.base_url + path_or_url  # what the walk asks: nothing to resolve
            path_or_url = self.base_url + path_or_url
        url = urljoin(self.base_url + "/", path_or_url)
        parts = urlsplit(url)
        if self.base_path and parts.path.startswith("/v2/") \
                and f"{parts.scheme}://{parts.netloc}" == self.origin:
            url = urlunsplit((parts.scheme, parts.netloc, self.base_path + parts.path,
                              parts.query, ""))
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise errors.InvalidResponse(
                f"refusing to follow a URL to another host ({parts.scheme}://{parts.netloc}); "
                f"requests stay on {self.origin}",
                url=redact_url(url),
            )
        return url

    # -- sending -----------------------------------------------------------------------------
    def _send(self, session, method, url, *, kind, stream=False, bounded=False, **kwargs):
        """One request. The body is always received as a stream: an error body (status 400
        or more) and, with ``bounded``, any body (token answers) is read no further than
        :data:`~registry_insights.registry.responses.MAX_SMALL_BODY`; other bodies are read
        whole unless ``stream``."""
        self._local.kind = kind
        started = time.monotonic()
        try:
            prepared = self._prepared(session, method, url, kwargs)
            if prepared is not None:
                response = session.send(prepared, timeout=self.timeout, verify=self.verify,
                                        stream=True, cert=session.cert,
                                        proxies=session.proxies)
            else:
                response = session.request(method, url, timeout=self.timeout,
                                           verify=self.verify, stream=True, **kwargs)
            if not getattr(response, "_content_consumed", True):
                if bounded or response.status_code >= 400:
                    response._content = read_bounded(response)
                    response._content_consumed = True
                elif not stream:
                    response.content  # noqa: B018 - read now, inside the error handling
        except requests.RequestException as exc:
            raise errors.RegistryError(
                f"the registry could not be reached: {network_reason(exc, self.timeout)}",
                method=method, url=redact_url(url),
            ) from None
        finally:
            self._local.kind = None
        self._note_rate_limit(response.headers)
        source = "revalidated" if response.status_code == 304 else "network"
        self._log(method, response.url or url, response.status_code, started, source)
        return response

    def _prepared(self, session, method: str, url: str, kwargs: dict):
        """The request ``session.request`` would prepare, built directly for the requests a
        walk sends by the thousand (a GET or HEAD without body, query parameters or auth of
        its own, to a URL of the plain shape :meth:`url` returns); None for anything else,
        which goes through ``session.request``. ``Session.request`` would merge the
        session's settings, parse and re-quote the URL, and build a cookie jar for each
        request (a third of the function calls of a request, profiled). ``Session.send``
        still does the rest (redirects with their ``Authorization`` rules, cookies, hooks,
        the adapter)."""
        if method not in _LEAN_METHODS or kwargs.keys() - {"headers"} \
                or not url.startswith(self._lean_prefix) \
                or not _PLAIN_PATH.match(url, len(self._lean_prefix) - 4):
            return None
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = url
        headers = CaseInsensitiveDict(session.headers)
        headers.update(kwargs.get("headers") or ())
        prepared.headers = headers
        prepared.body = None
        prepared.hooks = {"response": list(session.hooks.get("response") or ())}
        jar = RequestsCookieJar()
        if session.cookies:
            jar.update(session.cookies)
            prepared.prepare_cookies(jar)
        else:
            prepared._cookies = jar
        return prepared

    def _send_token(self, method: str, url: str, *, kind: str, **kwargs) -> requests.Response:
        """The authenticator's way out: the token session, never cached; bodies read no
        further than 64 KiB."""
        return self._send(self._token_session, method, url, kind=kind, bounded=True, **kwargs)

    def ping(self) -> str | None:
        """Probe ``GET /v2/`` once; return and remember the scheme: "basic", "bearer" or None."""
        if self._probed:
            return self.scheme
        with self._ping_lock:
            if self._probed:
                return self.scheme
            url = self.base_url + "/v2/"
            response = self._send(self.session, "GET", url, kind="ping")
            if response.status_code == 401:
                self.auth.adopt(response)
            elif response.status_code == 404:
                raise errors.NotFound(
                    "this host does not serve the registry API v2 at /v2/",
                    method="GET", url=url, status=404,
                )
            elif response.status_code != 200:
                self._checked(response, (200,))
            self._probed = True
            return self.scheme

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
        cache: bool | str = True,
        **kwargs,
    ) -> requests.Response:
        """Send one request through the handshake; return the response or raise.

        ``cache``: True (default) serves a fresh stored answer and stores a new one; ``False``
        goes to the network and stores nothing (layer blobs, uploads, deletes); ``"refresh"``
        goes to the network (revalidating) and stores the answer: a fresh read for decisions
        that must not rest on an older answer. ``ok`` lists the statuses that are not errors.
        """
        url = self.url(path_or_url)
        headers = dict(headers or {})
        found = self.cache.lookup(method, url, headers.get("Accept"), mode=cache)
        if found.hit is not None:
            self._log(method, url, found.hit.status_code, time.monotonic(), "cache")
            return check_response(found.hit, ok)
        self.ping()
        for attempt in (0, 1):
            sent_at = time.monotonic()
            auth_header, key, token = self.auth.authorization(scopes)
            send_headers = dict(headers)
            send_headers.update(found.validators)
            if auth_header:
                send_headers["Authorization"] = auth_header
            response = self._send(self.session, method, url, kind=kind, headers=send_headers,
                                  stream=stream, **kwargs)
            if response.status_code != 401 or attempt == 1:
                break
            retry = self.auth.retry_scopes(response, scopes, key, token, sent_at)
            if retry is None:
                if self.scheme == "basic" and 401 not in ok \
                        and urlsplit(response.url or url).netloc == self.host:
                    raise self.auth.refused(response)
                break
            scopes = retry
            response.close()
        response = self.cache.settle(found, response)
        return self._checked(response, ok)

    def _checked(self, response: requests.Response, ok) -> requests.Response:
        """:func:`check_response`, with a wait longer than ``max_retry_after`` raised as
        :class:`~registry_insights.errors.RateLimited` (nothing was slept)."""
        try:
            return check_response(response, ok)
        except errors.RegistryError as exc:
            wait = exc.retry_after
            if wait is None or wait <= self.max_retry_after:
                raise
            until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
            raise exc.rewrap(
                f"{exc.message}; the registry asks to wait {wait:.0f} s (Retry-After), more "
                f"than max_retry_after={self.max_retry_after:g} s: try again after {until}",
                errors.RateLimited) from None

    def get_verified(self, kind: str, path: str, scopes: tuple[str, ...], headers: dict,
                     expected: Callable, what: str, cache: bool | str = True,
                     digest_of: Callable[[bytes], str] = sha256_digest):
        """GET ``path``; its bytes must hash to ``expected(response)`` (when that names a
        sha256 digest). Bytes that do not verify are never served again: the stored answer is
        evicted, and when it came from the cache it is fetched once more from the registry.

        Returns ``(response, raw bytes, digest)``; raises DigestMismatch. ``digest_of`` gives
        the digest of the bytes (a signed schema 1 manifest's is that of its payload).
        """
        url = self.url(path)
        for attempt in (0, 1):
            response = self.request(
                kind, "GET", path, scopes=scopes, headers=headers,
                cache=cache if attempt == 0 else "refresh")
            raw = response.content
            actual = digest_of(raw)
            want = expected(response)
            if not (want and want.startswith("sha256:")) or want == actual:
                return response, raw, actual
            self.cache.evict("GET", url, headers.get("Accept"))
            if not getattr(response, "from_cache", False):
                break
            log.warning("%s: the cached bytes hash to %s, not %s; evicted, asking the "
                        "registry", what, actual, want)
        raise DigestMismatch(
            f"{what} should be {want} but its bytes (from the registry) hash to {actual}; "
            "nothing was kept",
            method="GET", url=response.url, status=response.status_code,
        )

    def close(self) -> None:
        self.cache.close()
        self._token_session.close()
