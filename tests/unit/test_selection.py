"""TagSelection (registry_insights.ui.selection): the TagBrowser's state without a widget,
driven from code on small hand-made frames (no registry, no ipywidgets)."""

from __future__ import annotations

import pandas as pd
import pytest

from registry_insights.errors import ConfirmationRequired
from registry_insights.frames.schema import LAYERS_SCHEMA, SELECTION_SCHEMA, TAGS_SCHEMA, coerce
from registry_insights.ui.selection import TagSelection

INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE = "application/vnd.oci.image.manifest.v1+json"
D = {name: "sha256:" + ch * 64 for name, ch in zip("ABCDE", "abcde")}
NOW = "2026-06-01T00:00:00Z"
# repository, tag, digest, platform, created, layer digest(s) with sizes
IMAGES = [
    ("team/app", "v1", "A", "linux/amd64", "2026-01-01", [("base", 1000), ("a1", 100)]),
    ("team/app", "v1", "A", "linux/arm64", "2026-01-01", [("base", 1000), ("a2", 200)]),
    ("team/app", "stable", "A", "linux/amd64", "2026-01-01", [("base", 1000), ("a1", 100)]),
    ("team/app", "stable", "A", "linux/arm64", "2026-01-01", [("base", 1000), ("a2", 200)]),
    ("team/app", "v2", "B", "linux/amd64", "2026-05-20", [("base", 1000), ("b1", 50)]),
    ("team/app", "repro", "C", "linux/amd64", "1970-01-01", [("base", 1000), ("c1", 70)]),
    ("team/web", "nightly-7", "D", "linux/arm64", "2025-12-01", [("web", 4000)]),
]


def frames(images=IMAGES):
    """Tags and layers frames: a digest with two platforms is an index of two manifests."""
    tags, layers = [], []
    for repo, tag, digest, platform, created, blobs in images:
        index = sum(1 for img in images if img[:3] == (repo, tag, digest)) > 1
        kid = D[digest][:-8] + platform.replace("/", "")[-8:].ljust(8, "0") if index \
            else D[digest]
        tags.append({"repository": repo, "tag": tag, "digest": D[digest], "platform": platform,
                     "media_type": INDEX if index else IMAGE, "manifest_digest": kid,
                     "created_at": created, "is_image": True,
                     "layer_size": sum(size for _n, size in blobs)})
        for position, (name, size) in enumerate(blobs):
            layers.append({"repository": repo, "tag": tag, "platform": platform,
                           "manifest_digest": kid, "position": position,
                           "layer_digest": "sha256:" + name.ljust(64, "0"), "size": size,
                           "is_image": True})
    return coerce(pd.DataFrame(tags), TAGS_SCHEMA), coerce(pd.DataFrame(layers), LAYERS_SCHEMA)


@pytest.fixture
def sel():
    tags, layers = frames()
    return TagSelection(tags, layers, now=NOW)


def test_rows_one_per_tag_with_platforms_age_and_size(sel):
    rows = sel.rows
    assert list(rows.columns) == list(SELECTION_SCHEMA)
    assert dict(rows.dtypes.astype(str)) == {k: str(pd.Series(dtype=v).dtype)
                                              for k, v in SELECTION_SCHEMA.items()}
    v1 = rows[(rows.repository == "team/app") & (rows.tag == "v1")].iloc[0]
    assert v1.platforms == "linux/amd64,linux/arm64"
    assert v1.layer_size == 2300 and v1.age_days == 151
    repro = rows[rows.tag == "repro"].iloc[0]
    assert pd.isna(repro.age_days)  # 1970: age unknown, not 56 years
    assert sel.platforms == ["linux/amd64", "linux/arm64"]


def test_sort_by_any_column_and_turn_it_around(sel):
    assert sel.visible[0] == ("team/app", "repro")  # repository, then tag
    assert sel.sort("layer_size")[0] == ("team/app", "v2")  # 1050 bytes, the smallest
    assert sel.sort("layer_size")[0] == ("team/web", "nightly-7")  # again: descending
    assert sel.sort_ascending is False
    by_age = sel.sort("age_days", ascending=False)  # oldest first; unknown age last
    assert by_age[0] == ("team/web", "nightly-7") and by_age[-1] == ("team/app", "repro")
    with pytest.raises(ValueError, match="cannot sort by 'size'"):
        sel.sort("size")


def test_filters_repository_text_regex_age_platform(sel):
    assert sel.filter("team/web") == [("team/web", "nightly-7")]
    assert sel.filter(text="V") == [("team/app", "v1"), ("team/app", "v2")]
    assert sel.filter(text=r"^v\d$", regex=True) == [("team/app", "v1"), ("team/app", "v2")]
    assert sel.filter(text="nightly-\\d+", regex=True) == [("team/web", "nightly-7")]
    # older than 100 days: v1/stable (151 d), nightly (182 d); never the 1970 build
    assert set(sel.filter(older_than=100)) == {("team/app", "v1"), ("team/app", "stable"),
                                               ("team/web", "nightly-7")}
    assert sel.filter(platform="linux/arm64") == [
        ("team/app", "stable"), ("team/app", "v1"), ("team/web", "nightly-7")]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        sel.filter(text="(", regex=True)
    with pytest.raises(ValueError, match="platform 'windows/amd64'"):
        sel.filter(platform="windows/amd64")
    assert sel.filter(platform="linux/arm64") == sel.visible  # a refused filter changes nothing
    assert len(sel.filter()) == 5


def test_select_all_shown_none_and_live_summary(sel):
    sel.filter(older_than=100)
    assert sorted(sel.select_all_shown()) == sorted(sel.visible)
    summary = sel.summary()
    assert summary["tags"] == 3 and summary["repositories"] == 2
    assert summary["logical_bytes"] == 2300 + 2300 + 4000  # the per-tag sum counts base twice
    # v1+stable go with digest A: a1, a2 freed (base stays for v2, repro); web freed
    assert summary["reclaimable_bytes"] == 100 + 200 + 4000
    assert summary["siblings"] == []
    sel.select([("team/app", "v1")])
    summary = sel.summary()
    assert summary["siblings"] == [("team/app", "stable")]
    assert summary["reclaimable_bytes"] == 0 and summary["deleted_manifests"] == 0
    assert sel.select_none() == [] and sel.summary()["tags"] == 0
    with pytest.raises(ValueError, match="hidden by the filter"):
        sel.select([("team/app", "v2")])
    with pytest.raises(ValueError, match="pairs"):
        sel.select(["team/app:v1"])


def test_confirmation_bound_to_rows_and_digests(sel):
    with pytest.raises(ValueError, match="nothing to confirm"):
        sel.confirm()
    sel.select([("team/app", "v2")])
    with pytest.raises(ConfirmationRequired, match="tick the confirmation first"):
        sel.deletions()
    assert sel.confirm() == [("team/app", "v2", D["B"])]
    assert sel.deletions() == [("team/app", "v2", D["B"])]
    events = []
    sel.on_change(events.append)
    sel.sort("tag")  # nothing selected changes: the confirmation stays
    assert sel.confirmed and events == ["sort"]

    # the registry read again: v2 now on digest E
    moved = [(*img[:2], "E", *img[3:]) if img[1] == "v2" else img for img in IMAGES]
    sel.set_frames(*frames(moved))
    assert sel.selected == [("team/app", "v2")] and not sel.confirmed
    assert "confirmation" in events
    with pytest.raises(ConfirmationRequired, match="read again"):
        sel.deletions()
    sel.confirm()
    sel.set_frames(*frames(moved))  # the same rows again: still confirmed
    assert sel.deletions() == [("team/app", "v2", D["E"])]
    sel.toggle(("team/app", "v1"), True)  # one more tag: confirm again
    assert not sel.confirmed
    sel.confirm()
    sel.filter(text="v2")  # hides v1
    assert not sel.confirmed
    with pytest.raises(ConfirmationRequired, match="filters hid"):
        sel.deletions()


def test_drop_removes_rows_and_preview_names_siblings(sel):
    sel.select([("team/app", "v1")])
    preview = sel.preview()
    assert dict(zip(preview.tag, preview.action)) == {"v1": "delete", "stable": "keep"}
    assert "stays for stable" in preview.loc[preview.tag == "v1", "reason"].iloc[0]
    sel.drop([("team/app", "v1")])
    assert ("team/app", "v1") not in sel.visible and sel.selected == []
    assert len(sel.tags) == len(IMAGES) - 2


def test_a_backtracking_tag_filter_is_refused_not_a_hang():
    from registry_insights.ui.selection import _compile

    pattern = _compile("(a|a)+$")
    with pytest.raises(ValueError, match="catastrophic backtracking"):
        pattern.search("a" * 40 + "!")
    assert _compile("PR-").search("pr-41") and not _compile("^v").search("1v")
