"""The one delete rule (registry_insights.registry.delete_plan): cases and a property test."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from registry_insights.registry.delete_plan import plan_deletes, reachable


def test_sibling_tag_keeps_the_manifest():
    plan = plan_deletes({"a": "M", "b": "M"}, {}, ["a"])
    assert plan.manifests == () and plan.untag == ("a",)
    assert plan.kept_for == {"a": ("b",)}
    assert plan.removed_tags == ("a",)


def test_every_tag_on_a_digest_deletes_it():
    plan = plan_deletes({"a": "M", "b": "M", "c": "N"}, {}, ["a", "b"])
    assert plan.manifests == ("M",) and plan.untag == () and plan.children == ()


def test_nested_index_keeps_a_platform_manifest_another_tag_names():
    # release -> J -> I1 -> M, amd64-build -> M: deleting amd64-build must not break release
    tags = {"release": "J", "amd64-build": "M"}
    children = {"J": ["I1"], "I1": ["M", "A"]}
    plan = plan_deletes(tags, children, ["amd64-build"])
    assert plan.deleted == ()
    assert plan.untag == ("amd64-build",) and plan.kept_for["amd64-build"] == ("release",)


def test_deleting_a_nested_index_takes_what_it_lists_at_any_depth():
    tags = {"release": "J", "other": "K"}
    children = {"J": ["I1", "X"], "I1": ["M", "A"], "K": ["A"]}
    plan = plan_deletes(tags, children, ["release"])
    assert plan.manifests == ("J",)
    assert plan.children == ("I1", "M", "X")  # A stays: "other" reaches it
    assert plan_deletes(tags, children, ["release"], with_children=False).children == ()


def test_digest_delete_takes_every_tag_even_when_an_index_lists_it():
    tags = {"multi": "I", "amd": "M", "amd-copy": "M"}
    plan = plan_deletes(tags, {"I": ["M"]}, digests=["M"])
    assert plan.manifests == ("M",) and plan.removed_tags == ("amd", "amd-copy")
    assert plan.children == ()


def test_missing_tags_are_reported_not_planned():
    plan = plan_deletes({"a": "M"}, {}, ["a", "ghost"])
    assert plan.missing == ("ghost",) and plan.manifests == ("M",)


def test_reachable_ends_on_cycles():
    assert reachable(["A"], {"A": ["B"], "B": ["A", "C"]}) == {"A", "B", "C"}


# -- property: never plan away what a surviving tag reaches -----------------------------------

DIGESTS = [f"d{i}" for i in range(12)]


@st.composite
def repositories(draw):
    children = {}
    for digest in draw(st.lists(st.sampled_from(DIGESTS), unique=True, max_size=6)):
        # any other digest, so indexes nest (and even cycle: the planner must end anyway)
        children[digest] = draw(st.lists(st.sampled_from(DIGESTS), max_size=4))
    names = draw(st.lists(st.sampled_from([f"t{i}" for i in range(10)]), unique=True,
                          min_size=1, max_size=10))
    tags = {name: draw(st.sampled_from(DIGESTS)) for name in names}
    delete = draw(st.lists(st.sampled_from(names + ["missing"]), unique=True))
    forced = draw(st.lists(st.sampled_from(DIGESTS), max_size=2, unique=True))
    return tags, children, delete, forced, draw(st.booleans())


@settings(max_examples=400, deadline=None)
@given(repositories())
def test_planner_never_deletes_what_a_surviving_tag_reaches(repository):
    tags, children, delete, forced, with_children = repository
    plan = plan_deletes(tags, children, delete, digests=forced, with_children=with_children)
    removed = set(plan.removed_tags)
    survivors = {t: d for t, d in tags.items() if t not in removed}
    reached = reachable(survivors.values(), children)
    # nothing a surviving tag reaches goes, except a digest asked for by digest
    assert not (set(plan.deleted) - set(forced)) & reached
    # exactly the asked tags that exist (and the tags on forced digests) are removed
    assert removed == ({t for t in delete if t in tags}
                       | {t for t, d in tags.items() if d in forced})
    # each removed tag goes with its manifest or alone, never both, never neither
    for tag in removed:
        assert (tags[tag] in plan.manifests) != (tag in plan.untag)
    # a manifest deleted by digest had only removed tags on it
    for digest in plan.manifests:
        assert all(t in removed for t, d in tags.items() if d == digest)
    # children come from deleted manifests, only with_children
    assert set(plan.children) <= reachable(plan.manifests, children)
    assert with_children or not plan.children
