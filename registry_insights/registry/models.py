"""Parsed manifests, descriptors and platforms (OCI image-spec; Docker image manifest v2).

Pure data and parsing, no I/O: :func:`parse_manifest` reads the exact bytes a registry returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
import zlib
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass, field
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
        if not data or not isinstance(data, Mapping):
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
        get = data.get
        media_type, digest, size = get("mediaType"), get("digest"), get("size")
        platform, annotations, urls = get("platform"), get("annotations"), get("urls")
        artifact_type = get("artifactType")
        return cls(
            # media types interned: a fleet repeats a few, so each is held once; digests not
            # (most are unique, and the walk shares equal layer descriptors whole)
            sys.intern(media_type) if type(media_type) is str else "",
            digest if type(digest) is str else "",
            size if type(size) is int else None,  # JSON: never a bool, never a float
            Platform.from_dict(platform) if platform else None,
            dict(annotations) if annotations and isinstance(annotations, dict)
            else _NO_ANNOTATIONS,
            artifact_type if type(artifact_type) is str and artifact_type else None,
            tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        )

    def __reduce__(self):
        # pickles (to other processes) without the shared read-only empty annotations
        return (_descriptor, (self.media_type, self.digest, self.size, self.platform,
                              dict(self.annotations) or None, self.artifact_type))

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


def _descriptor(media_type, digest, size, platform, annotations, artifact_type) -> Descriptor:
    return Descriptor(media_type, digest, size, platform, annotations or _NO_ANNOTATIONS,
                      artifact_type)


class Manifest:
    """A manifest or index as received: its exact bytes, digest, media type and parsed JSON.

    ``raw``: the exact bytes (their sha256 is ``digest``); ``data``: the parsed JSON, held
    while the walk needs it (``parsed``). In an inventory (:meth:`compact`) the manifest holds
    its bytes zlib-compressed (a manifest's JSON, digests and all, compresses about 2.5x) and
    no parsed JSON: ``raw`` and ``data`` decompress and parse on each use. Immutable; equal
    when repository, reference, digest, media type and bytes are.
    """

    __slots__ = ("repository", "reference", "digest", "media_type", "parsed", "size",
                 "_stored", "_packed")

    def __init__(self, repository: str, reference: str, digest: str, media_type: str,
                 raw: bytes, parsed: dict | None = None):
        init = object.__setattr__
        init(self, "repository", repository)
        init(self, "reference", reference)
        init(self, "digest", digest)
        init(self, "media_type", media_type)
        init(self, "parsed", parsed)
        #: bytes of the manifest as stored (its blob size)
        init(self, "size", len(raw))
        init(self, "_stored", raw)
        init(self, "_packed", False)

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def raw(self) -> bytes:
        """The exact bytes the registry returned."""
        return zlib.decompress(self._stored) if self._packed else self._stored

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.repository, self.reference, self.digest, self.media_type, self.size) \
            == (other.repository, other.reference, other.digest, other.media_type,
                other.size) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.repository, self.reference, self.digest, self.media_type))

    def __repr__(self) -> str:
        return (f"Manifest(repository={self.repository!r}, reference={self.reference!r}, "
                f"digest={self.digest!r}, media_type={self.media_type!r}, size={self.size})")

    def __reduce__(self):
        # travels as held (compressed in an inventory), without the parsed JSON
        return (_stored_manifest, (self.repository, self.reference, self.digest,
                                   self.media_type, self._stored, self._packed, self.size))

    @property
    def data(self) -> dict:
        """The parsed JSON object."""
        if self.parsed is not None:
            return self.parsed
        data = json.loads(self.raw)
        return data if isinstance(data, dict) else {}

    def compact(self) -> Manifest:
        """The same manifest as an inventory keeps it: the bytes zlib-compressed (when that
        makes them smaller) and no parsed JSON (``data`` parses ``raw`` on use)."""
        if self._packed or (self.parsed is None and self.size < _PACK_FROM):
            return self
        raw = self._stored
        packed = zlib.compress(raw) if self.size >= _PACK_FROM else raw
        return _stored_manifest(self.repository, self.reference, self.digest,
                                self.media_type, *((packed, True) if len(packed) < len(raw)
                                                   else (raw, False)), self.size)

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
        return self.artifact_type_of(self.config)

    def artifact_type_of(self, cfg: Descriptor | None) -> str | None:
        """:attr:`artifact_type` given the manifest's config descriptor already parsed."""
        declared = text_field(self.data.get("artifactType"))
        if declared or self.is_index:
            return declared
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
        return total_size(self.layers)


def total_size(descriptors) -> int | None:
    """Sum of the descriptors' sizes in bytes; None when any size is unknown."""
    sizes = [d.size for d in descriptors]
    return None if None in sizes else sum(sizes)


#: Manifests shorter than this (bytes) are kept as they are by :meth:`Manifest.compact`.
_PACK_FROM = 256


def _stored_manifest(repository, reference, digest, media_type, stored, packed, size
                     ) -> Manifest:
    manifest = Manifest.__new__(Manifest)
    for name, value in (("repository", repository), ("reference", reference),
                        ("digest", digest), ("media_type", media_type), ("parsed", None),
                        ("size", size), ("_stored", stored), ("_packed", packed)):
        object.__setattr__(manifest, name, value)
    return manifest


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
    if value[-1:] == "Z":  # the usual shape: Python 3.11+ reads it whole, fractions and all
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:  # Python 3.10, or anything unusual: the general way below
            pass
        else:
            if parsed.utcoffset() is not None:
                return parsed if EARLIEST <= parsed <= LATEST else None
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


class ImageConfig(Mapping):
    """An image configuration (OCI image-spec "Image Configuration"), light to hold.

    A read-only mapping over the config JSON. The fields the frames read (``architecture``,
    ``os``, ``variant``, ``created``) are kept parsed; the document itself is held as its
    exact bytes (``raw``) or, in an inventory, not at all: ``loader`` reads the bytes again
    when any other key is asked (the client's HTTP cache keeps configs forever, so that is
    a local read), and :meth:`to_dict` gives the whole parsed document. A few dozen bytes per
    distinct config instead of a tree of dicts several times the JSON's size.
    """

    __slots__ = ("raw", "digest", "_fields", "_loader", "_repository")
    _FIELDS = ("architecture", "os", "variant", "created")
    _AT = {name: i for i, name in enumerate(_FIELDS)}

    def __init__(self, raw: bytes | None, parsed: dict | None = None, *,
                 digest: str | None = None, loader=None, fields: tuple | None = None):
        if fields is None:
            if parsed is None:
                parsed = json.loads(raw) if raw else {}
            if not isinstance(parsed, dict):
                parsed, raw = {}, b"{}"
            fields = tuple(_intern_field(parsed.get(k)) for k in self._FIELDS)
        self.raw = raw
        self.digest = digest
        self._fields = fields
        self._loader = loader
        self._repository: str | None = None

    @classmethod
    def parse(cls, raw: bytes, what: str = "config", digest: str | None = None
              ) -> ImageConfig:
        """``raw`` checked to be JSON (a JSON value that is not an object is an empty config).

        Raises
        ------
        InvalidResponse
            When the bytes are not JSON.
        """
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidResponse(f"{what} is not JSON; first bytes: {raw[:80]!r}") from None
        return cls(raw, parsed, digest=digest)

    def light(self, loader, repository: str | None = None) -> ImageConfig:
        """The same config holding only its parsed fields and digest; ``loader()`` returns
        the bytes when more is asked, or, with ``repository``, ``loader(repository,
        digest)`` (one loader shared by every config of a walk, e.g.
        :meth:`RegistryClient.blob_bytes`, instead of one closure each)."""
        light = ImageConfig(None, digest=self.digest, loader=loader, fields=self._fields)
        light._repository = repository
        return light

    def attach(self, loader, repository: str | None = None) -> None:
        """Give a config that travelled without its loader (pickled) a way to its bytes
        (``loader`` and ``repository`` as in :meth:`light`)."""
        if self.raw is None and self._loader is None:
            self._loader, self._repository = loader, repository

    def _bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self._loader is None:
            raise LookupError(f"config {self.digest} is not held here; read it with "
                              "RegistryClient.config(repository, descriptor)")
        if self._repository is not None:
            return self._loader(self._repository, self.digest)
        return self._loader()

    def to_dict(self) -> dict:
        """The whole configuration, parsed (a new dict each call)."""
        raw = self._bytes()
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {}

    def get(self, key, default=None):
        at = self._AT.get(key)
        if at is not None:
            value = self._fields[at]
            return default if value is None else value
        return self.to_dict().get(key, default)

    def __getitem__(self, key):
        at = self._AT.get(key)
        if at is not None and self._fields[at] is not None:
            return self._fields[at]
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def keys(self):
        return self.to_dict().keys()

    def items(self):
        return self.to_dict().items()

    def values(self):
        return self.to_dict().values()

    def __len__(self) -> int:
        return len(self.to_dict()) if self else 0

    def __bool__(self) -> bool:
        return self.digest is not None or self.raw not in (None, b"", b"{}")

    def __eq__(self, other) -> bool:
        if isinstance(other, ImageConfig):
            if self.digest is not None or other.digest is not None:
                return self.digest == other.digest and self._fields == other._fields
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # a mapping

    def __reduce__(self):
        # travels (to other processes) without its loader; ``attach`` gives it one there
        return (_image_config, (self.raw, self.digest, self._fields))

    def __copy__(self) -> ImageConfig:
        return self  # immutable: a copy in this process keeps its way to the bytes

    def __deepcopy__(self, memo) -> ImageConfig:
        return self

    def __repr__(self) -> str:
        return f"ImageConfig({self.digest}, {dict(zip(self._FIELDS, self._fields))})"


def _image_config(raw, digest, fields) -> ImageConfig:
    return ImageConfig(raw, digest=digest, fields=fields)


def _intern_field(value):
    # architecture, os, variant: a handful of values; ``created`` (unique per build) is not
    return sys.intern(value) if isinstance(value, str) and len(value) < 16 else value


#: The config of an image row without one (schema 1, attestations, artifacts).
EMPTY_CONFIG = ImageConfig(b"{}", {})


@dataclass(frozen=True, slots=True)
class ImageDetails:
    """One platform image of a tag: its manifest, config and layers (sizes in bytes)."""

    platform: str
    manifest_digest: str
    manifest_media_type: str
    manifest_size: int
    config_digest: str | None
    config_size: int | None
    config: Mapping = field(repr=False, compare=False, hash=False)
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
        config = self.config if isinstance(self.config, Mapping) else {}
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
        return text_field(self.config.get("architecture")) \
            if isinstance(self.config, Mapping) else None

    @property
    def os(self) -> str | None:
        return text_field(self.config.get("os")) if isinstance(self.config, Mapping) else None

    @property
    def variant(self) -> str | None:
        return text_field(self.config.get("variant")) if isinstance(self.config, Mapping) \
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
    def config(self) -> Mapping | None:
        single = self._single()
        return single.config if single else None
