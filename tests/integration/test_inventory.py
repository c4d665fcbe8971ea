"""Frames and the CSV report on the demo registry, checked against what the seeding wrote and
against the registry's storage directory."""

from __future__ import annotations

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL, storage_summary
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, empty
from registry_insights.registry import mediatypes as mt
from registry_insights.report.build import write_report
from registry_insights.testing.demo import (
    CHART_REPOSITORY,
    EMPTY_REPOSITORY,
    SUPPLY_REPOSITORY,
)

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
    assert len(per_repo) == 14
    # the foreign base layer (100 MiB) is named, never stored
    assert total["foreign_bytes"] == 100 << 20


def test_frames_follow_the_schema_and_fleet_shape(demo_registry, walked):
    client, inv = walked
    tags = inv.tags()
    assert list(tags.columns) == list(TAGS_SCHEMA)
    assert {c: str(t) for c, t in tags.dtypes.items()} == TAGS_SCHEMA
    assert str(tags["created_at"].dtype) == "datetime64[ns, UTC]"
    images = tags[tags["is_image"]]
    assert set(tags.loc[~tags["is_image"], "repository"]) == {SUPPLY_REPOSITORY,
                                                              CHART_REPOSITORY}
    assert (tags.groupby(["repository", "tag", "platform"]).size() == 1).all()
    assert set(images["platform"]) == {"linux/amd64", "linux/arm64", "linux/arm/v7",
                                       "windows/amd64"}
    multi = tags.groupby(["repository", "tag"])["platform"].nunique()
    assert (multi == 2).sum() > 20
    # several tags share one digest
    assert (tags.groupby(["repository", "digest"])["tag"].nunique() >= 2).sum() >= 16
    # reproducible builds keep their epoch date; they are not NaT
    epoch = tags[tags["created_at"] == pd.Timestamp("1970-01-01", tz="UTC")]
    assert set(epoch["repository"]) == {"tools/ci-runner"}
    with_attestations = inv.tags(attestations=True)
    extra = with_attestations[~with_attestations["is_image"]]
    extra = extra[extra["repository"] == "storefront/web"]
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


def test_demo_content_kinds_are_counted_as_stored(demo_registry, walked):
    """Nested index, platform spellings, foreign layer, Helm charts, SBOM, signatures: each
    row as the registry holds it (the disk test above covers their bytes)."""
    client, inv = walked
    tags = inv.tags(attestations=True)
    supply = tags[tags["repository"] == SUPPLY_REPOSITORY]
    # an index listing an index: every platform image, the inner index as its own row
    multi = supply[supply["tag"] == "multi"]
    top = client.manifest(SUPPLY_REPOSITORY, "multi")
    inner = top.manifests[0].digest
    assert sorted(multi.loc[multi["is_image"], "platform"]) == [
        "linux/amd64", "linux/arm/v7", "linux/arm64"]  # arm64/v8 = arm64, arm = arm/v7
    nested = multi[~multi["is_image"]]
    assert nested["manifest_digest"].tolist() == [inner]
    assert nested["manifest_media_type"].tolist() == [mt.OCI_INDEX]
    assert set(multi.loc[multi["is_image"], "parent_digest"]) == {inner, top.digest}
    assert (multi.loc[multi["is_image"], "layer_size"] > 0).all()
    assert not tags["platform"].str.contains("/v8").any()
    # the foreign layer: in the layers frame, flagged, and not stored
    layers = inv.layers(attestations=True)
    foreign = layers[layers["foreign"]]
    assert foreign["size"].tolist() == [100 << 20]
    assert not demo_registry.server.storage_dir.joinpath(
        "docker/registry/v2/blobs/sha256", foreign["layer_digest"].iloc[0][7:9],
        foreign["layer_digest"].iloc[0][7:]).exists()
    summary = storage_summary(tags, layers, inv.repositories).set_index("repository")
    assert summary.loc[SUPPLY_REPOSITORY, "foreign_bytes"] == 100 << 20
    assert summary.loc[SUPPLY_REPOSITORY, "unique_bytes"] < 10 << 20
    # Helm charts: artifacts, not images, dated by their annotation
    charts = tags[tags["repository"] == CHART_REPOSITORY]
    assert len(charts) == 4 and not charts["is_image"].any()
    assert set(charts["artifact_type"]) == {mt.HELM_CONFIG}
    assert charts["created_at"].notna().all()
    assert summary.loc[CHART_REPOSITORY, "tags"] == 4
    # signatures and the SBOM: accessories linked to their subject
    signatures = supply[supply["tag"].str.endswith(".sig")]
    assert len(signatures) == 7 and not signatures["is_image"].any()
    assert (signatures["subject"] == "sha256:" + signatures["tag"].str[7:71]).all()
    assert set(signatures["subject"]) == set(
        supply.loc[supply["tag"].str.fullmatch(r"2\.\d\.0"), "digest"])
    assert signatures["created_at"].isna().all()  # cosign's 0001-01-01: unknown, not a crash
    sbom = supply[supply["artifact_type"] == "application/spdx+json"]
    assert len(sbom) == 1 and sbom["subject"].iloc[0] == supply.loc[
        supply["tag"] == "2.6.0", "digest"].iloc[0]
    assert sbom["created_at"].notna().all()
    # the report says how each kind is counted, and that everything was read
    kinds = ri.analysis.storage.content_kinds(tags, layers).set_index("kind")
    assert {"image", "artifact", "accessory", "nested index", "foreign layer"} <= set(
        kinds.index)
    assert kinds.loc["foreign layer", "bytes"] == 100 << 20
    assert len(inv.errors) == 0


def test_demo_accessories_follow_their_subject(walked):
    _client, inv = walked
    tags = inv.tags(attestations=True)
    plan = ri.retention_plan(tags[tags["repository"] == SUPPLY_REPOSITORY], keep_last=2)
    rows = plan.set_index("tag")
    builds = rows[rows.index.str.fullmatch(r"2\.\d\.0")]
    doomed = set(builds.loc[builds["action"] == "delete", "digest"])
    assert len(doomed) >= 4
    accessories = rows[rows["subject"].notna()]
    assert len(accessories) == 8 and accessories["rank"].isna().all()
    for tag, row in accessories.iterrows():
        expected = "delete" if row["subject"] in doomed else "keep"
        assert row["action"] == expected, (tag, row["reason"])
    # the plan deletes each signature with its image, and the GC frees its bytes too
    reclaim = ri.reclaimable(tags, inv.layers(attestations=True), plan)
    gone = ri.reclaim.deleted_manifests(tags, plan)
    sig_digests = set(accessories.loc[accessories["action"] == "delete", "digest"])
    assert {(SUPPLY_REPOSITORY, d) for d in sig_digests} <= gone
    assert len(sig_digests) == len(doomed)  # no signature left behind as an orphan
    assert reclaim.loc[reclaim["repository"] == SUPPLY_REPOSITORY,
                       "deleted_tags"].iloc[0] == (plan["action"] == "delete").sum()
