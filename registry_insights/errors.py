"""Exceptions raised by registry_insights.

Every failure of a registry request is a :class:`RegistryError` (or a subclass), built in one place
(:func:`registry_insights.registry.responses.check_response`) from the OCI error body
``{"errors": [{"code", "message", "detail"}]}`` (OCI distribution-spec, "Error Codes").
Messages name the method, the URL (never credentials or tokens), the HTTP status and the
registry's error code.
"""

from __future__ import annotations


class RegistryInsightsError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidReference(RegistryInsightsError, ValueError):
    """A repository name, tag, digest or reference does not follow the distribution grammar."""


class InvalidValue(RegistryInsightsError, ValueError):
    """A size, time, duration or pattern given by the caller is malformed or out of range.

    The message names the value and what would be accepted; the command line exits with 2.
    """


class RegistryBinaryNotFound(RegistryInsightsError, FileNotFoundError):
    """Debian's ``docker-registry`` binary (CNCF Distribution) is not installed."""

    def __init__(self, binary: str = "docker-registry"):
        super().__init__(
            f"the registry binary {binary!r} was not found on PATH: install it with "
            "'apt-get update && apt-get install -y docker-registry' (Debian/Ubuntu), "
            "or pass binary='/path/to/registry'"
        )


class RegistryError(RegistryInsightsError):
    """A registry answered a request with an error.

    Attributes
    ----------
    method, url : str
        The request; the URL carries no credentials.
    status : int or None
        HTTP status code (None when no response arrived).
    code : str or None
        The first OCI error code of the body (``MANIFEST_UNKNOWN``, ``DENIED`` ...).
    errors : list of dict
        Every ``{"code", "message", "detail"}`` entry of the body.
    retry_after : float or None
        Seconds the registry asked to wait (``Retry-After``, seconds or HTTP-date), if it did.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        code: str | None = None,
        errors: list | None = None,
        retry_after: float | None = None,
    ):
        self.method = method
        self.retry_after = retry_after
        self.url = url
        self.status = status
        self.code = code
        self.errors = list(errors or [])
        parts = []
        if method and url:
            parts.append(f"{method} {url}")
        if status is not None:
            parts.append(f"HTTP {status}")
        if code:
            parts.append(code)
        prefix = ": ".join([" ".join(parts)]) if parts else ""
        self.message = message
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def rewrap(self, message: str, cls: type[RegistryError] | None = None) -> RegistryError:
        """The same request, status, code and error entries under a new ``message`` (and
        class, default this one's): for errors that say what a failure means to the caller."""
        return (cls or type(self))(message, method=self.method, url=self.url,
                                   status=self.status, code=self.code, errors=self.errors,
                                   retry_after=self.retry_after)


class Unauthorized(RegistryError):
    """401: credentials missing or refused (OCI code ``UNAUTHORIZED``)."""


class Denied(RegistryError):
    """403: the identity may not do this (OCI code ``DENIED``)."""


class NotFound(RegistryError):
    """404: unknown repository, manifest, tag or blob.

    OCI codes ``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``.
    """


class Unsupported(RegistryError):
    """405 or ``UNSUPPORTED``: the registry does not offer this (e.g. deletes disabled)."""


class TooManyRequests(RegistryError):
    """429 or ``TOOMANYREQUESTS``: rate limited, even after the retries."""


class RateLimited(TooManyRequests):
    """429 or 503 with a ``Retry-After`` longer than the client's ``max_retry_after``: raised at
    once, without waiting; ``retry_after`` holds the seconds the registry asked for."""


class IncompleteBlob(RegistryError):
    """A blob download kept breaking off (resumed with ``Range`` a bounded number of times), or
    the registry sent more bytes than the blob's descriptor says."""


class DigestMismatch(RegistryError):
    """The bytes received do not hash to the digest asked for or announced."""


class InvalidResponse(RegistryError):
    """The registry answered with something that is not what the protocol says (HTML, bad JSON)."""


class CatalogUnavailable(RegistryError):
    """The registry offers no ``/v2/_catalog`` to this identity: pass repositories explicitly."""


class CredentialHelperError(RegistryInsightsError):
    """A docker credential helper failed (not 'credentials not found')."""


class ConfirmationRequired(RegistryInsightsError):
    """A delete was asked for without the confirmation ticked: nothing was deleted."""
