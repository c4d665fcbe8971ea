"""Retention plans and reclaimable bytes on hand-made frames (pure), and the ``cleanup`` command
against a real registry (anonymous mode)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis.reclaim import RECLAIM_SCHEMA, deleted_manifests
from registry_insights.analysis.retention import PLAN_SCHEMA, parse_age
from registry_insights.analysis.storage import TOTAL
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty
from registry_insights.registry import mediatypes as mt

NOW = pd.Timestamp("2026-11-01T00:00:00Z")


def d(name: str) -> str:
    """A fake sha256 digest named by ``name``."""
    return "sha256:" + name.encode().hex().ljust(64, "0")[:64]


def image(repo, tag, digest, created, layers=(("base", 100),), platform="linux/amd64",
          index=None, config_size=10, manifest_size=50, is_image=True):
    """One tags row and its layers rows; ``index`` = (index digest, index size) for a platform
    of a multi-arch tag."""
    top, size, media_type = (index[0], index[1], mt.OCI_INDEX) if index else (
        digest, manifest_size, mt.OCI_MANIFEST)
    row = {"registry": "r", "repository": repo, "tag": tag, "digest": top,
           "media_type": media_type, "size": size, "platform": platform,
           "manifest_digest": digest, "manifest_media_type": mt.OCI_MANIFEST,
           "manifest_size": manifest_size,
           "config_digest": "sha256:" + hashlib.sha256(digest.encode()).hexdigest(),
           "config_size": config_size, "created_at": created,
           "layer_size": sum(s for _n, s in layers), "layer_count": len(layers),
           "is_image": is_image}
    layer_rows = [{"registry": "r", "repository": repo, "tag": tag, "platform": platform,
                   "manifest_digest": digest, "layer_digest": d(name), "size": s,
                   "media_type": mt.OCI_LAYER_GZIP, "position": i, "is_image": is_image}
                  for i, (name, s) in enumerate(layers)]
    return [row], layer_rows


def frames(*parts):
    tags = [r for p in parts for r in p[0]]
    layers = [r for p in parts for r in p[1]]
    return coerce(pd.DataFrame(tags), TAGS_SCHEMA), coerce(pd.DataFrame(layers), LAYERS_SCHEMA)


def action(plan, repo, tag):
    row = plan[(plan["repository"] == repo) & (plan["tag"] == tag)].iloc[0]
    return row["action"], row["reason"]


def builds(repo="app", n=6, shared=("latest",)):
    """n single-image builds v0..v{n-1}, a day apart; ``shared`` tags sit on the newest."""
    parts = []
    for i in range(n):
        created = f"2026-10-{10 + i:02d}T00:00:00Z"
        digest = d(f"{repo}-m{i}")
        layers = (("base", 1000), (f"{repo}-app{i}", 100 + i))
        parts.append(image(repo, f"v{i}", digest, created, layers))
        if i == n - 1:
            parts += [image(repo, t, digest, created, layers) for t in shared]
    return parts


# -- retention_plan --------------------------------------------------------------------------
def test_keep_last_counts_distinct_digests_not_tags():
    tags, _layers = frames(*builds(n=6, shared=("latest", "stable", "sha-1")))
    plan = ri.retention_plan(tags, keep_last=2, protect_defaults=False)
    assert list(plan.columns) == list(PLAN_SCHEMA)
    assert {c: str(t) for c, t in plan.dtypes.items()} == PLAN_SCHEMA
    kept = set(plan.loc[plan["action"] == "keep", "tag"])
    # four tags on the newest digest count once: v4 is the second newest digest
    assert kept == {"v5", "latest", "stable", "sha-1", "v4"}
    assert set(plan.loc[plan["tag"].isin(["v5", "latest"]), "rank"]) == {1}
    assert action(plan, "app", "v3") == ("delete", "digest #3, beyond keep_last 2")
    assert action(plan, "app", "v4")[1] == "digest #2 of the 2 newest (keep_last)"
    assert ri.deletions(plan) == [("app", f"v{i}", d(f"app-m{i}")) for i in (3, 2, 1, 0)]


def test_protected_and_keep_regex_are_kept_and_keep_their_digest():
    parts = builds(n=4, shared=("latest",))
    parts.append(image("app", "release-1", d("app-m0"), "2026-10-10T00:00:00Z"))
    tags, _layers = frames(*parts)
    plan = ri.retention_plan(tags, keep_last=1, keep_regex=r"release-.*")
    assert action(plan, "app", "latest") == ("keep", "protected tag")
    assert action(plan, "app", "release-1") == ("keep", "matches keep_regex 'release-.*'")
    # v0 is beyond keep_last, but a kept tag points to its digest: deleting it would delete both
    assert action(plan, "app", "v0") == ("keep", "digest shared with kept tag release-1")
    assert {t for t in plan.loc[plan["action"] == "delete", "tag"]} == {"v1", "v2"}
    unprotected = ri.retention_plan(tags, keep_last=0, protect_defaults=False)
    assert action(unprotected, "app", "latest")[0] == "delete"


def test_delete_regex_restricts_candidates_and_full_matches():
    parts = builds(n=3, shared=())
    parts += [image("app", "pr-7", d("pr7"), "2026-01-01T00:00:00Z"),
              image("app", "pr-7-fix", d("pr7f"), "2026-01-01T00:00:00Z")]
    tags, _layers = frames(*parts)
    plan = ri.retention_plan(tags, delete_regex=r"pr-\d+")
    assert action(plan, "app", "pr-7") == ("delete", "matches delete_regex 'pr-\\\\d+'")
    assert action(plan, "app", "pr-7-fix") == ("keep", "does not match delete_regex 'pr-\\\\d+'")
    assert action(plan, "app", "v0")[0] == "keep"
    # with an age rule, the regex candidates are also subject to it
    plan = ri.retention_plan(tags, delete_regex=r"pr-.*", older_than="400d", now=NOW)
    assert set(plan.loc[plan["action"] == "delete", "tag"]) == set()
    plan = ri.retention_plan(tags, delete_regex=r"pr-.*", older_than="30d", now=NOW)
    assert set(plan.loc[plan["action"] == "delete", "tag"]) == {"pr-7", "pr-7-fix"}


def test_older_than_uses_now_and_the_boundary_keeps():
    tags, _layers = frames(*builds(n=4, shared=()))
    # v0 2026-10-10 ... v3 2026-10-13; now - 20 days = 2026-10-12
    plan = ri.retention_plan(tags, older_than="20d", now=NOW)
    assert set(plan.loc[plan["action"] == "delete", "tag"]) == {"v0", "v1"}
    assert action(plan, "app", "v2") == ("keep", "created 2026-10-12, newer than 20d")
    assert action(plan, "app", "v0")[1] == "created 2026-10-10, older than 20d"
    both = ri.retention_plan(tags, older_than="20d", keep_last=3, now=NOW.tz_localize(None))
    assert set(both.loc[both["action"] == "delete", "tag"]) == {"v0"}
    assert parse_age("2w") == pd.Timedelta(days=14)
    assert parse_age(timedelta(hours=3)) == pd.Timedelta(hours=3)
    for bad in ("3 months", "1y", "-5d", "ninety days"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_age(bad)
    with pytest.raises(ValueError, match="keep_regex"):
        ri.retention_plan(tags, keep_last=1, keep_regex="(")
    with pytest.raises(ValueError, match="keep_last"):
        ri.retention_plan(tags, keep_last=-1)


def test_unknown_and_epoch_creation_are_never_deleted_by_age():
    parts = builds(n=3, shared=())
    parts += [image("app", "repro", d("repro"), "1970-01-01T00:00:00Z"),
              image("app", "nodate", d("nodate"), None)]
    tags, _layers = frames(*parts)
    plan = ri.retention_plan(tags, keep_last=1, older_than="1d", now=NOW)
    assert action(plan, "app", "repro") == (
        "keep", "created 1970-01-01 (before 1980): age rules never delete it")
    assert action(plan, "app", "nodate") == ("keep", "created unknown: age rules never delete it")
    assert set(plan.loc[plan["action"] == "delete", "tag"]) == {"v0", "v1"}
    # a name rule alone does delete them: the user named them
    named = ri.retention_plan(tags, delete_regex="repro|nodate")
    assert set(named.loc[named["action"] == "delete", "tag"]) == {"repro", "nodate"}


def test_platforms_collapse_and_no_rule_keeps_everything():
    idx = (d("index"), 300)
    parts = [image("multi", "v1", d("amd"), "2026-10-01T00:00:00Z", (("a", 10),), index=idx),
             image("multi", "v1", d("arm"), "2026-10-02T00:00:00Z", (("b", 20),),
                   platform="linux/arm64", index=idx),
             image("multi", "v1", d("att"), None, (("c", 5),), platform="unknown/unknown",
                   index=idx, is_image=False)]
    tags, _layers = frames(*parts)
    plan = ri.retention_plan(tags)
    assert len(plan) == 1
    row = plan.iloc[0]
    assert row["platforms"] == "linux/amd64,linux/arm64"
    assert row["layer_size"] == 30
    assert row["created_at"] == pd.Timestamp("2026-10-02T00:00:00Z")
    assert row["digest"] == d("index")
    assert (row["action"], row["reason"]) == ("keep", "no deletion rule given")
    assert ri.deletions(plan) == []
    nothing = ri.retention_plan(empty(TAGS_SCHEMA), keep_last=1)
    assert len(nothing) == 0 and list(nothing.columns) == list(PLAN_SCHEMA)


# -- reclaimable -----------------------------------------------------------------------------
def test_reclaimable_counts_unique_blobs_registry_wide():
    base = ("base", 1000)
    parts = [image("one", "old", d("one-old"), "2026-01-01T00:00:00Z", (base, ("one-a", 10))),
             image("one", "new", d("one-new"), "2026-02-01T00:00:00Z", (base, ("one-b", 20))),
             image("two", "old", d("two-old"), "2026-01-01T00:00:00Z", (base, ("one-a", 10))),
             image("two", "gone", d("two-gone"), "2026-01-01T00:00:00Z", (("two-x", 7),))]
    tags, layers = frames(*parts)
    plan = ri.retention_plan(tags, delete_regex="old|gone")
    out = ri.reclaimable(tags, layers, plan)
    assert list(out.columns) == list(RECLAIM_SCHEMA)
    total = out[out["repository"] == TOTAL].iloc[0]
    # "one-a" is freed: both manifests using it go; "base" stays (one:new uses it)
    # freed: manifests one-old, two-old, two-gone (50 each), their configs (10 each),
    # layers one-a (10) and two-x (7)
    assert total["reclaimable_bytes"] == 3 * 50 + 3 * 10 + 10 + 7
    assert total["logical_bytes"] == 1010 + 1010 + 7
    assert total["deleted_tags"] == 3 and total["deleted_manifests"] == 3
    one = out[out["repository"] == "one"].iloc[0]
    assert one["reclaimable_bytes"] == 50 + 10 + 10
    assert total["layer_bytes"] == 17 and total["config_bytes"] == 30
    # keep everything: nothing freed
    keep_all = ri.reclaimable(tags, layers, ri.retention_plan(tags))
    assert keep_all["reclaimable_bytes"].sum() == 0


def test_deleting_an_index_frees_its_platforms_only_with_children():
    idx = (d("index"), 300)
    shared_layer = ("shared", 500)
    parts = [image("m", "v1", d("amd"), "2026-10-01T00:00:00Z", (("a", 10),), index=idx),
             image("m", "v1", d("arm"), "2026-10-01T00:00:00Z", (("b", 20), shared_layer),
                   platform="linux/arm64", index=idx),
             image("m", "keep", d("solo"), "2026-10-05T00:00:00Z", (shared_layer,))]
    tags, layers = frames(*parts)
    plan = ri.retention_plan(tags, delete_regex="v1")
    only_index = ri.reclaimable(tags, layers, plan, children=False)
    assert only_index["reclaimable_bytes"].iloc[-1] == 300
    assert deleted_manifests(tags, plan, children=False) == {("m", d("index"))}
    full = ri.reclaimable(tags, layers, plan)
    # index, both platform manifests (50 each), their configs (10 each), layers a and b
    assert full["reclaimable_bytes"].iloc[-1] == 300 + 2 * 50 + 2 * 10 + 10 + 20
    assert full["deleted_manifests"].iloc[-1] == 3


def test_empty_frames_give_a_zero_total():
    out = ri.reclaimable(empty(TAGS_SCHEMA), empty(LAYERS_SCHEMA),
                         ri.retention_plan(empty(TAGS_SCHEMA), keep_last=1))
    assert out["repository"].tolist() == [TOTAL]
    assert out["reclaimable_bytes"].tolist() == [0]


# -- the command line ------------------------------------------------------------------------
def test_cleanup_command_dry_run_plan_file_then_yes(anonymous_registry, tmp_path, capsys):
    from registry_insights.cli import main
    from tests.support.fleet import push_fleet

    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        push_fleet(client, "cleanup", repositories=1, tags=5, index_every=0)
    url, repo = anonymous_registry.url, "cleanup/r0"
    assert main(["cleanup", url, repo, "--no-cache"]) == 2
    assert "needs a rule" in capsys.readouterr().err
    plan_file = tmp_path / "plan.csv"
    assert main(["cleanup", url, repo, "--keep-last", "2", "--plan", str(plan_file),
                 "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing deleted (--yes deletes 3 tags)" in out
    assert "garbage collection would free" in out and repo in out
    plan = pd.read_csv(plan_file)
    assert sorted(plan.loc[plan["action"] == "delete", "tag"]) == ["v0", "v1", "v2"]
    assert set(plan.columns) == set(PLAN_SCHEMA)
    with ri.RegistryClient(url, cache=None) as client:
        assert client.tags(repo) == ["latest", "v0", "v1", "v2", "v3", "v4"]
        assert main(["cleanup", url, repo, "--keep-last", "2", "--yes", "--no-cache"]) == 0
        assert "3 deleted" in capsys.readouterr().out
        assert client.tags(repo) == ["latest", "v3", "v4"]
    assert main(["cleanup", url, "--keep-last", "2", "--older-than", "3 months"]) == 2
    assert "not a duration" in capsys.readouterr().err


# -- issue 10 item 13: --protect adds to the default protection of latest ----------------------
def test_protect_adds_to_the_default_protection_of_latest():
    # latest sits on the oldest build: only its protection keeps it
    parts = builds(n=4, shared=())
    parts.append(image("app", "latest", d("app-m0"), "2026-10-10T00:00:00Z"))
    parts.append(image("app", "stable", d("app-m1"), "2026-10-11T00:00:00Z"))
    tags, _layers = frames(*parts)
    plan = ri.retention_plan(tags, keep_last=1, protect=("stable",))
    assert action(plan, "app", "latest") == ("keep", "protected tag")
    assert action(plan, "app", "stable") == ("keep", "protected tag")
    assert action(plan, "app", "v0") == ("keep", "digest shared with kept tag latest")
    assert set(plan.loc[plan["action"] == "delete", "tag"]) == {"v2"}
    assert ri.retention_plan(tags, keep_last=1, protect="stable").equals(plan)
    only_stable = ri.retention_plan(tags, keep_last=1, protect=("stable",),
                                    protect_defaults=False)
    assert set(only_stable.loc[only_stable["action"] == "delete", "tag"]) == {
        "latest", "v0", "v2"}


def test_cleanup_protect_stable_keeps_latest_in_the_registry(anonymous_registry, tmp_path,
                                                            capsys):
    from registry_insights.cli import main
    from registry_insights.testing.demo import FleetBuilder

    url, repo = anonymous_registry.url, "protect/app"
    with ri.RegistryClient(url, cache=None) as client:
        fleet = FleetBuilder(client, 13)
        base = fleet.layer(5_000, "protect-base")
        for i, names in enumerate([["v0", "latest"], ["v1", "stable"], ["v2"], ["v3"]]):
            app = fleet.layer(1_000 + i, f"protect-{i}")
            fleet.build(repo, names, {"linux/amd64": [base, app]},
                        f"2026-0{i + 1}-01T00:00:00Z", oci=True)
        plan_file = tmp_path / "plan.csv"
        assert main(["cleanup", url, repo, "--keep-last", "1", "--protect", "stable",
                     "--plan", str(plan_file), "--no-cache"]) == 0
        plan = pd.read_csv(plan_file).set_index("tag")
        assert plan.loc["latest", "action"] == "keep"
        assert plan.loc["latest", "reason"] == "protected tag"
        assert sorted(plan.index[plan["action"] == "delete"]) == ["v2"]
        assert main(["cleanup", url, repo, "--keep-last", "1", "--protect", "stable", "--yes",
                     "--no-cache"]) == 0
        assert "1 deleted" in capsys.readouterr().out
        assert client.tags(repo) == ["latest", "stable", "v0", "v1", "v3"]
        # dropping the default protection is explicit
        assert main(["cleanup", url, repo, "--keep-last", "1", "--protect", "stable",
                     "--no-default-protect", "--yes", "--no-cache"]) == 0
        assert client.tags(repo) == ["stable", "v1", "v3"]
