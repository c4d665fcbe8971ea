"""Parsed manifests, descriptors and platforms (OCI image-spec; Docker image manifest v2).

Pure data and parsing, no I/O: :func:`parse_manifest` reads the exact bytes a registry returned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType

from ..errors import InvalidResponse
from . import mediatypes as mt


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/architecture[/variant]`` (OCI image-spec, image index ``platform``)."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``"linux/arm64/v8"`` -> Platform; raises ValueError naming the text when malformed."""
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not 'os/architecture[/variant]'")
        return cls(*parts)

    @classmethod
    def from_dict(cls, data: dict | None) -> Platform | None:
        if not data:
            return None
        return cls(str(data.get("os") or "unknown"), str(data.get("architecture") or "unknown"),
                   data.get("variant") or None)


UNKNOWN_PLATFORM = Platform("unknown", "unknown")
#: Shared by every descriptor without annotations (most layers): one dict, not one each.
_NO_ANNOTATIONS = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: media type, digest, size in bytes (OCI image-spec, descriptor)."""

    media_type: str
    digest: str
    size: int | None
    platform: Platform | None = None
    annotations: dict = field(default_factory=dict, compare=False, hash=False)
    artifact_type: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> Descriptor:
        size = data.get("size")
        return cls(
            media_type=str(data.get("mediaType") or ""),
            digest=str(data.get("digest") or ""),
            size=int(size) if isinstance(size, int) else None,
            platform=Platform.from_dict(data.get("platform")),
            annotations=dict(data["annotations"]) if data.get("annotations") else _NO_ANNOTATIONS,
            artifact_type=data.get("artifactType"),
        )

    def __reduce__(self):
        # pickles (to other processes) without the shared read-only empty annotations
        return (_descriptor, (self.media_type, self.digest, self.size, self.platform,
                              dict(self.annotations) or None, self.artifact_type))

    @property
    def is_attestation(self) -> bool:
        """An index entry that is not an image: buildkit attestation or ``unknown/unknown``."""
        return (
            self.annotations.get(mt.REFERENCE_TYPE_ANNOTATION) is not None
            or self.platform == UNKNOWN_PLATFORM
        )


def _descriptor(media_type, digest, size, platform, annotations, artifact_type) -> Descriptor:
    return Descriptor(media_type, digest, size, platform, annotations or _NO_ANNOTATIONS,
                      artifact_type)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest or index as received: its exact bytes, digest, media type and parsed JSON."""

    repository: str
    reference: str
    digest: str
    media_type: str
    raw: bytes = field(repr=False)
    data: dict = field(repr=False, compare=False, hash=False)

    @property
    def size(self) -> int:
        """Bytes of the manifest as stored (its blob size)."""
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def is_schema1(self) -> bool:
        return self.media_type in mt.SCHEMA1

    @property
    def config(self) -> Descriptor | None:
        cfg = self.data.get("config")
        return Descriptor.from_dict(cfg) if isinstance(cfg, dict) else None

    @property
    def layers(self) -> list[Descriptor]:
        return [Descriptor.from_dict(d) for d in self.data.get("layers") or []
                if isinstance(d, dict)]

    @property
    def manifests(self) -> list[Descriptor]:
        """The entries of an index (empty for an image manifest)."""
        return [Descriptor.from_dict(d) for d in self.data.get("manifests") or []
                if isinstance(d, dict)]

    @property
    def layer_size(self) -> int | None:
        """Sum of the compressed layer sizes in bytes; None for schema 1 or unknown sizes."""
        if self.is_index or self.is_schema1:
            return None
        sizes = [d.size for d in self.layers]
        return None if any(s is None for s in sizes) else sum(sizes)


def detect_media_type(data: dict, content_type: str | None) -> str:
    """The manifest's media type: its ``mediaType`` field, else ``Content-Type``, else its shape."""
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    ctype = (content_type or "").split(";")[0].strip()
    if ctype and ctype not in ("application/json", "text/plain", "application/octet-stream"):
        return ctype
    if data.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in data else mt.DOCKER_SCHEMA1
    if "manifests" in data:
        return mt.OCI_INDEX
    if "config" in data and "layers" in data:
        return mt.OCI_MANIFEST
    return ctype or "application/octet-stream"


def parse_manifest(repository: str, reference: str, raw: bytes, content_type: str | None,
                   digest: str) -> Manifest:
    """Parse manifest bytes.

    Raises
    ------
    InvalidResponse
        When the bytes are not a JSON object (an HTML error page, text); the message shows the
        first bytes.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise InvalidResponse(
            f"manifest {repository}:{reference} is not JSON (Content-Type {content_type!r}); "
            f"first bytes: {raw[:80]!r}"
        )
    return Manifest(repository, reference, digest, detect_media_type(data, content_type), raw,
                    data)


_FRACTION = re.compile(r"(\.\d+)")


def parse_timestamp(value) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None when missing or unparseable.

    Accepts ``Z`` or numeric offsets and fractions of up to nanoseconds (truncated to
    microseconds here; the frames keep nanoseconds).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class ImageDetails:
    """One platform image of a tag: its manifest, config and layers (sizes in bytes)."""

    platform: str
    manifest_digest: str
    manifest_media_type: str
    manifest_size: int
    config_digest: str | None
    config_size: int | None
    config: dict = field(repr=False, compare=False, hash=False)
    layers: tuple[Descriptor, ...] = field(repr=False, default=())
    layer_size: int | None = None
    is_image: bool = True

    @property
    def created(self) -> str | None:
        """The config's ``created`` string as written (RFC 3339), or None."""
        value = self.config.get("created") if isinstance(self.config, dict) else None
        return value if isinstance(value, str) else None

    @property
    def created_at(self) -> datetime | None:
        """``created`` as a UTC datetime, None when missing or unparseable."""
        return parse_timestamp(self.created)

    @property
    def architecture(self) -> str | None:
        return self.config.get("architecture") if isinstance(self.config, dict) else None

    @property
    def os(self) -> str | None:
        return self.config.get("os") if isinstance(self.config, dict) else None


@dataclass(frozen=True, slots=True)
class TagDetails:
    """What a tag points to: the top manifest (image or index) and the images in it.

    ``images`` holds the image platforms; ``others`` the non-image entries of an index
    (attestations, ``unknown/unknown``), kept for storage accounting.
    """

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    manifest: Manifest = field(repr=False)
    images: tuple[ImageDetails, ...] = ()
    others: tuple[ImageDetails, ...] = field(default=(), repr=False)

    def _single(self) -> ImageDetails | None:
        return self.images[0] if len(self.images) == 1 else None

    @property
    def created_at(self) -> datetime | None:
        """Creation time (UTC) of a single-platform tag; the newest image's for an index."""
        times = [i.created_at for i in self.images if i.created_at is not None]
        return max(times) if times else None

    @property
    def layer_size(self) -> int | None:
        """Compressed layer bytes of a single-platform tag (None for an index: see images)."""
        single = self._single()
        return single.layer_size if single else None

    @property
    def config(self) -> dict | None:
        single = self._single()
        return single.config if single else None
