"""Splitting a walk into shards: whole repositories, balanced by tag count, order kept."""

from __future__ import annotations

from registry_insights.frames.inventory import split_shards


def test_shards_keep_repositories_whole_and_balance_tags():
    pairs = [("big", f"t{i}") for i in range(6)] + [("mid", f"t{i}") for i in range(4)] + \
        [("a", "t0"), ("a", "t1"), ("b", "t0"), ("c", "t0")]
    groups = split_shards(pairs, 2)
    assert sorted(map(len, groups)) == [7, 7]
    assert sorted(p for g in groups for p in g) == sorted(pairs)
    for group in groups:
        repos = {r for r, _ in group}
        assert all(sum(1 for r, _ in g if r in repos) == 0 for g in groups if g is not group)


def test_never_more_shards_than_repositories():
    assert split_shards([("a", "1"), ("a", "2")], 8) == [[("a", "1"), ("a", "2")]]
    assert split_shards([], 4) == []
