"""Parsed manifests, descriptors and platforms (OCI image-spec; Docker image manifest v2).

Pure data and parsing, no I/O: :func:`parse_manifest` reads the exact bytes a registry returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
    def from_dict(cls, data) -> Platform | None:
        """The ``platform`` object of a descriptor or the fields of a config; fields that are
        not strings (``"os": 1``, ``"variant": ["v7"]``: anyone with push rights can write
        them) are unknown, never an error. None when ``data`` is not a non-empty object."""
        if not data or not isinstance(data, dict):
            return None
        return cls(text_field(data.get("os")) or "unknown",
                   text_field(data.get("architecture")) or "unknown",
                   text_field(data.get("variant")))

    def normalized(self) -> Platform:
        """The platform as containerd normalises it (``platforms.Normalize``):
        ``x86_64``/``x86-64`` = ``amd64`` (variant ``v1`` dropped); ``aarch64`` = ``arm64`` and
        ``arm64/v8`` = ``arm64``; ``armhf`` = ``arm/v7``, ``armel`` = ``arm/v6``, ``arm`` =
        ``arm/v7``, variant ``7`` = ``v7``; ``i386`` = ``386``; known names in lower case.
        Values it does not know are kept as written."""
        os_ = self.os.lower() if self.os.lower() in _KNOWN_OS else self.os
        os_ = "darwin" if os_ == "macos" else os_
        arch = self.architecture.lower()
        variant = self.variant
        if variant is not None and _VARIANT.fullmatch(variant):
            variant = variant.lower()
        if arch in ("x86_64", "x86-64", "amd64"):
            arch = "amd64"
            variant = None if variant == "v1" else variant
        elif arch in ("aarch64", "arm64"):
            arch = "arm64"
            variant = None if variant in ("8", "v8") else variant
        elif arch == "armhf":
            arch, variant = "arm", "v7"
        elif arch == "armel":
            arch, variant = "arm", "v6"
        elif arch == "arm":
            if variant is None or variant in ("7", "v7"):
                variant = "v7"
            elif variant in ("5", "6", "8"):
                variant = "v" + variant
        elif arch in ("i386", "i686", "x86"):
            arch = "386"
        elif arch not in _KNOWN_ARCH:
            arch = self.architecture  # not a name containerd knows: as written
        return Platform(os_, arch, variant)


_KNOWN_OS = frozenset({"linux", "windows", "darwin", "macos", "freebsd", "netbsd", "openbsd",
                       "solaris", "illumos", "aix", "plan9", "js", "wasip1", "unknown"})
_KNOWN_ARCH = frozenset({"386", "amd64", "arm", "arm64", "ppc64le", "ppc64", "s390x",
                         "riscv64", "mips64le", "mips64", "mipsle", "mips", "loong64", "wasm",
                         "unknown"})
_VARIANT = re.compile(r"[vV]?\d+")


def text_field(value) -> str | None:
    """``value`` when it is a non-empty string, else None (hostile or missing JSON fields)."""
    return value if isinstance(value, str) and value else None


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
    urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict) -> Descriptor:
        size = data.get("size")
        annotations = data.get("annotations")
        urls = data.get("urls")
        return cls(
            media_type=text_field(data.get("mediaType")) or "",
            digest=text_field(data.get("digest")) or "",
            size=int(size) if isinstance(size, int) and not isinstance(size, bool) else None,
            platform=Platform.from_dict(data.get("platform")),
            annotations=dict(annotations) if annotations and isinstance(annotations, dict)
            else _NO_ANNOTATIONS,
            artifact_type=text_field(data.get("artifactType")),
            urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )

    @property
    def is_foreign(self) -> bool:
        """A layer the registry does not store: Docker's foreign layer, the OCI
        non-distributable types, or any descriptor with ``urls`` (OCI image-spec,
        "Descriptor": urls; Distribution refuses ``urls`` on any other layer)."""
        return (bool(self.urls) or self.media_type == mt.DOCKER_FOREIGN_LAYER
                or self.media_type.startswith(mt.OCI_NONDISTRIBUTABLE_PREFIX))

    @property
    def is_attestation(self) -> bool:
        """An index entry that is not an image: buildkit attestation or ``unknown/unknown``."""
        return (
            self.annotations.get(mt.REFERENCE_TYPE_ANNOTATION) is not None
            or self.platform == UNKNOWN_PLATFORM
        )


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
    def artifact_type(self) -> str | None:
        """The manifest's ``artifactType``, else its config's media type (OCI image-spec,
        "Guidelines for Artifact Usage"); None for indexes without one and schema 1."""
        declared = text_field(self.data.get("artifactType"))
        if declared or self.is_index:
            return declared
        cfg = self.config
        return cfg.media_type or None if cfg is not None else None

    @property
    def subject(self) -> str | None:
        """The digest of the manifest this one describes (``subject``, OCI image-spec 1.1),
        or None."""
        subject = self.data.get("subject")
        return text_field(subject.get("digest")) if isinstance(subject, dict) else None

    @property
    def annotations(self) -> dict:
        value = self.data.get("annotations")
        return value if isinstance(value, dict) else {}

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
#: The range of ``datetime64[ns]`` (what the frames hold), whole days inside it: times outside
#: (cosign's and ``crane append``'s ``0001-01-01T00:00:00Z``) are unknown, not errors.
EARLIEST = datetime(1677, 9, 22, tzinfo=timezone.utc)
LATEST = datetime(2262, 4, 10, tzinfo=timezone.utc)


def parse_timestamp(value) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime; None when missing, unparseable or
    outside :data:`EARLIEST` .. :data:`LATEST` (the frames' nanosecond range).

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
        parsed = parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return parsed if EARLIEST <= parsed <= LATEST else None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def schema1_payload(raw: bytes) -> bytes | None:
    """The signed payload of a Docker schema 1 manifest (libtrust JWS, "pretty" form): the
    bytes without the ``signatures`` block, rebuilt from the first signature's protected
    header (``formatLength``, ``formatTail``). Its sha256 is the manifest's digest (what
    Distribution answers in ``Docker-Content-Digest``). None when ``raw`` is not signed
    schema 1 or the header does not describe it."""
    if b'"signatures"' not in raw:
        return None
    try:
        data = json.loads(raw)
        protected = json.loads(_b64url(data["signatures"][0]["protected"]))
        length = protected["formatLength"]
        tail = _b64url(protected["formatTail"])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(length, int) or not 0 < length <= len(raw):
        return None
    return raw[:length] + tail


def manifest_digest(raw: bytes) -> str:
    """The digest of manifest bytes: sha256 of the bytes, or of the signed payload for a
    signed schema 1 manifest (:func:`schema1_payload`)."""
    payload = schema1_payload(raw)
    return "sha256:" + hashlib.sha256(raw if payload is None else payload).hexdigest()


def schema1_config(data: dict) -> dict:
    """The image config of a schema 1 manifest: its ``history[0].v1Compatibility`` JSON (the
    top layer's, which carries ``created``, ``os`` and ``architecture``); {} when absent."""
    history = data.get("history")
    first = history[0] if isinstance(history, list) and history else None
    text = first.get("v1Compatibility") if isinstance(first, dict) else None
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


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
    #: The manifest's ``artifactType``, else its config media type (None for an index).
    artifact_type: str | None = None
    #: The digest this manifest describes (``subject``, or the digest a cosign/referrers
    #: fallback tag names), None for content of its own.
    subject: str | None = None
    #: The index listing this manifest directly (None for a tag's own manifest).
    parent_digest: str | None = None
    annotations: dict = field(repr=False, default_factory=dict, compare=False, hash=False)

    @property
    def created(self) -> str | None:
        """The config's ``created`` string as written (RFC 3339), else the manifest's
        ``org.opencontainers.image.created`` annotation, or None. A time outside the frames'
        range (``0001-01-01T00:00:00Z``) counts as missing."""
        config = self.config if isinstance(self.config, dict) else {}
        for value in (config.get("created"), self.annotations.get(mt.CREATED_ANNOTATION)):
            if isinstance(value, str) and parse_timestamp(value) is not None:
                return value
        return None

    @property
    def created_at(self) -> datetime | None:
        """``created`` as a UTC datetime, None when missing, unparseable or out of range."""
        return parse_timestamp(self.created)

    @property
    def architecture(self) -> str | None:
        return text_field(self.config.get("architecture")) if isinstance(self.config, dict) \
            else None

    @property
    def os(self) -> str | None:
        return text_field(self.config.get("os")) if isinstance(self.config, dict) else None

    @property
    def variant(self) -> str | None:
        return text_field(self.config.get("variant")) if isinstance(self.config, dict) \
            else None


@dataclass(frozen=True, slots=True)
class TagDetails:
    """What a tag points to: the top manifest (image or index) and the images in it.

    ``images`` holds the image platforms; ``others`` everything else, kept for storage
    accounting: a tag's own artifact manifest (Helm chart, SBOM, signature), the non-image
    entries of an index (attestations, ``unknown/unknown``) and nested indexes.
    ``subject``: the digest an accessory tag (``sha256-<hex>.sig``) or a manifest with a
    ``subject`` describes, None otherwise.
    """

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    manifest: Manifest = field(repr=False)
    images: tuple[ImageDetails, ...] = ()
    others: tuple[ImageDetails, ...] = field(default=(), repr=False)
    subject: str | None = None
    #: False when a part of an index could not be read (its rows are what could be).
    complete: bool = True

    def _single(self) -> ImageDetails | None:
        return self.images[0] if len(self.images) == 1 else None

    @property
    def created_at(self) -> datetime | None:
        """Creation time (UTC) of a single-platform tag; the newest image's for an index;
        for an artifact (no image), its own. None when unknown or out of range."""
        rows = self.images or self.others[:1]
        times = [i.created_at for i in rows if i.created_at is not None]
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
