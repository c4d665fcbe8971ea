"""Answers into values or errors: the one choke point that turns an error answer into a typed
:class:`~registry_insights.errors.RegistryError` (:func:`check_response`), URL redaction for
anything shown, and bounded reads of bodies that are not content (errors, tokens).

OCI distribution-spec, "Error Codes": an error body is ``{"errors": [{"code", "message",
"detail"}]}``; other bodies (HTML from a proxy, text) are quoted by their first bytes.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.structures import CaseInsensitiveDict

from .. import errors

#: Bytes read at most of an error or token body (go-containerregistry reads 64 KiB too).
MAX_SMALL_BODY = 64 * 1024
#: Query parameters that carry secrets (compared in lower case): shown redacted, never cached.
SECRET_PARAMS = frozenset({"access_token", "token", "password", "refresh_token",
                           "client_secret", "api_key", "x-api-key", "authorization"})


def _simple_defaults() -> dict | None:
    """What ``requests.Response()`` sets, without its cookie jar, headers and history (made
    per response); None when requests sets anything else mutable (then the real
    ``__init__`` runs)."""
    template = dict(vars(requests.Response()))
    for name in ("cookies", "headers", "history"):
        template.pop(name, None)
    plain = (type(None), bool, int, float, str, bytes, timedelta)
    return template if all(isinstance(v, plain) for v in template.values()) else None


class LeanResponse(requests.Response):
    """A ``requests.Response`` made without the cookie jar that ``requests.Response()`` makes
    for every response: the jar is made, empty, on first use. For answers that set no
    cookie: those rebuilt from the HTTP cache, and network answers without ``Set-Cookie``
    (see ``transport._CountingAdapter.build_response``). A walk makes one per request, a
    warm one tens of thousands."""

    _DEFAULTS = _simple_defaults()
    _jar = None

    def __init__(self, headers=None) -> None:
        """``headers``: the response's headers (a mapping or (name, value) pairs)."""
        if self._DEFAULTS is None:
            super().__init__()
            self.headers = CaseInsensitiveDict(headers)
            return
        self.__dict__.update(self._DEFAULTS)
        self.headers = CaseInsensitiveDict(headers)
        self.history = []

    @property
    def cookies(self):
        if self._jar is None:
            self._jar = requests.cookies.cookiejar_from_dict({})
        return self._jar

    @cookies.setter
    def cookies(self, jar) -> None:
        self._jar = jar


def has_secret_param(text: str | None) -> bool:
    """Whether a URL (or a ``Link`` header's URLs) carries a query parameter of
    :data:`SECRET_PARAMS`, in any case."""
    if not text or "?" not in text:
        return False
    lowered = text.lower()
    if not any(name in lowered for name in SECRET_PARAMS):  # the usual case: cheap
        return False
    for query in re.findall(r"\?([^\s<>#]*)", text):
        if any(k.lower() in SECRET_PARAMS
               for k, _v in parse_qsl(query, keep_blank_values=True)):
            return True
    return False


def read_bounded(response: requests.Response, limit: int = MAX_SMALL_BODY) -> bytes:
    """At most ``limit`` bytes of the body; a streamed body is read no further than that."""
    if getattr(response, "_content_consumed", True) or getattr(response, "raw", None) is None:
        return (response.content or b"")[:limit]
    try:
        data = response.raw.read(limit, decode_content=True)
    except Exception:  # a broken stream: the status alone must do
        data = b""
    response.close()
    return data or b""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (RFC 9110 10.2.3: delay-seconds or an
    HTTP-date; a date in the past is 0), or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(int(value))
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(float(email.utils.mktime_tz(parsed)) - (time.time() if now is None else now), 0.0)


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
        [(k, "<redacted>" if k.lower() in SECRET_PARAMS else v)
         for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe=":/*,<>",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


#: What OpenSSL says when the server's certificate does not verify (self-signed, unknown CA,
#: expired, another host's name).
_UNTRUSTED = re.compile(r"certificate verify failed:?\s*([^'\"()]*)", re.IGNORECASE)


def untrusted_certificate(error: BaseException) -> str | None:
    """Why the server's TLS certificate was not trusted (``"self-signed certificate"`` ...),
    or None when ``error`` is not that. Retrying does not change it."""
    found = _UNTRUSTED.search(str(error))
    if found is None:
        return None
    return found.group(1).strip() or "certificate verify failed"


def network_reason(exc: requests.RequestException, timeout: float) -> str:
    """A short reason for a failed connection (no URL: the error names it already)."""
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s (timeout)"
    if isinstance(exc, requests.exceptions.SSLError):
        why = untrusted_certificate(exc)
        if why is not None:
            return (f"its TLS certificate is not trusted ({why}); give the CA certificate "
                    "that signed it: RegistryClient(verify='ca.pem') or REQUESTS_CA_BUNDLE")
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
        body = read_bounded(response)
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
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) \
        if status in (429, 503) else None
    raise cls(message, method=method, url=url, status=status, code=code, errors=entries,
              retry_after=retry_after)
