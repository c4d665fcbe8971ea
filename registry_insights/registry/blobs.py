"""Blob downloads: streamed, verified, resumed (OCI distribution-spec, "Pulling blobs").

The bytes are written as stored, never decoded (``Accept-Encoding: identity``); their sha256 is
checked as they arrive. A download that breaks off is resumed with ``Range: bytes=<written>-``
(RFC 9110 14.2): a 206 whose ``Content-Range`` starts there continues it, a 200 (range
ignored) starts it again, at most :data:`BLOB_RESUMES` times. A registry that announces or
sends more than the descriptor's size is refused without reading the rest.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import IO

import requests
import urllib3

from ..errors import DigestMismatch, IncompleteBlob, InvalidResponse
from .responses import redact_url

log = logging.getLogger("registry_insights")

#: Times a broken blob download is resumed (``Range``) before IncompleteBlob is raised.
BLOB_RESUMES = 3


def download_blob(transport, repository: str, digest: str, fileobj: IO[bytes],
                  chunk_size: int = 1 << 20, size: int | None = None) -> int:
    """Stream blob ``digest`` of ``repository`` into ``fileobj``; return the bytes written.
    See :meth:`RegistryClient.blob <registry_insights.registry.client.RegistryClient.blob>`."""
    path = f"/v2/{repository}/blobs/{digest}"
    what = f"blob {repository}@{digest}"
    hasher = hashlib.sha256()
    written = 0
    breaks = 0
    while True:
        # the bytes as stored, never decoded: a blob store that labels a .tar.gz layer
        # "Content-Encoding: gzip" must not turn it into the tar (the digest is of the blob)
        headers = {"Accept-Encoding": "identity"}
        if written:
            headers["Range"] = f"bytes={written}-"
        response = transport.request(
            "blob", "GET", path, scopes=(f"repository:{repository}:pull",), stream=True,
            cache=False, headers=headers, ok=(200, 206))
        with response:
            if written and response.status_code == 200:
                log.info("%s: the registry ignored Range; downloading it again", what)
                _rewind(fileobj, what, response)
                hasher, written = hashlib.sha256(), 0
            start = _range_start(response)
            if response.status_code == 206 and start != written:
                raise InvalidResponse(
                    f"{what}: asked for bytes from {written}, the registry answered 206 "
                    f"with Content-Range {response.headers.get('Content-Range')!r}",
                    method="GET", url=response.url, status=206)
            length = response.headers.get("Content-Length", "")
            if size is not None and length.isdigit() and written + int(length) > size:
                raise _oversized(what, written + int(length), size, response,
                                 "announces")
            try:
                for chunk in response.raw.stream(chunk_size, decode_content=False):
                    if size is not None and written + len(chunk) > size:
                        raise _oversized(what, written + len(chunk), size, response,
                                         "sent at least")
                    hasher.update(chunk)
                    fileobj.write(chunk)
                    written += len(chunk)
                complete = size is None or written == size
                reason = f"ended after {written} of {size} bytes"
            except (urllib3.exceptions.HTTPError, requests.RequestException,
                    ConnectionError, TimeoutError) as exc:
                complete, reason = False, f"broke off after {written} bytes ({exc!r:.120})"
        if complete:
            break
        breaks += 1
        if breaks > BLOB_RESUMES:
            raise IncompleteBlob(
                f"{what}: the download {reason}; gave up after {BLOB_RESUMES} resumes",
                method="GET", url=redact_url(response.url or ""))
        log.warning("%s: the download %s; resuming (%d of %d)", what, reason, breaks,
                    BLOB_RESUMES)
    actual = "sha256:" + hasher.hexdigest()
    if digest.startswith("sha256:") and actual != digest:
        raise DigestMismatch(f"blob {repository}@{digest} hashes to {actual}",
                             method="GET", url=response.url)
    return written


def _range_start(response) -> int | None:
    """The first byte of a 206's ``Content-Range: bytes <first>-<last>/<size>``, else None."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*",
                         response.headers.get("Content-Range") or "")
    return int(match.group(1)) if match else None


def _rewind(fileobj, what: str, response) -> None:
    """Empty ``fileobj`` to write a blob again from its start."""
    try:
        fileobj.seek(0)
        fileobj.truncate()
    except (AttributeError, OSError, ValueError) as exc:
        raise IncompleteBlob(
            f"{what}: the registry ignored Range after a broken download and the target "
            f"cannot be rewound ({exc}); nothing usable was written",
            method="GET", url=redact_url(response.url or ""), status=200) from None


def _oversized(what: str, count: int, size: int, response, verb: str) -> IncompleteBlob:
    return IncompleteBlob(
        f"{what}: the registry {verb} {count} bytes, its descriptor says {size}; stopped "
        "reading (nothing usable was written)",
        method="GET", url=redact_url(response.url or ""), status=response.status_code)
