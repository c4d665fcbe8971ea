"""The snapshot store (Parquet + JSON manifest), diff and measured growth on small frames."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis import trends
from registry_insights.analysis.history import (
    BLOB_CHANGES_SCHEMA,
    MEASURED_GROWTH_SCHEMA,
    REPOSITORY_CHANGES_SCHEMA,
    TAG_CHANGES_SCHEMA,
    diff,
    measured_growth,
)
from registry_insights.analysis.storage import TOTAL
from registry_insights.frames import history as store
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, empty
from tests.unit.test_trends import frames, image

REGISTRY = "https://registry.test"


def fleet(*extra):
    """app:v1 + app:latest (m1), app:v2 (m2), tool:1 (m3, sharing app's base layer)."""
    parts = [
        image("app", "v1", "m1", "2024-01-10T00:00:00Z", [("sha256:base", 1000),
                                                        ("sha256:a1", 500)]),
        image("app", "latest", "m1", "2024-01-10T00:00:00Z", [("sha256:base", 1000),
                                                            ("sha256:a1", 500)]),
        image("app", "v2", "m2", "2024-02-10T00:00:00Z", [("sha256:base", 1000),
                                                        ("sha256:a2", 700)]),
        image("tool", "1", "m3", "2024-02-11T00:00:00Z", [("sha256:base", 1000),
                                                        ("sha256:t1", 300)]),
        *extra,
    ]
    tags, layers = frames(*parts)
    tags["registry"] = REGISTRY
    tags["config"] = [{"architecture": "amd64", "created": str(c)} for c in tags["created_at"]]
    return tags, layers


def write(root, tags, layers, when, repositories=("app", "tool")):
    from registry_insights.report.history import totals_of

    return store.write_snapshot(root, registry=REGISTRY, tags=tags, layers=layers,
                                repositories=repositories,
                                totals=totals_of(tags, layers, repositories),
                                tool_version="test", taken_at=when)


def test_snapshot_round_trip_keeps_schemas_configs_and_totals(tmp_path):
    tags, layers = fleet()
    written = write(tmp_path, tags, layers, "2024-03-01T10:00:00.123456789Z")
    assert written.path.parent == tmp_path and written.path.name == written.snapshot_id
    assert written.snapshot_id.startswith("20240301T100000.123456Z-")
    assert sorted(p.name for p in written.path.iterdir()) == [
        "configs.parquet", "layers.parquet", "snapshot.json", "tags.parquet"]
    # distinct blobs: m1 m2 m3 (100 each) + configs (10 each) + base a1 a2 t1
    assert written.totals["stored_bytes"] == 3 * 100 + 3 * 10 + 1000 + 500 + 700 + 300
    assert written.totals["tags"] == 4 and written.totals["images"] == 3
    assert written.totals["repositories"] == 2 and written.totals["disk_bytes"] is None

    loaded = ri.load_snapshot(tmp_path, written.snapshot_id[:24])  # a unique prefix works
    assert loaded.taken_at == pd.Timestamp("2024-03-01T10:00:00.123456789Z")
    assert dict(loaded.tags.dtypes.astype(str)) == TAGS_SCHEMA
    assert dict(loaded.layers.dtypes.astype(str)) == LAYERS_SCHEMA
    pd.testing.assert_frame_equal(loaded.tags.drop(columns="config"),
                                  written.tags.drop(columns="config"))
    pd.testing.assert_frame_equal(loaded.layers, written.layers)
    assert loaded.tags["config"].tolist() == tags["config"].tolist()
    assert loaded.totals == written.totals and loaded.repositories == ["app", "tool"]


def test_history_lists_snapshots_by_time_and_skips_what_is_not_one(tmp_path):
    tags, layers = fleet()
    late = write(tmp_path, tags, layers, "2024-03-02")
    early = write(tmp_path, tags.iloc[:2], layers.iloc[:4], "2024-03-01")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / ".tmp-20240301T000000.000000Z-deadbeef-123").mkdir()   # interrupted write
    foreign = tmp_path / "20240101T000000.000000Z-foreign0"
    foreign.mkdir()
    (foreign / "snapshot.json").write_text(json.dumps({"format": "other/9"}))
    broken = tmp_path / "20240102T000000.000000Z-broken00"
    broken.mkdir()
    (broken / "snapshot.json").write_text("{not json")

    with pytest.warns(ri.HistoryWarning) as caught:
        frame = ri.history(tmp_path)
    assert frame["snapshot_id"].tolist() == [early.snapshot_id, late.snapshot_id]
    assert dict(frame.dtypes.astype(str)) == store.HISTORY_SCHEMA
    assert frame["tags"].tolist() == [2, 4]
    assert frame["disk_bytes"].isna().all()
    reasons = {os.path.basename(i["path"]): i["reason"] for i in frame.attrs["skipped"]}
    assert set(reasons) == {"notes.txt", "empty-dir", foreign.name, broken.name,
                            ".tmp-20240301T000000.000000Z-deadbeef-123"}
    assert "interrupted" in reasons[".tmp-20240301T000000.000000Z-deadbeef-123"]
    assert "other/9" in reasons[foreign.name] and "unreadable" in reasons[broken.name]
    assert len(caught) == 5

    with pytest.warns(ri.HistoryWarning):
        assert ri.history(tmp_path, registry="registry.test")["snapshot_id"].tolist() == \
            frame["snapshot_id"].tolist()
    with pytest.warns(ri.HistoryWarning):
        assert ri.history(tmp_path, registry="other.test").empty
    nothing = ri.history(tmp_path / "missing")
    assert nothing.empty and dict(nothing.dtypes.astype(str)) == store.HISTORY_SCHEMA
    with pytest.raises(ri.HistoryError, match="not found"):
        ri.load_snapshot(tmp_path, "2099")
    with pytest.raises(ri.HistoryError, match="is a file"):
        ri.history(tmp_path / "notes.txt")


def test_only_snapshots_of_the_same_scope_are_compared(tmp_path):
    from registry_insights.report.history import review_history

    tags, layers = fleet()
    full = write(tmp_path, tags, layers, "2024-03-01")
    app_only = (tags[tags["repository"] == "app"], layers[layers["repository"] == "app"])
    part = store.write_snapshot(tmp_path, registry=REGISTRY, tags=app_only[0],
                                layers=app_only[1], repositories=["app"], totals={},
                                tool_version="test", taken_at="2024-03-02", partial=True)
    assert part.scope == "repositories:app" and full.scope == store.CATALOG
    assert ri.history(tmp_path)["scope"].tolist() == [store.CATALOG, "repositories:app"]
    assert review_history(tmp_path, part).previous is None      # not "tool was deleted"
    later = write(tmp_path, tags, layers, "2024-03-03")
    review = review_history(tmp_path, later)
    assert review.previous.snapshot_id == full.snapshot_id and review.changes.tags.empty
    assert len(review.history) == 2 and review.growth is None    # 2 of this scope: not 3
    assert ri.load_snapshot(tmp_path, part.snapshot_id).scope == "repositories:app"


def test_a_failed_write_leaves_no_snapshot(tmp_path, monkeypatch):
    tags, layers = fleet()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "rename", fail)
    with pytest.raises(OSError, match="No space"):
        write(tmp_path, tags, layers, "2024-03-01")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert write(tmp_path, tags, layers, "2024-03-01").path.is_dir()
    assert len(ri.history(tmp_path)) == 1


def test_diff_names_added_removed_moved_tags_and_the_bytes(tmp_path):
    tags, layers = fleet()
    older = write(tmp_path, tags, layers, "2024-03-01")
    # newer: app:v1 deleted (m1 keeps latest? no: latest moved to m4), app:v3 pushed as m4,
    # tool untouched
    new_tags, new_layers = fleet(
        image("app", "v3", "m4", "2024-03-05T00:00:00Z", [("sha256:base", 1000),
                                                        ("sha256:a4", 900)]))
    keep = ~((new_tags["repository"] == "app") & new_tags["tag"].isin(["v1"]))
    new_tags = new_tags[keep].copy()
    new_layers = new_layers[~((new_layers["repository"] == "app")
                              & new_layers["tag"].isin(["v1"]))]
    latest = new_tags["tag"] == "latest"
    new_tags.loc[latest, ["digest", "manifest_digest", "config_digest"]] = ["m4", "m4",
                                                                           "cfg-m4"]
    new_layers = new_layers.copy()
    moved_layers = new_layers["tag"] == "latest"
    new_layers.loc[moved_layers, "manifest_digest"] = "m4"
    new_layers.loc[moved_layers & (new_layers["layer_digest"] == "sha256:a1"),
                   ["layer_digest", "size"]] = ["sha256:a4", 900]
    newer = write(tmp_path, new_tags.reset_index(drop=True), new_layers.reset_index(drop=True),
                  "2024-03-08")

    result = diff(older, newer)
    assert dict(result.tags.dtypes.astype(str)) == TAG_CHANGES_SCHEMA
    assert dict(result.repositories.dtypes.astype(str)) == REPOSITORY_CHANGES_SCHEMA
    assert dict(result.blobs.dtypes.astype(str)) == BLOB_CHANGES_SCHEMA
    rows = {(r.repository, r.tag): (r.change, r.old_digest, r.new_digest)
            for r in result.tags.itertuples()}
    assert rows == {("app", "v1"): ("removed", "m1", pd.NA),
                    ("app", "latest"): ("moved", "m1", "m4"),
                    ("app", "v3"): ("added", pd.NA, "m4")}
    sizes = result.tags.set_index("tag")
    assert sizes.at["v1", "old_bytes"] == 100 + 10 + 1000 + 500
    assert sizes.at["v3", "new_bytes"] == 100 + 10 + 1000 + 900
    assert pd.isna(sizes.at["v3", "old_bytes"]) and pd.isna(sizes.at["v1", "new_bytes"])
    # m1, its config and a1 are no longer referenced; m4, its config and a4 are new
    blobs = {(r.digest, r.change): r.size for r in result.blobs.itertuples()}
    assert blobs == {("m4", "added"): 100, ("cfg-m4", "added"): 10,
                     ("sha256:a4", "added"): 900, ("m1", "freed"): 100,
                     ("cfg-m1", "freed"): 10, ("sha256:a1", "freed"): 500}
    assert result.delta_bytes == newer.totals["stored_bytes"] - older.totals["stored_bytes"]
    assert result.delta_bytes == 1010 - 610
    repos = result.repositories.set_index("repository")
    assert repos.at["app", "delta_bytes"] == 400 and repos.at["tool", "delta_bytes"] == 0
    assert (repos.at["app", "added"], repos.at["app", "removed"], repos.at["app", "moved"]) \
        == (1, 1, 1)
    assert result.repositories["repository"].iloc[-1] == TOTAL
    assert result.counts() == {"added": 1, "removed": 1, "moved": 1, "blobs_added": 3,
                               "blobs_freed": 3, "added_bytes": 1010, "freed_bytes": 610}

    same = diff(newer, newer)
    assert same.tags.empty and same.blobs.empty and same.delta_bytes == 0
    assert dict(same.tags.dtypes.astype(str)) == TAG_CHANGES_SCHEMA
    other = store.Snapshot("x", older.taken_at, "https://elsewhere", "t", [], {},
                           empty(TAGS_SCHEMA), empty(LAYERS_SCHEMA))
    with pytest.raises(ValueError, match="different registries"):
        diff(older, other)


def history_frame(stored, days, registry=REGISTRY):
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame({
        "snapshot_id": [f"s{i}" for i in range(len(stored))],
        "taken_at": [start + pd.Timedelta(days=d) for d in days],
        "registry": registry, "stored_bytes": stored, "tags": 10,
    })


def test_measured_growth_and_the_forecast_through_the_last_observation():
    # growth, then a cleanup with garbage collection, then growth again
    frame = history_frame([1000, 1300, 1600, 700, 1000], [0, 30, 60, 90, 120])
    measured = measured_growth(frame)
    assert dict(measured.dtypes.astype(str)) == MEASURED_GROWTH_SCHEMA
    assert measured["new_bytes"].tolist()[1:] == [300, 300, -900, 300]
    assert pd.isna(measured["new_bytes"].iloc[0]) and pd.isna(measured["period_start"].iloc[0])
    assert measured.attrs["source"] == "snapshots"

    fc = trends.forecast(measured, horizon="60D")
    assert fc.attrs["source"] == "snapshots" and fc.attrs["anchor"] == "last"
    last = fc[fc["kind"] == "history"].iloc[-1]
    assert last["trend"] == pytest.approx(1000)
    assert last["lower"] <= 1000 <= last["upper"]
    slope = fc.attrs["slope_bytes_per_day"]
    # median of the pairwise slopes: 10 x4, 0, -10/3 x2, -10 x2, -30 (the cleanup)
    assert slope == pytest.approx(-5 / 3)
    assert fc.attrs["projected_bytes"] == pytest.approx(1000 + 60 * slope)
    assert fc["date"].iloc[-1] == pd.Timestamp("2024-06-29", tz="UTC")
    bumpy = measured_growth(history_frame([0, 100, 400, 200], [0, 10, 20, 30]))
    anchored = trends.forecast(bumpy)
    unanchored = trends.forecast(bumpy, anchor=None)
    assert anchored.attrs["slope_bytes_per_day"] == pytest.approx(25 / 3)
    assert anchored.attrs["intercept_bytes"] == pytest.approx(200 - 250)   # through (30, 200)
    assert unanchored.attrs["intercept_bytes"] == pytest.approx(25 / 3)    # median residual
    with pytest.raises(ValueError, match="anchor"):
        trends.forecast(measured, anchor="first")

    shrinking = measured_growth(history_frame([3000, 2000, 1000], [0, 30, 60]))
    gone = trends.forecast(shrinking, horizon="365D")
    assert (gone["trend"] >= 0).all() and gone.attrs["projected_bytes"] == 0

    with pytest.raises(ValueError, match="registries"):
        measured_growth(pd.concat([history_frame([1], [0]),
                                   history_frame([2], [1], registry="other")]))
    assert measured_growth(empty(store.HISTORY_SCHEMA)).empty
    assert np.isnan(trends.forecast(measured_growth(history_frame([5], [0])))
                    .attrs["slope_bytes_per_day"])
