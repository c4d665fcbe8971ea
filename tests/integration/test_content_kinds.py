"""What real registries hold besides plain images, pushed to the real registry (Debian's
docker-registry, CNCF Distribution 2.8.2): unreadable tags, out-of-range times, hostile configs,
signed schema 1 manifests. The demo-fleet kinds (signatures, SBOM, Helm charts, nested index,
foreign layer) are checked in test_inventory.py and test_pull.py."""

from __future__ import annotations

import base64
import json
import logging
import shutil

import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL, storage_summary
from registry_insights.cli import main
from registry_insights.frames.schema import ERRORS_SCHEMA, TAGS_SCHEMA
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.names import sha256_digest
from registry_insights.testing.demo import FleetBuilder
from registry_insights.testing.server import RegistryServer
from tests.support.registries import libtrust_key_id

pytestmark = pytest.mark.integration


def build(client, repository, tags, seed=1, multiarch=False):
    fleet = FleetBuilder(client, seed)
    platforms = {"linux/amd64": [fleet.layer(3_000, f"{repository}-{seed}")]}
    if multiarch:
        platforms["linux/arm64"] = [fleet.layer(2_500, f"{repository}-arm-{seed}")]
    return fleet.build(repository, tags, platforms, f"2026-01-{seed:02d}T00:00:00Z", oci=True)


def push_with_config(client, repository, tag, config: dict) -> str:
    """Push a one-layer OCI image whose config is ``config`` as given."""
    fleet = FleetBuilder(client, 5)
    layer = fleet.layer(2_000, f"{repository}-{tag}")
    raw_config = json.dumps(config).encode()
    fleet.push_blobs(repository, [(sha256_digest(raw_config), raw_config),
                                  (layer.digest, layer.data)])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(raw_config),
                   "size": len(raw_config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": layer.digest,
                    "size": layer.size}]}).encode()
    return client.put_manifest(repository, tag, manifest, mt.OCI_MANIFEST)


def test_anonymous_one_unreadable_tag_never_sinks_the_walk(make_registry, caplog, capsys,
                                                           tmp_path):
    handle = make_registry("anonymous")
    server = handle.server
    repo = "iso/app"
    with ri.RegistryClient(handle.url, cache=None) as client:
        build(client, repo, ["ok"], seed=1)
        gone = build(client, repo, ["gone"], seed=2)
        index = build(client, repo, ["multi"], seed=3, multiarch=True)
        children = [d.digest for d in client.manifest(repo, index).manifests]
        client.upload_blob("iso/blobs-only", b"a blob, no manifest")  # catalog: yes; tags: no
        # a dangling tag: its revision is gone (what a delete during the walk leaves)
        revisions = server.storage_dir / "docker/registry/v2/repositories" / repo / \
            "_manifests/revisions/sha256"
        shutil.rmtree(revisions / gone.split(":")[1])
        # Distribution 2.8.2's --delete-untagged removes the platform manifests of tagged
        # indexes: "multi" now lists two manifests that answer MANIFEST_UNKNOWN
        server.garbage_collect(delete_untagged=True)
        assert "iso/blobs-only" in client.repositories()

        with caplog.at_level(logging.WARNING, logger="registry_insights"):
            inv = ri.fetch_inventory(client, progress=False)
        errors = inv.errors
        assert {c: str(t) for c, t in errors.dtypes.items()} == ERRORS_SCHEMA
        got = sorted(zip(errors["repository"], errors["tag"].fillna("-"),
                         errors["reference"].fillna("-"), errors["status"].fillna(0),
                         errors["code"]))
        assert got == sorted([
            ("iso/app", "gone", "gone", 404, "MANIFEST_UNKNOWN"),
            *(("iso/app", "multi", child, 404, "MANIFEST_UNKNOWN") for child in children),
            ("iso/blobs-only", "-", "-", 404, "NAME_UNKNOWN"),
        ])
        assert inv.unread_tags == 2
        assert "2 tag(s) and 1 repositor(y/ies)" in caplog.text
        tags = inv.tags(attestations=True)
        assert sorted(set(tags["tag"])) == ["multi", "ok"]
        complete = dict(zip(tags["tag"], tags["complete"]))
        assert complete == {"ok": True, "multi": False}
        # what is left on disk is what the frames count
        summary = storage_summary(tags, inv.layers(attestations=True), inv.repositories)
        assert summary.loc[summary["repository"] == TOTAL, "unique_bytes"].iloc[0] == \
            server.blob_bytes()
        # retention never plans from what it could not read
        plan = ri.retention_plan(tags, delete_regex=".*")
        actions = dict(zip(plan["tag"], plan["action"]))
        assert actions == {"ok": "delete", "multi": "keep"}
        assert "could not be read" in plan.loc[plan["tag"] == "multi", "reason"].iloc[0]
        # one tag asked for alone still raises
        with pytest.raises(ri.NotFound):
            client.tag_details(repo, "gone")
    # the report and the CLI say what could not be read
    assert main(["report", handle.url, "--no-cache", "-o", str(tmp_path / "report")]) == 0
    assert "note: 2 tag(s) and 1 repositor(y/ies) could not be read" in capsys.readouterr().err
    unread = pd.read_csv(tmp_path / "report" / "errors.csv")
    assert len(unread) == 4 and set(unread["code"]) == {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
    page = (tmp_path / "report" / "report.html").read_text()
    assert 'id="could-not-read"' in page and '<strong id="unread-tags">2</strong>' in page


def test_basic_wrong_password_still_raises(basic_registry):
    with ri.RegistryClient(basic_registry.url, username=basic_registry.username,
                           password="not-the-password", cache=None) as client:
        with pytest.raises(ri.Unauthorized):
            ri.fetch_inventory(client, ["any/repo"], progress=False)


def test_anonymous_out_of_range_times_and_hostile_configs_are_unknown(anonymous_registry):
    repo = "kinds/hostile"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        push_with_config(client, repo, "zero", {
            "architecture": "amd64", "os": "linux", "created": "0001-01-01T00:00:00Z",
            "rootfs": {"type": "layers"}})
        push_with_config(client, repo, "far", {
            "architecture": "amd64", "os": "linux", "created": "9999-12-31T23:59:59Z"})
        push_with_config(client, repo, "hostile", {
            "architecture": {"x": 1}, "os": 1, "variant": ["v7"],
            "created": 1704164645, "rootfs": "no"})
        push_with_config(client, repo, "fine", {
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "created": "2026-01-02T03:04:05.123456789Z"})
        tags = ri.tags_frame(client, [repo], progress=False)
        assert {c: str(t) for c, t in tags.dtypes.items()} == TAGS_SCHEMA
        rows = tags.set_index("tag")
        for tag in ("zero", "far", "hostile"):
            assert pd.isna(rows.loc[tag, "created_at"])
            assert client.tag_details(repo, tag).created_at is None
        assert rows.loc["fine", "created_at"] == pd.Timestamp("2026-01-02T03:04:05.123456789Z")
        assert rows.loc["hostile", "platform"] == "unknown/unknown"
        assert rows.loc[["hostile"], ["os", "architecture", "variant"]].isna().all().all()
        assert rows.loc["fine", "platform"] == "linux/arm64"  # arm64/v8 is arm64
        assert rows.loc["fine", "variant"] == "v8"  # the config as written
        # everything downstream runs
        plan = ri.retention_plan(tags, keep_last=1)
        assert set(plan.loc[plan["action"] == "delete", "tag"]) == set()  # unknown ages kept
        summary = ri.storage_summary(tags, ri.layers_frame(client, [repo], progress=False))
        assert summary.loc[summary["repository"] == TOTAL, "tags"].iloc[0] == 4


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_schema1(repository: str, tag: str, blob: str, created: str) -> bytes:
    """A libtrust-signed ("pretty" JWS) Docker schema 1 manifest, as docker 1.x pushed."""
    payload = json.dumps({
        "schemaVersion": 1, "name": repository, "tag": tag, "architecture": "amd64",
        "fsLayers": [{"blobSum": blob}],
        "history": [{"v1Compatibility": json.dumps({
            "id": "a" * 64, "created": created, "os": "linux", "architecture": "amd64"})}],
    }, indent=3).encode()
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {"crv": "P-256", "kid": libtrust_key_id(key.public_key()), "kty": "EC",
           "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}
    length = len(payload) - 2  # the closing "\n}" is the format tail
    protected = _b64(json.dumps({"formatLength": length, "formatTail": _b64(payload[length:]),
                                 "time": "2026-01-01T00:00:00Z"}).encode())
    r, s = decode_dss_signature(key.sign(f"{protected}.{_b64(payload)}".encode(),
                                         ec.ECDSA(hashes.SHA256())))
    signature = [{"header": {"jwk": jwk, "alg": "ES256"},
                  "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
                  "protected": protected}]
    return (payload[:length] + b',\n   "signatures": ' + json.dumps(signature).encode()
            + payload[length:])


class Schema1Registry(RegistryServer):
    """Distribution 2.8 refuses schema 1 pushes unless ``compatibility.schema1.enabled``."""

    def config(self):
        return {**super().config(), "compatibility": {"schema1": {"enabled": True}}}


def test_anonymous_signed_schema1_digest_and_created():
    repo = "kinds/schema1"
    with Schema1Registry() as server, ri.RegistryClient(server.url, cache=None) as client:
        blob = client.upload_blob(repo, b"layer bytes of a schema 1 image")
        raw = signed_schema1(repo, "old", blob, "2016-05-04T03:02:01.123456789Z")
        payload_digest = sha256_digest(raw[:raw.index(b',\n   "signatures"')] + b"\n}")
        assert payload_digest != sha256_digest(raw)
        client._transport.request(
            "upload", "PUT", f"/v2/{repo}/manifests/old", scopes=(f"repository:{repo}:push",),
            ok=(201,), cache=False, data=raw, headers={"Content-Type": mt.DOCKER_SCHEMA1_SIGNED})
        manifest = client.manifest(repo, "old")
        assert manifest.is_schema1 and manifest.digest == payload_digest
        assert client.manifest(repo, payload_digest).digest == payload_digest
        details = client.tag_details(repo, "old")
        assert details.digest == payload_digest
        assert details.created_at == pd.Timestamp("2016-05-04T03:02:01.123456Z").to_pydatetime()
        tags = ri.tags_frame(client, [repo], progress=False)
        row = tags.iloc[0]
        assert row["digest"] == payload_digest and row["platform"] == "linux/amd64"
        assert row["created_at"] == pd.Timestamp("2016-05-04T03:02:01.123456789Z")
