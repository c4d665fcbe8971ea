"""Review history on the real demo registry (Debian's docker-registry, CNCF Distribution 2.8):
snapshot, cleanup and garbage collection, push, snapshot; the diff, the stored bytes against the
disk, measured growth and the anchored forecast in the report and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL
from registry_insights.cli import main
from registry_insights.report.build import report_from_frames
from registry_insights.report.history import review_history
from registry_insights.testing.demo import DemoRegistry, make_history

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """A demo registry of its own with three snapshots: seeded, after cleanup + GC, after a
    push (it is changed for good, so not the session's demo)."""
    store = tmp_path_factory.mktemp("history")
    with DemoRegistry() as demo:
        steps = make_history(demo, store)
        yield demo, store, steps


def test_diff_is_exact_and_stored_bytes_are_the_disk(reviewed):
    demo, store, steps = reviewed
    seeded, cleaned, pushed = steps
    assert [s.action for s in steps] == ["seeded", "cleanup", "push"]

    # each snapshot's stored bytes are what the disk held at that moment
    for step in steps:
        assert step.snapshot.totals["stored_bytes"] == step.disk_bytes
        assert step.snapshot.totals["disk_bytes"] == step.disk_bytes
        assert step.snapshot.totals["gc_backlog_bytes"] == 0

    # cleanup: exactly the deleted tags are removed, nothing added or moved
    first = ri.diff(seeded.snapshot, cleaned.snapshot)
    assert len(cleaned.deleted) > 50
    assert set(first.tags["change"]) == {"removed"}
    assert sorted(zip(first.tags["repository"], first.tags["tag"])) == sorted(cleaned.deleted)
    assert first.tags["new_digest"].isna().all() and first.tags["old_digest"].notna().all()
    assert first.delta_bytes == cleaned.disk_bytes - seeded.disk_bytes < 0
    counts = first.counts()
    assert counts["added_bytes"] == 0
    assert counts["freed_bytes"] == seeded.disk_bytes - cleaned.disk_bytes

    # push: the new version tags are added, latest moved; nothing removed
    second = ri.diff(cleaned.snapshot, pushed.snapshot)
    changes = {(r, t): c for r, t, c in zip(second.tags["repository"], second.tags["tag"],
                                            second.tags["change"])}
    assert changes == {key: "moved" if key[1] == "latest" else "added" for key in pushed.pushed}
    moved = second.tags[second.tags["change"] == "moved"]
    for row in moved.itertuples():
        old = cleaned.snapshot.tags
        assert row.old_digest == old.loc[(old["repository"] == row.repository)
                                         & (old["tag"] == "latest"), "digest"].iloc[0]
        assert row.new_digest != row.old_digest
    assert second.delta_bytes == pushed.disk_bytes - cleaned.disk_bytes > 0
    assert second.counts()["freed_bytes"] == 0  # latest's old image keeps its version tag
    repos = second.repositories.set_index("repository")
    assert set(repos.index[repos["delta_bytes"] > 0]) == {TOTAL, *(r for r, _ in pushed.pushed)}
    assert repos.at[TOTAL, "delta_bytes"] == second.delta_bytes
    assert dict(second.tags.dtypes.astype(str)) == ri.analysis.history.TAG_CHANGES_SCHEMA

    # load_snapshot reads back what snapshot wrote; the history lists all three
    loaded = ri.load_snapshot(store, pushed.snapshot.snapshot_id)
    assert ri.diff(cleaned.snapshot, loaded).tags.equals(second.tags)
    assert loaded.tags.drop(columns="config").equals(
        pushed.snapshot.tags.drop(columns="config"))
    assert loaded.tags["config"].tolist() == pushed.snapshot.tags["config"].tolist()
    frame = ri.history(store)
    assert frame["snapshot_id"].tolist() == [s.snapshot.snapshot_id for s in steps]
    assert frame["stored_bytes"].tolist() == [s.disk_bytes for s in steps]

    # measured growth between snapshots = the difference of the disk measurements
    measured = ri.measured_growth(frame)
    assert measured["new_bytes"].tolist()[1:] == [
        cleaned.disk_bytes - seeded.disk_bytes, pushed.disk_bytes - cleaned.disk_bytes]
    assert measured["cumulative_bytes"].tolist() == [s.disk_bytes for s in steps]


def test_forecast_after_cleanup_is_measured_and_passes_through_the_last_observation(
        reviewed, tmp_path):
    demo, store, steps = reviewed
    last = steps[-1].snapshot
    review = review_history(store, last)
    assert len(review.history) == 3 and review.previous.snapshot_id == steps[1].snapshot.snapshot_id
    report = report_from_frames(last.tags, last.layers, tmp_path / "r",
                                repositories=last.repositories, registry=last.registry,
                                now=last.taken_at, review=review, plots=False)
    fc = report.forecast
    assert report.growth_source == "snapshots" and fc.attrs["source"] == "snapshots"
    history = fc[fc["kind"] == "history"]
    assert history["bytes"].tolist() == [s.disk_bytes for s in steps]
    end = history.iloc[-1]
    assert end["date"] == last.taken_at
    assert end["trend"] == pytest.approx(steps[-1].disk_bytes, abs=1e-3)   # through it
    assert end["lower"] <= steps[-1].disk_bytes <= end["upper"]
    future = fc[fc["kind"] == "forecast"]
    assert future["date"].min() > last.taken_at
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'data-source="snapshots"' in html and "measured from the stored bytes of 3" in html
    assert "Growth (measured at snapshots)" in html and "from build dates" not in html
    assert re.search(r'id="since-added">3<', html) and re.search(r'id="since-moved">3<', html)
    assert (tmp_path / "r" / "measured_growth.csv").exists()

    # the same registry with build-date growth says so, and why
    build_dated = report_from_frames(last.tags, last.layers, tmp_path / "b", now=last.taken_at,
                                     plots=False, html=False)
    assert build_dated.growth_source == "build dates"
    assert "no history store used" in build_dated.growth_note
    assert build_dated.forecast.attrs["slope_bytes_per_day"] != fc.attrs["slope_bytes_per_day"]


def test_cli_report_history_storage_and_diff(reviewed, tmp_path, capsys):
    demo, store, steps = reviewed
    code = main(["report", demo.url, "--no-cache", "--history", str(store), "--storage",
                 str(demo.server.storage_dir), "--now", "2027-01-01", "-o", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "measured at snapshots" in out
    assert "since the last review" in out and "0 added, 0 removed, 0 moved" in out
    assert "garbage collection would free 0 B now" in out
    disk = pd.read_csv(tmp_path / "r" / "disk.csv").iloc[0]
    assert disk["disk_bytes"] == demo.server.blob_bytes() == disk["api_stored_bytes"]
    assert len(ri.history(store)) == 4

    assert main(["diff", "--history", str(store), demo.url,
                 "--older", steps[1].snapshot.snapshot_id,
                 "--newer", steps[2].snapshot.snapshot_id]) == 0
    out = capsys.readouterr().out
    assert "3 added, 0 removed, 3 moved" in out
    for repository, tag in steps[2].pushed:
        assert re.search(rf"{re.escape(repository)}\s+{re.escape(tag)}\s+(added|moved)", out)

    assert main(["report", demo.url, "--no-cache", "--no-history", "-o",
                 str(tmp_path / "n")]) == 0
    assert "no history store used" in capsys.readouterr().out
    assert len(ri.history(store)) == 4
    assert not Path(tmp_path / "n" / "history.csv").exists()


def test_cli_report_saves_in_the_user_data_dir_and_survives_an_unwritable_one(
        demo_registry, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    argv = ["report", demo_registry.url, "--no-cache", "--no-html", "--repository",
            "payments/api"]
    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    store = tmp_path / "data" / "registry_insights" / "history"
    assert f"saved in {store}" in out and "first snapshot of this registry" in out
    assert len(ri.history(store, registry=demo_registry.url)) == 1

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert main([*argv, "-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "no snapshot saved: the default history store cannot be written" in out
    # a store the user named is not optional: its failure is the command's
    assert main([*argv, "--history", str(blocker), "-o", str(tmp_path / "c")]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err


def test_cli_storage_must_be_a_distribution_storage_before_any_walk(tmp_path, capsys):
    assert main(["report", "127.0.0.1:9", "--storage", str(tmp_path), "-o",
                 str(tmp_path / "r")]) == 2
    assert "docker/registry/v2" in capsys.readouterr().err
