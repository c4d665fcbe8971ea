"""Unit tests of the models module: manifests parsed from the bytes registries send."""

from __future__ import annotations

import base64 as b64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from registry_insights.errors import InvalidResponse, RegistryError
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.models import (
    UNKNOWN_PLATFORM,
    Descriptor,
    Platform,
    detect_media_type,
    parse_manifest,
    parse_timestamp,
)
from registry_insights.registry.names import sha256_digest


def d(n: int) -> str:
    """A distinct, well-formed sha256 digest."""
    return "sha256:" + f"{n:x}".rjust(64, "0")


# Recorded-style bodies, pretty-printed with 3 spaces as Distribution and Docker Hub send them.
DOCKER_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "size": 1457, "digest": d(1)},
        "layers": [
            {"mediaType": mt.DOCKER_LAYER, "size": 29534055, "digest": d(2)},
            {"mediaType": mt.DOCKER_LAYER, "size": 1024, "digest": d(3)},
            {"mediaType": mt.DOCKER_LAYER, "size": 7, "digest": d(4)},
        ],
    },
    indent=3,
).encode()

DOCKER_LIST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": mt.DOCKER_MANIFEST, "size": 529, "digest": d(10),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": mt.DOCKER_MANIFEST, "size": 530, "digest": d(11),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": mt.DOCKER_MANIFEST, "size": 531, "digest": d(12),
             "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763"}},
        ],
    },
    indent=3,
).encode()

OCI_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": d(20), "size": 2345},
        "layers": [
            {"mediaType": mt.OCI_LAYER_GZIP, "digest": d(21), "size": 1000},
            {"mediaType": mt.OCI_LAYER_ZSTD, "digest": d(22), "size": 2000},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
    },
    separators=(",", ":"),
).encode()

OCI_INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": d(30), "size": 1000,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": mt.OCI_MANIFEST, "digest": d(31), "size": 1001,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": mt.OCI_MANIFEST, "digest": d(32), "size": 566,
             "annotations": {"vnd.docker.reference.digest": d(30),
                             "vnd.docker.reference.type": "attestation-manifest"},
             "platform": {"architecture": "unknown", "os": "unknown"}},
        ],
    },
    indent=2,
).encode()

SCHEMA1_SIGNED = json.dumps(
    {
        "schemaVersion": 1,
        "name": "library/hello",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": d(40)}, {"blobSum": d(41)}],
        "history": [{"v1Compatibility": '{"id":"abc","created":"2024-01-02T03:04:05Z"}'}],
        "signatures": [
            {"header": {"jwk": {"crv": "P-256", "kty": "EC"}, "alg": "ES256"},
             "signature": "c2lnbmF0dXJl", "protected": "eyJmb3JtYXRMZW5ndGgiOjF9"}
        ],
    },
    indent=3,
).encode()

NO_MEDIA_TYPE_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": d(50), "size": 10},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": d(51), "size": 20}],
    }
).encode()

NO_MEDIA_TYPE_INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": d(60), "size": 5,
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }
).encode()


def parse(raw: bytes, content_type: str | None = None, reference: str = "latest"):
    return parse_manifest("team/app", reference, raw, content_type, sha256_digest(raw))


# -- image manifests ------------------------------------------------------------------------------


def test_docker_schema2_manifest():
    m = parse(DOCKER_MANIFEST, mt.DOCKER_MANIFEST)
    assert m.repository == "team/app"
    assert m.reference == "latest"
    assert m.digest == sha256_digest(DOCKER_MANIFEST)
    assert m.media_type == mt.DOCKER_MANIFEST
    assert m.raw is DOCKER_MANIFEST
    assert m.size == len(DOCKER_MANIFEST)
    assert not m.is_index
    assert not m.is_schema1
    assert m.config == Descriptor(mt.DOCKER_CONFIG, d(1), 1457)
    assert [(x.digest, x.size, x.media_type) for x in m.layers] == [
        (d(2), 29534055, mt.DOCKER_LAYER),
        (d(3), 1024, mt.DOCKER_LAYER),
        (d(4), 7, mt.DOCKER_LAYER),
    ]
    assert m.layer_size == 29534055 + 1024 + 7
    assert m.manifests == []


def test_oci_manifest():
    m = parse(OCI_MANIFEST, mt.OCI_MANIFEST)
    assert m.media_type == mt.OCI_MANIFEST
    assert m.size == len(OCI_MANIFEST)
    assert m.config is not None
    assert (m.config.media_type, m.config.digest, m.config.size) == (mt.OCI_CONFIG, d(20), 2345)
    assert [x.media_type for x in m.layers] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD]
    assert m.layer_size == 3000
    assert m.data["annotations"]["org.opencontainers.image.created"] == "2024-01-02T03:04:05Z"


def test_manifest_without_layers_has_zero_layer_size():
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": {"mediaType": mt.OCI_EMPTY, "digest": d(7), "size": 2},
                      "layers": []}).encode()
    m = parse(raw)
    assert m.layers == []
    assert m.layer_size == 0


def test_layer_without_size_makes_layer_size_unknown():
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": {"mediaType": mt.OCI_CONFIG, "digest": d(7), "size": 2},
                      "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": d(8), "size": 5},
                                 {"mediaType": mt.OCI_LAYER_GZIP, "digest": d(9)}]}).encode()
    m = parse(raw)
    assert [x.size for x in m.layers] == [5, None]
    assert m.layer_size is None


# -- indexes --------------------------------------------------------------------------------------


def test_docker_manifest_list():
    m = parse(DOCKER_LIST, mt.DOCKER_MANIFEST_LIST)
    assert m.media_type == mt.DOCKER_MANIFEST_LIST
    assert m.is_index
    assert m.layer_size is None
    assert m.config is None
    assert m.layers == []
    assert m.size == len(DOCKER_LIST)
    assert [str(x.platform) for x in m.manifests] == ["linux/amd64", "linux/arm64/v8",
                                                      "windows/amd64"]
    assert [x.digest for x in m.manifests] == [d(10), d(11), d(12)]
    assert [x.size for x in m.manifests] == [529, 530, 531]
    assert not any(x.is_attestation for x in m.manifests)


def test_oci_index_with_attestation():
    m = parse(OCI_INDEX, mt.OCI_INDEX)
    assert m.media_type == mt.OCI_INDEX
    assert m.is_index
    assert m.layer_size is None
    entries = m.manifests
    assert len(entries) == 3
    assert [x.is_attestation for x in entries] == [False, False, True]
    attestation = entries[2]
    assert attestation.platform == UNKNOWN_PLATFORM
    assert str(attestation.platform) == "unknown/unknown"
    assert attestation.annotations["vnd.docker.reference.type"] == "attestation-manifest"
    assert attestation.annotations["vnd.docker.reference.digest"] == d(30)
    assert entries[1].platform == Platform("linux", "arm64", "v8")


def test_attestation_by_annotation_alone_or_platform_alone():
    by_annotation = Descriptor.from_dict(
        {"mediaType": mt.OCI_MANIFEST, "digest": d(1), "size": 1,
         "annotations": {mt.REFERENCE_TYPE_ANNOTATION: "attestation-manifest"},
         "platform": {"os": "linux", "architecture": "amd64"}})
    by_platform = Descriptor.from_dict(
        {"mediaType": mt.OCI_MANIFEST, "digest": d(2), "size": 1,
         "platform": {"os": "unknown", "architecture": "unknown"}})
    image = Descriptor.from_dict(
        {"mediaType": mt.OCI_MANIFEST, "digest": d(3), "size": 1,
         "annotations": {"org.opencontainers.image.ref.name": "v1"},
         "platform": {"os": "linux", "architecture": "amd64"}})
    no_platform = Descriptor.from_dict({"mediaType": mt.OCI_MANIFEST, "digest": d(4), "size": 1})
    assert by_annotation.is_attestation
    assert by_platform.is_attestation
    assert not image.is_attestation
    assert not no_platform.is_attestation
    assert no_platform.platform is None


def test_descriptor_from_dict():
    desc = Descriptor.from_dict({"mediaType": mt.OCI_MANIFEST, "digest": d(5), "size": 42,
                                 "artifactType": "application/vnd.example+json"})
    assert desc == Descriptor(mt.OCI_MANIFEST, d(5), 42, None, {}, "application/vnd.example+json")
    assert Descriptor.from_dict({"digest": d(5), "size": "42"}).size is None
    assert Descriptor.from_dict({}).media_type == ""


# -- schema 1 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_schema1_signed_detected_from_body(content_type):
    m = parse(SCHEMA1_SIGNED, content_type)
    assert m.media_type == mt.DOCKER_SCHEMA1_SIGNED
    assert m.media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    assert m.is_schema1
    assert not m.is_index
    assert m.layer_size is None
    assert m.config is None
    assert m.size == len(SCHEMA1_SIGNED)


def test_schema1_unsigned_detected_from_body():
    data = json.loads(SCHEMA1_SIGNED)
    del data["signatures"]
    m = parse(json.dumps(data).encode())
    assert m.media_type == mt.DOCKER_SCHEMA1
    assert m.layer_size is None


# -- media type detection -------------------------------------------------------------------------


def test_no_media_type_field_taken_from_content_type():
    m = parse(NO_MEDIA_TYPE_MANIFEST, mt.DOCKER_MANIFEST + "; charset=utf-8")
    assert m.media_type == mt.DOCKER_MANIFEST
    assert m.layer_size == 20


@pytest.mark.parametrize("content_type", [None, "", "application/json",
                                          "application/octet-stream"])
def test_no_media_type_field_detected_from_shape(content_type):
    assert parse(NO_MEDIA_TYPE_MANIFEST, content_type).media_type == mt.OCI_MANIFEST
    index = parse(NO_MEDIA_TYPE_INDEX, content_type)
    assert index.media_type == mt.OCI_INDEX
    assert index.is_index
    assert [x.digest for x in index.manifests] == [d(60)]


def test_media_type_field_wins_over_content_type():
    assert parse(OCI_MANIFEST, mt.DOCKER_MANIFEST).media_type == mt.OCI_MANIFEST


def test_detect_media_type_unknown_shape():
    assert detect_media_type({"hello": 1}, None) == "application/octet-stream"
    assert detect_media_type({"hello": 1}, "application/json") == "application/json"


# -- not manifests --------------------------------------------------------------------------------


def test_html_page_raises_invalid_response_with_first_bytes():
    html = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>" + b"x" * 500
    with pytest.raises(InvalidResponse) as info:
        parse(html, "text/html; charset=utf-8")
    message = str(info.value)
    assert "<!DOCTYPE html><html><head><title>Sign in" in message
    assert "team/app:latest" in message
    assert "text/html" in message
    assert "x" * 100 not in message
    assert isinstance(info.value, RegistryError)


@pytest.mark.parametrize("raw", [b"", b"[1, 2]", b'"text"', b"\xff\xfe\x00garbage", b"null"])
def test_non_object_bodies_raise(raw):
    with pytest.raises(InvalidResponse):
        parse(raw)


# -- platforms ------------------------------------------------------------------------------------


def test_platform_parse_and_str():
    p = Platform.parse("linux/arm64/v8")
    assert p == Platform("linux", "arm64", "v8")
    assert (p.os, p.architecture, p.variant) == ("linux", "arm64", "v8")
    assert str(p) == "linux/arm64/v8"
    q = Platform.parse("linux/amd64")
    assert q.variant is None
    assert str(q) == "linux/amd64"


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux//v8", "a/b/c/d", ""])
def test_platform_parse_malformed(text):
    with pytest.raises(ValueError) as info:
        Platform.parse(text)
    assert repr(text) in str(info.value)


def test_platform_from_dict():
    assert Platform.from_dict(None) is None
    assert Platform.from_dict({}) is None
    assert Platform.from_dict({"os": "linux", "architecture": "arm", "variant": "v7"}) == Platform(
        "linux", "arm", "v7")
    assert Platform.from_dict({"os": "linux"}) == Platform("linux", "unknown")
    no_variant = Platform.from_dict({"os": "linux", "architecture": "amd64", "variant": ""})
    assert no_variant is not None
    assert no_variant.variant is None


# -- timestamps -----------------------------------------------------------------------------------


def test_timestamp_z():
    ts = parse_timestamp("2024-01-02T03:04:05Z")
    assert ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert ts.utcoffset() == timedelta(0)


def test_timestamp_offset_converted_to_utc():
    ts = parse_timestamp("2024-01-02T05:04:05+02:00")
    assert ts == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert ts.tzinfo == timezone.utc
    assert ts.hour == 3


def test_timestamp_negative_offset_crosses_midnight():
    ts = parse_timestamp("2024-01-01T22:30:00-05:00")
    assert (ts.day, ts.hour, ts.minute) == (2, 3, 30)
    assert ts.tzinfo == timezone.utc


def test_timestamp_nanoseconds():
    ts = parse_timestamp("2024-01-02T03:04:05.123456789Z")
    assert ts == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


def test_timestamp_nanoseconds_with_offset():
    ts = parse_timestamp("2024-01-02T04:04:05.987654321+01:00")
    assert ts == datetime(2024, 1, 2, 3, 4, 5, 987654, tzinfo=timezone.utc)


def test_timestamp_milliseconds_and_lower_case_z():
    ts = parse_timestamp("2024-01-02T03:04:05.5z")
    assert ts == datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)


def test_timestamp_without_zone_taken_as_utc():
    assert parse_timestamp("2024-01-02T03:04:05") == datetime(2024, 1, 2, 3, 4, 5,
                                                              tzinfo=timezone.utc)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "1677-09-21T00:12:43Z",
                                   "2262-04-12T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_times_outside_the_frames_range_are_unknown(value):
    # Go's zero time (cosign, crane append) and anything datetime64[ns] cannot hold
    assert parse_timestamp(value) is None


def test_times_at_the_edges_of_the_range_are_kept():
    assert parse_timestamp("1677-09-22T00:00:00Z") == datetime(1677, 9, 22, tzinfo=timezone.utc)
    assert parse_timestamp("2262-04-10T00:00:00Z") == datetime(2262, 4, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", [None, "", "   ", "yesterday", "2024-13-01T00:00:00Z",
                                   "2024-01-02T25:00:00Z", 1704164645, 1.5, b"2024-01-02", {}])
def test_timestamp_missing_or_garbage(value):
    assert parse_timestamp(value) is None


def test_timestamp_out_of_range_after_conversion_is_none():
    assert parse_timestamp("0001-01-01T00:00:00+02:00") is None


# -- content kinds (issue 11) -----------------------------------------------------------------
from registry_insights.registry.models import (  # noqa: E402
    manifest_digest,
    schema1_config,
    schema1_payload,
)
from registry_insights.registry.walk import accessory_subject  # noqa: E402


@pytest.mark.parametrize(("written", "normal"), [
    ("linux/arm64/v8", "linux/arm64"), ("linux/aarch64", "linux/arm64"),
    ("linux/arm", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"), ("linux/arm/7", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"), ("linux/x86_64", "linux/amd64"),
    ("linux/amd64/v1", "linux/amd64"), ("linux/amd64/v3", "linux/amd64/v3"),
    ("Linux/AMD64", "linux/amd64"), ("linux/i386", "linux/386"), ("windows/amd64", "windows/amd64"),
])
def test_platforms_are_normalised_as_containerd_does(written, normal):
    assert str(Platform.parse(written).normalized()) == normal


@pytest.mark.parametrize("platform", [{"os": 1, "architecture": "amd64"},
                                      {"os": "linux", "architecture": ["arm64"]},
                                      {"os": "linux", "architecture": "arm", "variant": ["v7"]},
                                      {"os": None, "architecture": {"x": 1}}])
def test_hostile_platform_fields_are_unknown(platform):
    parsed = Platform.from_dict(platform)
    assert all(isinstance(p, str) for p in (parsed.os, parsed.architecture))
    assert parsed.variant is None or isinstance(parsed.variant, str)
    assert Platform.from_dict(["not", "a", "dict"]) is None


def test_descriptors_with_urls_or_foreign_types_are_foreign():
    base = {"digest": "sha256:" + "a" * 64, "size": 5}
    assert Descriptor.from_dict({**base, "mediaType": mt.DOCKER_FOREIGN_LAYER}).is_foreign
    assert Descriptor.from_dict({
        **base, "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "urls": ["https://x"]}).is_foreign
    assert Descriptor.from_dict({**base, "mediaType": mt.OCI_LAYER_GZIP,
                                 "urls": ["https://x"]}).is_foreign
    assert not Descriptor.from_dict({**base, "mediaType": mt.OCI_LAYER_GZIP}).is_foreign
    assert Descriptor.from_dict({**base, "size": True, "mediaType": 3}).size is None


def test_accessory_tags_name_their_subject():
    hex64 = "0123456789abcdef" * 4
    for suffix in ("", ".sig", ".att", ".sbom"):
        assert accessory_subject(f"sha256-{hex64}{suffix}") == f"sha256:{hex64}"
    for tag in ("sha256-abc.sig", f"sha256-{hex64}.zip", "latest", f"sha512-{hex64}"):
        assert accessory_subject(tag) is None


def test_schema1_payload_leaves_the_signatures_out():
    payload = b'{\n   "schemaVersion": 1,\n   "history": [{"v1Compatibility": ' \
        b'"{\\"created\\": \\"2016-05-04T03:02:01Z\\", \\"os\\": \\"linux\\"}"}]\n}'
    def enc(data: bytes) -> str:
        return b64.urlsafe_b64encode(data).decode().rstrip("=")

    length = len(payload) - 2
    protected = enc(json.dumps({"formatLength": length, "formatTail": enc(b"\n}")}).encode())
    block = json.dumps([{"protected": protected, "signature": "x"}]).encode()
    signed = payload[:length] + b',\n   "signatures": ' + block + b"\n}"
    assert schema1_payload(signed) == payload
    assert manifest_digest(signed) == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert manifest_digest(payload) == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert schema1_payload(b'{"signatures": [{"protected": "!!"}]}') is None
    assert schema1_config(json.loads(payload))["created"] == "2016-05-04T03:02:01Z"
    assert schema1_config({"history": "no"}) == {}
