"""TagBrowser (registry_insights.ui.widgets) against a real registry (anonymous mode): its methods
and its buttons pull and delete what is selected, and nothing is deleted without the
confirmation ticked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ipywidgets as w
import pytest

import registry_insights as ri
from registry_insights.testing.demo import FleetBuilder
from registry_insights.ui.widgets import ConfirmationRequired, TagBrowser
from tests.support.fleet import push_fleet

SIBLINGS = "widgets/app"  # a, b, c on one digest; old on another


@pytest.fixture
def seeded(make_registry, tmp_path):
    """A registry of the test's own: widgets/app (a, b, c sharing a digest, and old) and
    push_fleet's widgets/r0, widgets/r1 (v0..v2, latest on v2's digest, v2 an index)."""
    handle = make_registry("anonymous")
    client = ri.RegistryClient(handle.url, cache=tmp_path / "cache")
    fleet = FleetBuilder(client, 5)
    base = fleet.layer(4_000, "app-base")
    digest = fleet.build(SIBLINGS, ["a", "b", "c"],
                         {"linux/amd64": [base, fleet.layer(1_500, "app-abc")]},
                         "2026-03-01T00:00:00Z", oci=True)
    fleet.build(SIBLINGS, ["old"], {"linux/amd64": [base, fleet.layer(1_200, "app-old")]},
                "2025-01-01T00:00:00Z", oci=False)
    push_fleet(client, "widgets", repositories=2, tags=3)
    try:
        yield handle, client, digest
    finally:
        client.close()


def heads(client, repository):
    """Every tag of ``repository`` and its digest, asked fresh from the registry."""
    return {t: client.head_manifest(repository, t).digest for t in client.tags(repository)}


def test_anonymous_delete_one_of_three_sibling_tags(seeded):
    _handle, client, digest = seeded
    browser = TagBrowser(client, now="2026-04-01")
    assert {(SIBLINGS, t) for t in ("a", "b", "c", "old")} <= set(browser.visible)
    assert browser.selected == []
    with pytest.raises(ValueError, match="nothing to delete"):
        browser.delete_selected()

    assert browser.select([(SIBLINGS, "a")]) == [(SIBLINGS, "a")]
    preview = browser.preview_delete()
    assert list(preview.columns) == list(ri.widgets.PREVIEW_SCHEMA)
    rows = {r.tag: r for r in preview.itertuples()}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"].action == "delete" and "tag only" in rows["a"].reason
    for sibling in ("b", "c"):
        assert rows[sibling].action == "keep"
        assert "shares" in rows[sibling].reason and "a" in rows[sibling].reason
    assert set(preview["digest"]) == {digest}
    assert rows["a"].age_days == 31
    # the manifest stays for b and c, so garbage collection frees nothing
    assert preview.attrs["reclaimable_bytes"] == 0
    assert preview.attrs["deleted_manifests"] == 0
    tags = browser.tags
    layer_size = tags.loc[(tags["repository"] == SIBLINGS) & (tags["tag"] == "a"), "layer_size"]
    assert preview.attrs["logical_bytes"] == int(layer_size.iloc[0]) > 5_000  # per-tag sum

    before = heads(client, SIBLINGS)
    with pytest.raises(ConfirmationRequired, match="tick the confirmation"):
        browser.delete_selected()
    assert heads(client, SIBLINGS) == before  # nothing deleted
    assert client.request_counts["delete"] == 0

    browser.confirm.value = True
    results = browser.delete_selected()
    assert [(r.repository, r.tag, r.status) for r in results] == [(SIBLINGS, "a", "deleted")]
    assert "tag only" in results[0].message
    after = heads(client, SIBLINGS)
    assert after == {t: d for t, d in before.items() if t != "a"}
    assert after["b"] == after["c"] == digest
    assert browser.confirm.value is False  # a delete uses up the confirmation
    assert (SIBLINGS, "a") not in browser.visible
    assert "widgets/app:a: deleted" in browser.output_text


def test_anonymous_preview_of_a_lone_tag_matches_garbage_collection(seeded):
    handle, client, _digest = seeded
    browser = TagBrowser(client)
    browser.select([(SIBLINGS, "old"), ("widgets/r0", "v0")])
    preview = browser.preview_delete()
    assert preview["action"].tolist() == ["delete", "delete"]
    assert all("deleted (no other tag points to it)" in r for r in preview["reason"])
    predicted = preview.attrs["reclaimable_bytes"]
    assert predicted > 0
    assert browser.reclaim is not None
    browser.confirm.value = True
    assert [r.status for r in browser.delete_selected()] == ["deleted", "deleted"]
    before = handle.server.blob_bytes()
    handle.server.garbage_collect()
    assert before - handle.server.blob_bytes() == predicted


def test_anonymous_pull_selected_writes_verified_layouts(seeded, tmp_path):
    _handle, client, _digest = seeded
    browser = TagBrowser(client, repositories=["widgets/r0"], directory=tmp_path / "out")
    assert browser.repositories == ["widgets/r0"]
    browser.select([("widgets/r0", "v2"), ("widgets/r0", "v0")])  # an index, an image
    paths = browser.pull_selected()
    assert paths == [tmp_path / "out" / "widgets" / "r0" / "v2",
                     tmp_path / "out" / "widgets" / "r0" / "v0"]
    for path, tag in zip(paths, ("v2", "v0")):
        assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads((path / "index.json").read_text())
        (entry,) = index["manifests"]
        assert entry["annotations"]["org.opencontainers.image.ref.name"] == tag
        assert entry["digest"] == client.head_manifest("widgets/r0", tag).digest
        blobs = list((path / "blobs" / "sha256").iterdir())
        assert len(blobs) >= 3  # manifest, config, layers
        for blob in blobs:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert "2 layout(s)" in browser.output_text
    browser.directory.value = "  "
    with pytest.raises(ValueError, match="directory box is empty"):
        browser.pull_selected()


def test_anonymous_filter_narrows_the_options_and_keeps_the_selection(seeded):
    _handle, client, _digest = seeded
    browser = TagBrowser(client)
    everything = browser.visible
    assert browser.repositories == [SIBLINGS, "widgets/r0", "widgets/r1"]
    assert len(everything) == 4 + 2 * 4  # latest shares v2's digest in r0 and r1
    browser.sort("created_at", ascending=True)  # the oldest build first, as a header click
    assert browser.page_rows[0] == (SIBLINGS, "old")
    cells = [c.value for c in browser._cells[0]]
    assert "2025-01-01" in cells[4] and "KiB" in cells[6] and "linux/amd64" in cells[3]
    assert browser.header["created_at"].description == "Built (UTC) ▲"
    browser.header["created_at"].click()  # a second click turns the order around
    assert browser.header["created_at"].description == "Built (UTC) ▼"
    assert browser.visible[-1] == (SIBLINGS, "old")
    browser.sort("repository", ascending=True)

    browser.select([("widgets/r0", "v1"), ("widgets/r1", "v1")])
    browser.confirm.value = True
    assert browser.filter(repository="widgets/r0") == [
        p for p in everything if p[0] == "widgets/r0"]
    assert browser.selected == [("widgets/r0", "v1")]  # the hidden one is no longer selected
    assert browser.confirm.value is False  # the selection changed: confirm again

    browser.confirm.value = True
    assert browser.filter(repository="widgets/r0", text="V1") == [("widgets/r0", "v1")]
    assert browser.selected == [("widgets/r0", "v1")]
    assert browser.confirm.value is True  # same selection, still confirmed
    browser.text.value = "lat"  # the widgets drive the same filter
    assert browser.visible == [("widgets/r0", "latest")]
    browser.repository.value = ""
    assert browser.visible == [("widgets/r0", "latest"), ("widgets/r1", "latest")]
    browser.regex.value = True
    browser.text.value = "("  # half typed: said under the filters, nothing else changes
    assert "not a valid regular expression" in browser.filter_message.value
    assert browser.visible == [("widgets/r0", "latest"), ("widgets/r1", "latest")]
    browser.text.value = r"^v[12]$"
    assert browser.filter_message.value == ""
    assert browser.visible == [("widgets/r0", "v1"), ("widgets/r0", "v2"), ("widgets/r1", "v1"),
                               ("widgets/r1", "v2")]
    browser.regex.value = False
    browser.text.value = "lat"
    with pytest.raises(ValueError, match="hidden by the filter"):
        browser.select([("widgets/r0", "v0")])
    with pytest.raises(ValueError, match="not in the tags"):
        browser.select([("widgets/r9", "v0")])
    with pytest.raises(ValueError, match="not in the tags"):
        browser.filter(repository="widgets/r9")
    assert browser.filter() == everything


def test_anonymous_buttons_drive_the_same_code_paths(seeded, tmp_path):
    _handle, client, digest = seeded
    browser = TagBrowser(client, repositories=[SIBLINGS], directory=tmp_path / "layouts")
    assert isinstance(browser.widget, w.VBox)
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert browser.delete_button.disabled and browser.pull_button.disabled

    browser.preview_button.click()  # nothing selected: shown, not raised
    assert "error: nothing to preview" in browser.output_text

    browser.checkboxes[browser.page_rows.index((SIBLINGS, "b"))].value = True  # a click
    assert browser.selected == [(SIBLINGS, "b")]
    assert "1 tag(s) selected" in browser.summary.value
    assert "2 sibling tag(s) on these digests stay" in browser.summary.value
    browser.preview_button.click()
    text = browser.output_text
    assert "Deleting 1 tag(s) deletes 0 manifest(s)" in text
    assert "2 other tag(s) on the same digests stay" in text
    assert "Garbage collection would then free 0 B" in text
    assert "Only the repositories shown were read" in text
    assert any(o.get("output_type") == "display_data" for o in browser.output.outputs)

    before = heads(client, SIBLINGS)
    browser.delete_button.click()  # not confirmed: refused, shown
    assert "error: not deleting 1 tag(s): tick the confirmation" in browser.output_text
    assert heads(client, SIBLINGS) == before

    browser.pull_button.click()  # on a worker thread, with the progress bar
    browser.wait(60)
    assert (tmp_path / "layouts" / SIBLINGS / "b" / "index.json").exists()
    assert "pulled widgets/app:b" in browser.output_text
    assert browser.progress.value == browser.progress.max == 1

    browser.confirm.value = True
    assert not browser.delete_button.disabled
    assert "deleting these 1 selected tag(s)" in browser.confirm.description
    browser.delete_button.click()
    browser.wait(60)
    text = browser.output_text
    assert "widgets/app:b: deleted (tag only): tag only" in text
    assert "widgets/app:a: kept" in text and "widgets/app:c: kept" in text
    assert "1 deleted (tag only), 2 kept." in text
    assert dict(zip(browser.outcomes["tag"], browser.outcomes["outcome"])) == {
        "b": "deleted (tag only)", "a": "kept", "c": "kept"}
    assert heads(client, SIBLINGS) == {t: d for t, d in before.items() if t != "b"}
    assert browser.selected == [] and browser.delete_button.disabled

    client.delete(SIBLINGS, tag="old")  # behind the browser's back, through its client
    assert (SIBLINGS, "old") in browser.visible
    browser.refresh_button.click()
    assert browser.visible == [(SIBLINGS, "a"), (SIBLINGS, "c")]
    assert "read 2 tags in 1 repositories" in browser.output_text
    assert set(browser.tags["digest"]) == {digest}


def test_anonymous_refresh_shows_the_tag_gone_and_keeps_the_selection(seeded):
    _handle, client, digest = seeded
    tags = ri.tags_frame(client, [SIBLINGS], progress=False)
    browser = TagBrowser(client, tags=tags)  # no layers: no GC figure until a refresh
    browser.select([(SIBLINGS, "a"), (SIBLINGS, "old")])
    assert browser.preview_delete().attrs["reclaimable_bytes"] is None
    client.delete(SIBLINGS, tag="old")
    assert (SIBLINGS, "old") in browser.visible
    assert browser.refresh() is browser.tags
    assert (SIBLINGS, "old") not in browser.visible
    assert browser.selected == [(SIBLINGS, "a")]
    assert browser.preview_delete().attrs["reclaimable_bytes"] == 0
    browser.confirm.value = True
    # the tag "old" went between the frame and the delete: reported, not fatal
    stale = TagBrowser(client, tags=tags)
    stale.select([(SIBLINGS, "old")])
    stale.confirm.value = True
    (result,) = stale.delete_selected()
    assert result.status == "absent"
    assert "widgets/app:old: already gone" in stale.output_text
    assert "Nothing was deleted, so no space comes back" in stale.output_text
    assert "garbage collection" not in stale.output_text
    assert sorted(client.tags(SIBLINGS)) == ["a", "b", "c"]
    assert client.head_manifest(SIBLINGS, "a").digest == digest


class _NoNetwork:
    registry = "http://127.0.0.1:9"

    def __getattr__(self, name):
        raise AssertionError(f"the browser used the client ({name}) without being asked to")


def test_browser_of_no_tags_needs_no_request():
    browser = TagBrowser(_NoNetwork(), tags=ri.schema.empty(ri.TAGS_SCHEMA))
    assert browser.visible == [] and browser.repositories == []
    for action in (browser.preview_delete, browser.pull_selected, browser.delete_selected):
        with pytest.raises(ValueError, match="nothing to"):
            action()
    browser.delete_button.click()
    assert "error: nothing to delete" in browser.output_text
    with pytest.raises(ValueError, match="pairs"):
        browser.select(["team/app:v1"])
    assert "0 tags" in repr(browser)


def test_browser_is_exported_lazily():
    assert ri.TagBrowser is TagBrowser
    assert ri.TagSelection is TagBrowser(_NoNetwork(), tags=ri.schema.empty(
        ri.TAGS_SCHEMA)).selection.__class__
    assert Path(ri.widgets.__file__).name == "widgets.py"


def test_anonymous_confirmation_is_bound_to_the_digest_shown(seeded):
    """Issue 10 item 6: ticked on nightly (digest A); a new nightly (B) is pushed behind the
    browser's back; after a refresh the tick is gone, delete_selected refuses, B stays."""
    _handle, client, _digest = seeded
    fleet = FleetBuilder(client, 11)
    base = fleet.layer(3_000, "nightly-base")
    digest_a = fleet.build(SIBLINGS, ["nightly"],
                           {"linux/amd64": [base, fleet.layer(900, "nightly-a")]},
                           "2026-03-02T00:00:00Z", oci=True)
    browser = TagBrowser(client, repositories=[SIBLINGS], now="2026-04-01")
    browser.filter(text="nightly")
    browser.select([(SIBLINGS, "nightly")])
    browser.confirm.value = True
    assert browser.selection.confirmed_rows == [(SIBLINGS, "nightly", digest_a)]

    digest_b = fleet.build(SIBLINGS, ["nightly"],
                           {"linux/amd64": [base, fleet.layer(900, "nightly-b")]},
                           "2026-03-03T00:00:00Z", oci=True)
    assert digest_b != digest_a
    browser.refresh_button.click()
    assert browser.selection.digest((SIBLINGS, "nightly")) == digest_b  # seen at once
    assert browser.selected == [(SIBLINGS, "nightly")]  # still selected ...
    assert browser.confirm.value is False  # ... but no longer confirmed
    assert browser.delete_button.disabled
    with pytest.raises(ConfirmationRequired, match="read again and the selected rows changed"):
        browser.delete_selected()
    browser.delete_button.click()  # disabled in the page; a forced click is refused too
    browser.wait(10)
    assert client.request_counts["delete"] == 0
    assert client.head_manifest(SIBLINGS, "nightly").digest == digest_b

    # confirmed on B, then C pushed and no refresh: the delete names B, the registry has C
    browser.confirm.value = True
    digest_c = fleet.build(SIBLINGS, ["nightly"],
                           {"linux/amd64": [base, fleet.layer(900, "nightly-c")]},
                           "2026-03-04T00:00:00Z", oci=True)
    (result,) = browser.delete_selected()
    assert result.status == "changed" and result.digest == digest_b
    assert browser.outcomes["outcome"].tolist() == ["refused"]
    assert "Nothing was deleted" in browser.output_text
    assert client.head_manifest(SIBLINGS, "nightly").digest == digest_c

    # the other changes withdraw it too: the selection, a filter hiding a selected row
    browser.refresh()
    browser.confirm.value = True
    browser.select_none()
    assert browser.confirm.value is False
    browser.filter()
    browser.select([(SIBLINGS, "nightly"), (SIBLINGS, "a")])
    browser.confirm.value = True
    browser.filter(text="night")
    assert browser.selected == [(SIBLINGS, "nightly")] and browser.confirm.value is False
    with pytest.raises(ConfirmationRequired, match="filters hid selected rows"):
        browser.delete_selected()
    assert client.head_manifest(SIBLINGS, "nightly").digest == digest_c
    assert client.request_counts["delete"] == 0
