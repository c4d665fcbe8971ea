"""Frames and the CSV report on the demo registry, checked against what the seeding wrote and
against the registry's storage directory."""

from __future__ import annotations

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL, storage_summary
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, empty
from registry_insights.report.build import write_report
from registry_insights.testing.demo import EMPTY_REPOSITORY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def walked(demo_registry, tmp_path_factory):
    client = demo_registry.client(cache=tmp_path_factory.mktemp("cache"))
    inv = ri.fetch_inventory(client, progress=False)
    yield client, inv
    client.close()


def test_tags_csv_matches_what_the_seeding_wrote(demo_registry, walked, tmp_path):
    _client, inv = walked
    report = write_report(inv, tmp_path)
    csv = pd.read_csv(report.files["tags"], dtype=str)
    seeded = pd.DataFrame([vars(i) for i in demo_registry.images])
    assert len(csv) == len(seeded) > 300
    merged = seeded.merge(csv, on=["repository", "tag", "platform"], how="outer",
                          suffixes=("_seed", "_csv"), indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["digest_seed"] == merged["digest_csv"]).all()
    assert (merged["manifest_digest_seed"] == merged["manifest_digest_csv"]).all()
    assert (merged["layer_size_seed"].astype(int) == merged["layer_size_csv"].astype(int)).all()
    written = pd.to_datetime(merged["created"], utc=True, format="ISO8601")
    read = pd.to_datetime(merged["created_at"], utc=True, format="ISO8601")
    assert (written == read).all()
    # nanoseconds and offsets survive; times are written in UTC with Z
    assert csv["created_at"].str.endswith("Z").all()
    assert csv["created_at"].str.match(r".*\.\d{9}Z$").any()
    # configs (Env, build arguments: where secrets hide) stay out of a report meant to be shared
    assert "config" not in csv.columns and "PATH=" not in report.files["tags"].read_text()
    assert (csv["os"] == "linux").any() and csv["config_digest"].str.startswith("sha256:").all()


def test_unique_bytes_equal_the_blob_files_on_disk(demo_registry, walked):
    _client, inv = walked
    summary = storage_summary(inv.tags(attestations=True), inv.layers(attestations=True),
                              inv.repositories)
    total = summary[summary["repository"] == TOTAL].iloc[0]
    on_disk = demo_registry.server.blob_bytes()
    assert total["unique_bytes"] == on_disk
    assert total["layer_bytes"] + total["config_bytes"] + total["manifest_bytes"] == on_disk
    per_repo = summary[summary["repository"] != TOTAL]
    assert per_repo["exclusive_bytes"].sum() + total["shared_bytes"] == on_disk
    assert (per_repo["unique_bytes"] == per_repo["exclusive_bytes"]
            + per_repo["shared_bytes"]).all()
    assert total["logical_bytes"] > 10 * total["unique_bytes"]  # the naive sum misleads
    empty_row = per_repo[per_repo["repository"] == EMPTY_REPOSITORY].iloc[0]
    assert empty_row["tags"] == 0 and empty_row["unique_bytes"] == 0
    assert len(per_repo) == 12


def test_frames_follow_the_schema_and_fleet_shape(demo_registry, walked):
    client, inv = walked
    tags = inv.tags()
    assert list(tags.columns) == list(TAGS_SCHEMA)
    assert {c: str(t) for c, t in tags.dtypes.items()} == TAGS_SCHEMA
    assert str(tags["created_at"].dtype) == "datetime64[ns, UTC]"
    assert tags["is_image"].all()
    assert (tags.groupby(["repository", "tag", "platform"]).size() == 1).all()
    assert set(tags["platform"]) == {"linux/amd64", "linux/arm64"}
    multi = tags.groupby(["repository", "tag"])["platform"].nunique()
    assert (multi == 2).sum() > 20
    # several tags share one digest
    assert (tags.groupby(["repository", "digest"])["tag"].nunique() >= 2).sum() >= 16
    # reproducible builds keep their epoch date; they are not NaT
    epoch = tags[tags["created_at"] == pd.Timestamp("1970-01-01", tz="UTC")]
    assert set(epoch["repository"]) == {"tools/ci-runner"}
    with_attestations = inv.tags(attestations=True)
    extra = with_attestations[~with_attestations["is_image"]]
    assert len(extra) == 5 and set(extra["platform"]) == {"unknown/unknown"}
    layers = inv.layers()
    assert list(layers.columns) == list(LAYERS_SCHEMA)
    sums = layers.groupby(["repository", "tag", "platform"])["size"].sum()
    joined = tags.set_index(["repository", "tag", "platform"])["layer_size"]
    assert (sums.sort_index() == joined.sort_index()).all()


def test_layers_frame_after_tags_frame_is_served_from_cache(demo_registry, tmp_path):
    client = demo_registry.client(cache=tmp_path / "cache")
    repos = ["payments/api", "storefront/web"]
    ri.tags_frame(client, repositories=repos, progress=False)
    before = dict(client.request_counts)
    layers = ri.layers_frame(client, repositories=repos, progress=False)
    assert dict(client.request_counts) == before
    assert len(layers) > 100
    client.close()


def test_empty_frames_keep_columns_and_dtypes():
    for schema in (TAGS_SCHEMA, LAYERS_SCHEMA):
        frame = empty(schema)
        assert len(frame) == 0
        assert {c: str(t) for c, t in frame.dtypes.items()} == schema
    summary = storage_summary(empty(TAGS_SCHEMA), empty(LAYERS_SCHEMA))
    assert summary["repository"].tolist() == [TOTAL]
    assert summary["unique_bytes"].tolist() == [0]
