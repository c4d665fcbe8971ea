"""Names of the distribution grammar: repositories, tags, digests, references, registry URLs.

Follows the OCI distribution-spec, "Pulling manifests" (``<name>`` and ``<reference>`` grammar), and
the reference grammar of distribution/reference (``host[:port]/path:tag@sha256:hex``).
Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import InvalidReference

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
#: A digest, ``algorithm:encoded`` (OCI image-spec "Digests"), unanchored for use in URLs.
DIGEST_PATTERN = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
DIGEST_RE = re.compile(rf"^{DIGEST_PATTERN}$")
SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


def validate_repository(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise :class:`InvalidReference`.

    Components are lower case alphanumerics separated by ``.``, ``_``, ``__`` or dashes, joined by
    ``/``; at most 255 characters (OCI distribution-spec, "Pulling manifests").
    """
    if not isinstance(name, str) or not name:
        raise InvalidReference(f"repository {name!r} is not a valid name: it is empty")
    if len(name) > 255:
        raise InvalidReference(
            f"repository {name[:40]!r}... is longer than 255 characters"
        )
    if not REPOSITORY_RE.fullmatch(name):
        hint = " (names are lower case)" if name.lower() != name else ""
        raise InvalidReference(
            f"repository {name!r} is not a valid name{hint}: components are [a-z0-9] separated "
            "by '.', '_', '__' or '-', joined by '/'"
        )
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if valid (``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``), else raise.

    Raises InvalidReference naming the tag.
    """
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise InvalidReference(
            f"tag {tag!r} is not a valid tag: 1 to 128 characters of [a-zA-Z0-9._-], "
            "not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``algorithm:encoded`` (sha256: 64 lower-case hex), else raise."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise InvalidReference(
            f"digest {digest!r} is not a valid digest: expected 'sha256:<64 hex>'"
        )
    if digest.startswith("sha256:") and not SHA256_RE.fullmatch(digest):
        raise InvalidReference(
            f"digest {digest!r} is not a valid sha256 digest: expected 64 lower-case hex characters"
        )
    return digest


def is_digest(reference: str) -> bool:
    """True when ``reference`` has the form of a digest rather than a tag."""
    return ":" in reference


def validate_reference(reference: str) -> str:
    """A manifest reference: a tag or a digest."""
    return validate_digest(reference) if is_digest(reference) else validate_tag(reference)


def sha256_digest(data: bytes) -> str:
    """The OCI digest (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Reference:
    """A parsed image reference ``[registry/]repository[:tag][@digest]``."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The manifest reference to fetch: the digest when present, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse ``host:port/repo/name:tag@sha256:...`` (each part but the repository optional).

    The first path component is a registry host when it contains ``.`` or ``:`` or is
    ``localhost`` (the rule of distribution/reference).

    Raises
    ------
    InvalidReference
        When any part breaks the grammar; the message names the part.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference(f"reference {text!r} is empty")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        validate_digest(digest)
    registry = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        validate_tag(tag)
    validate_repository(rest)
    return Reference(registry=registry, repository=rest, tag=tag, digest=digest)


def _is_loopback(host: str) -> bool:
    """True only for ``localhost`` and literal loopback addresses (``127.0.0.0/8``, ``::1``).

    Other names, ``*.localhost`` included, resolve through DNS (or /etc/hosts) on many
    machines and may reach another host: they are not loopback.
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_BASE_PATH_RE = re.compile(r"^(?:/[A-Za-z0-9._~-]+)+$")


def normalize_registry(registry: str, insecure: bool = False) -> str:
    """Return the base URL ``scheme://host[:port][/path]`` of a registry given as host or URL.

    A bare host gets ``https://``, except loopback hosts and ``insecure=True``, which get
    ``http://``. Plain http elsewhere needs ``insecure=True``. Loopback means ``localhost`` or a
    literal loopback address (``127.0.0.0/8``, ``::1``) only: a name such as
    ``evil.localhost`` resolves through DNS and is treated as any remote host.
    A registry served under a path (Distribution's ``http.prefix``, a path-routing reverse
    proxy: ``https://host/reg/v2/``) keeps that path: ``https://host/reg``. A trailing ``/v2``
    or ``/`` is dropped.

    Raises
    ------
    InvalidReference
        For an empty value, a scheme other than http(s), a query, a malformed path, or
        credentials in the URL.
    """
    if not isinstance(registry, str) or not registry.strip():
        raise InvalidReference(f"registry {registry!r} is empty: give a host or https:// URL")
    text = registry.strip().rstrip("/")
    if "://" not in text:
        hostname = urlsplit(f"//{text}").hostname or ""
        scheme = "http" if (insecure or _is_loopback(hostname)) else "https"
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise InvalidReference(
            "registry URL must not carry credentials: pass username= and password= instead"
        )
    if parts.scheme not in ("http", "https"):
        raise InvalidReference(
            f"registry scheme {parts.scheme!r} is not supported: use http or https"
        )
    path = parts.path.rstrip("/")
    if path == "/v2" or path.endswith("/v2"):
        path = path[:-3]
    if parts.query or parts.fragment or (path and not _BASE_PATH_RE.fullmatch(path)) \
            or any(p in (".", "..", "v2") for p in path.split("/")):
        raise InvalidReference(
            f"registry {registry!r}: give the host, or the URL the API is served under "
            "(https://host/path, without a query)")
    if not parts.hostname or not _HOST_RE.fullmatch(parts.netloc):
        raise InvalidReference(f"registry {registry!r} has no valid host")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise InvalidReference(f"registry {registry!r}: the port must be 1 to 65535")
    if parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise InvalidReference(
            f"registry {registry!r}: plain http is allowed only for loopback hosts; "
            "pass insecure=True to allow it"
        )
    return f"{parts.scheme}://{parts.netloc}{path}"
