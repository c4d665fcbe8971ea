"""Pushing: blobs (monolithic POST then PUT), cross-repository mounts and manifests (OCI
distribution-spec, "Pushing blobs", "Pushing manifests"). Used by the demo seeding and by
tag-only deletes (the throwaway manifest); mixed into
:class:`~registry_insights.registry.client.RegistryClient`."""

from __future__ import annotations

from urllib.parse import quote

from ..errors import InvalidResponse
from .models import manifest_digest
from .names import sha256_digest, validate_reference, validate_repository


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class PushVerbs:
    """The push verbs of a client that has ``_transport`` and ``cache``."""

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD the blob: True when ``repository`` has it."""
        validate_repository(repository)
        response = self._transport.request(
            "blob", "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(pull_scope(repository),),
            ok=(200, 404), cache=False,
        )
        return response.status_code == 200

    def upload_blob(self, repository: str, data: bytes, digest: str | None = None) -> str:
        """Push ``data`` as a blob (monolithic POST + PUT); return its digest."""
        validate_repository(repository)
        digest = digest or sha256_digest(data)
        scopes = (push_scope(repository),)
        started = self._transport.request(
            "upload", "POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, ok=(202,),
            cache=False,
        )
        location = started.headers.get("Location")
        if not location:
            raise InvalidResponse("blob upload answered 202 without a Location",
                                  method="POST", url=started.url, status=202)
        sep = "&" if "?" in location else "?"
        self._transport.request(
            "upload", "PUT", f"{location}{sep}digest={quote(digest)}", scopes=scopes,
            ok=(201,), cache=False, data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True when mounted, False when the registry wants an upload."""
        validate_repository(repository)
        validate_repository(from_repository)
        response = self._transport.request(
            "upload", "POST",
            f"/v2/{repository}/blobs/uploads/?mount={quote(digest)}&from={from_repository}",
            scopes=(push_scope(repository), pull_scope(from_repository)), ok=(201, 202),
            cache=False,
        )
        if response.status_code == 202 and response.headers.get("Location"):
            # an upload session was opened instead; cancel it
            self._transport.request("upload", "DELETE", response.headers["Location"],
                                    scopes=(push_scope(repository),), ok=(204, 404),
                                    cache=False)
        return response.status_code == 201

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Push manifest bytes under a tag or digest; return the digest of ``raw``."""
        validate_repository(repository)
        validate_reference(reference)
        self._transport.request(
            "upload", "PUT", f"/v2/{repository}/manifests/{reference}",
            scopes=(push_scope(repository),), ok=(201,), cache=False, data=raw,
            headers={"Content-Type": media_type},
        )
        self.cache.invalidate(repository, (reference,))
        return manifest_digest(raw)
