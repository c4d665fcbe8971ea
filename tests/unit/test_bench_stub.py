"""The benchmarks' in-memory registry stub (benchmarks/registry_stub.py) serves what a walk
needs, exactly once per request the protocol requires, and answers like Distribution."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

import registry_insights as ri
from registry_insights.registry.names import sha256_digest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import registry_stub as stub  # noqa: E402


@pytest.fixture
def fleet():
    # 3 repositories x 4 tags (3 builds + latest); the second build an index; pages of 2
    installed = stub.install(3, 4, seed=7, index_every=2, catalog_page=2, tags_page=2)
    yield installed
    stub.uninstall()


def test_a_walk_through_the_stub_sends_the_protocol_minimum(fleet):
    with ri.RegistryClient(stub.STUB_URL, cache=None, max_workers=2) as client:
        inventory = ri.fetch_inventory(client, progress=False)
        counts = dict(client.request_counts)
    expected = {"ping": 1, "catalog": 2, "tags": 6, "manifest": 3 * 4 + 3 * 2, "blob": 3 * 4}
    assert fleet.minimum_requests() == expected
    assert counts == expected
    assert stub.served() == {"GET ping": 1, "GET catalog": 2, "GET tags": 6,
                             "GET manifest": 18, "GET blob": 12}
    tags = inventory.tags()
    assert len(inventory.errors) == 0
    assert sorted(tags["repository"].unique()) == fleet.repositories
    assert len(tags) == 3 * 5  # 3 images + latest (= the last build), 1 index of 2 each
    assert sorted(tags["platform"].unique()) == ["linux/amd64", "linux/arm64"]
    latest = tags[tags["tag"] == "latest"].set_index("repository")["digest"]
    for name in fleet.repositories:
        assert latest[name] == fleet.tags[name]["latest"]
    assert tags["config_digest"].nunique() == 12


def test_the_stubs_answers_go_through_the_http_cache(fleet, tmp_path):
    with ri.RegistryClient(stub.STUB_URL, cache=tmp_path, max_workers=2) as client:
        cold = ri.fetch_inventory(client, progress=False).tags()
        assert sum(client.request_counts.values()) == 39
    stub.reset_served()
    with ri.RegistryClient(stub.STUB_URL, cache=tmp_path, max_workers=2) as again:
        warm = ri.fetch_inventory(again, progress=False).tags()
        assert sum(again.request_counts.values()) == 0
    assert stub.served() == {}
    pd.testing.assert_frame_equal(warm, cold)


def test_the_stub_answers_like_distribution(fleet):
    name = fleet.repositories[0]
    session = requests.Session()
    page = session.get(f"{stub.STUB_URL}/v2/{name}/tags/list")
    assert page.json() == {"name": name, "tags": sorted(fleet.tags[name])[:2]}
    assert page.links["next"]["url"].startswith(f"/v2/{name}/tags/list?last=")
    digest = fleet.tags[name]["latest"]
    manifest = session.get(f"{stub.STUB_URL}/v2/{name}/manifests/latest")
    assert manifest.headers["Docker-Content-Digest"] == digest
    assert manifest.headers["ETag"] == f'"{digest}"'
    assert sha256_digest(manifest.content) == digest
    again = session.get(f"{stub.STUB_URL}/v2/{name}/manifests/latest",
                        headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304 and again.content == b""
    head = session.head(f"{stub.STUB_URL}/v2/{name}/manifests/{digest}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(
        manifest.content)
    missing = session.get(f"{stub.STUB_URL}/v2/nothing/here/tags/list")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert session.get(f"{stub.STUB_URL}/v2/{name}/blobs/sha256:{'0' * 64}").status_code == 404


def test_the_fleet_is_the_same_for_the_same_seed():
    one, two = stub.Fleet(2, 3, seed=5), stub.Fleet(2, 3, seed=5)
    assert one.tags == two.tags and one.blobs == two.blobs
    assert stub.Fleet(2, 3, seed=6).tags != one.tags
    with pytest.raises(ValueError, match="0 x 3"):
        stub.Fleet(0, 3)
