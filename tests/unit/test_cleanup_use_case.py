"""The shared cleanup use case (read -> plan -> apply -> tally) on hand-made frames, with the
registry's two steps given as plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import pytest

from registry_insights.analysis.cleanup import (
    AUDIT_SCHEMA,
    KEPT,
    apply_cleanup,
    delete_per_repository,
    outcome,
    plan_cleanup,
    tally,
)
from registry_insights.analysis.storage import TOTAL
from registry_insights.errors import CatalogUnavailable, NotFound
from tests.integration.test_retention import NOW, d, frames, image


@dataclass
class FakeInventory:
    repositories: list
    tag_frame: pd.DataFrame
    layer_frame: pd.DataFrame

    def tags(self, attestations=False):
        return self.tag_frame

    def layers(self, attestations=False):
        return self.layer_frame


@dataclass
class Result:
    repository: str
    tag: str
    digest: str | None
    status: str
    message: str = ""


def registry():
    """app: v0..v3 a day apart (v3 also latest), sharing layer base; other: one tag on base."""
    parts = [image("app", f"v{i}", d(f"app{i}"), NOW - timedelta(days=10 - i),
                   layers=(("base", 1000), (f"own{i}", 100 + i)))
             for i in range(4)]
    parts.append(image("app", "latest", d("app3"), NOW - timedelta(days=7),
                       layers=(("base", 1000), ("own3", 103))))
    parts.append(image("other", "x", d("other"), NOW, layers=(("base", 1000),)))
    tags, layers = frames(*parts)
    return FakeInventory(["app", "other"], tags, layers)


def test_plan_reads_the_whole_registry_and_narrows_to_the_repositories_named():
    seen = []

    def read(repos):
        seen.append(repos)
        return registry()

    planned = plan_cleanup(read, ["app"], keep_last=2, now=NOW)
    assert seen == [None] and planned.complete and planned.repositories == ("app",)
    assert sorted(planned.plan.loc[planned.plan["action"] == "delete", "tag"]) == ["v0", "v1"]
    assert [t for _r, t, _d in planned.deletions] == ["v1", "v0"]
    # the shared base layer stays (other uses it): only the own layers, configs, manifests
    assert planned.summary["repository"].tolist() == ["app", TOTAL]
    assert planned.total["tags"] == 5 and planned.total["deleted_tags"] == 2
    assert planned.reclaimable_bytes == 100 + 101 + 2 * 10 + 2 * 50


def test_without_a_catalog_only_the_named_repositories_are_read():
    calls = []

    def read(repos):
        calls.append(repos)
        if repos is None:
            raise CatalogUnavailable("no catalog")
        return registry()

    planned = plan_cleanup(read, ["app"], keep_last=3, now=NOW)
    assert calls == [None, ["app"]] and not planned.complete
    with pytest.raises(CatalogUnavailable):
        plan_cleanup(read, [], keep_last=3)
    with pytest.raises(NotFound, match="'nope'"):
        plan_cleanup(lambda repos: registry(), ["app", "nope"], keep_last=1)


def test_apply_records_every_tag_with_its_result_and_time():
    planned = plan_cleanup(lambda repos: registry(), [], keep_last=1, now=NOW)
    asked = []
    times = iter(pd.Timestamp("2026-11-02T00:00:00Z") + pd.Timedelta(seconds=s)
                 for s in range(10))

    def delete_many(items):
        asked.append(list(items))
        return [Result(r, t, dg, "failed" if t == "v0" else "deleted", f"did {t}")
                for r, t, dg in items]

    audit = apply_cleanup(planned, delete_many, clock=lambda: next(times))
    assert asked == [[("app", "v2", d("app2")), ("app", "v1", d("app1")),
                      ("app", "v0", d("app0"))]]  # one call per repository
    assert dict(audit.dtypes.astype(str)) == AUDIT_SCHEMA
    assert len(audit) == len(planned.plan) == 6
    rows = {t: (a, r, m) for t, a, r, m in zip(audit["tag"], audit["action"], audit["result"],
                                                audit["message"])}
    assert rows["v0"] == ("delete", "failed", "did v0")
    assert rows["v2"] == ("delete", "deleted", "did v2")
    assert rows["latest"] == ("keep", KEPT, "protected tag")
    assert rows["x"][:2] == ("keep", KEPT)
    deleted_at = audit.loc[audit["action"] == "delete", "time"].unique()
    assert list(deleted_at) == [pd.Timestamp("2026-11-02T00:00:00Z")]
    counts = tally(audit)
    assert counts == {"deleted": 2, "failed": 1} and outcome(counts) == "partial"
    assert outcome({"failed": 2}) == "failed" and outcome({"deleted": 1, "absent": 1}) == "ok"
    assert outcome({}) == "ok"


def test_nothing_to_delete_calls_nothing_and_keeps_the_schema():
    planned = plan_cleanup(lambda repos: registry(), [], keep_last=10, now=NOW)
    audit = apply_cleanup(planned, lambda items: pytest.fail("nothing to delete"))
    assert set(audit["result"]) == {KEPT} and tally(audit) == {}
    empty_plan = plan_cleanup(lambda repos: FakeInventory([], registry().tag_frame.iloc[:0],
                                                          registry().layer_frame.iloc[:0]),
                              [], keep_last=1)
    audit = apply_cleanup(empty_plan, lambda items: [])
    assert len(audit) == 0 and dict(audit.dtypes.astype(str)) == AUDIT_SCHEMA


def test_deletes_go_one_call_per_repository_and_what_was_done_survives_an_error():
    items = [("b", "1", "d1"), ("a", "1", "d2"), ("b", "2", "d3"), ("c", "1", "d4")]
    asked = []

    def delete_many(group):
        asked.append(list(group))
        if group[0][0] == "a":
            raise OSError("connection reset")
        return [Result(r, t, dg, "deleted") for r, t, dg in group]

    done = []
    with pytest.raises(OSError, match="connection reset"):
        for repository, group, results in delete_per_repository(items, delete_many):
            done.append((repository, [t for _r, t, _d in group], [r.tag for r in results]))
    assert done == [("b", ["1", "2"], ["1", "2"])]  # the repository done before the error is kept
    assert asked == [[("b", "1", "d1"), ("b", "2", "d3")], [("a", "1", "d2")]]  # "c" untouched
