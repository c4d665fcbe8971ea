"""frames/schema.py: declared dtypes and the time parsing every frame goes through. Run under
the newest pandas and, in CI, the oldest that pyproject.toml allows (.ci/oldest-pandas)."""

from __future__ import annotations

import pandas as pd
import pytest

from registry_insights.analysis.retention import collapse_platforms, retention_plan
from registry_insights.frames.schema import (
    ERRORS_SCHEMA,
    LAYERS_SCHEMA,
    TAGS_SCHEMA,
    UTC_NS,
    coerce,
    empty,
    frame_of,
    utc_ns,
)


@pytest.mark.parametrize("schema", [TAGS_SCHEMA, LAYERS_SCHEMA, ERRORS_SCHEMA])
def test_empty_frames_keep_columns_and_dtypes(schema):
    frame = empty(schema)
    assert {c: str(t) for c, t in frame.dtypes.items()} == schema


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "1677-09-21T00:12:43Z",
                                  "2262-04-12T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
                                  "0001-01-01T00:00:00+02:00"])
def test_times_outside_the_nanosecond_range_are_nat(text):
    values = pd.Series([text, "2026-01-02T03:04:05.123456789Z", "2026-01-02T05:04:05+02:00"])
    parsed = utc_ns(values)
    assert str(parsed.dtype) == UTC_NS
    assert pd.isna(parsed.iloc[0])
    assert parsed.iloc[1] == pd.Timestamp("2026-01-02T03:04:05.123456789", tz="UTC")
    assert parsed.iloc[2] == pd.Timestamp("2026-01-02T03:04:05", tz="UTC")


def test_only_out_of_range_times_still_give_a_utc_ns_column():
    parsed = utc_ns(pd.Series(["0001-01-01T00:00:00Z", None, "not a time"]))
    assert str(parsed.dtype) == UTC_NS and parsed.isna().all()


def test_datetimes_of_other_resolutions_are_cast():
    stamps = pd.Series(pd.to_datetime(["2026-01-02T03:04:05Z"], utc=True)).astype(
        "datetime64[ns, UTC]")
    assert utc_ns(stamps).iloc[0] == pd.Timestamp("2026-01-02T03:04:05", tz="UTC")
    naive = pd.Series(pd.to_datetime(["2026-01-02T03:04:05"]))
    assert str(utc_ns(naive).dtype) == UTC_NS


def test_a_cosign_signature_row_does_not_sink_the_tags_frame():
    rows = pd.DataFrame({
        "repository": ["app", "app", "app"], "tag": ["v1", "v2", "sha256-" + "a" * 64 + ".sig"],
        "digest": ["sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64],
        "platform": ["linux/amd64", "linux/amd64", "unknown/unknown"],
        "created_at": ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "0001-01-01T00:00:00Z"],
        "is_image": [True, True, False], "subject": [None, None, "sha256:" + "a" * 64],
        "layer_size": [10, 20, 1],
    })
    tags = coerce(rows, TAGS_SCHEMA)
    assert {c: str(t) for c, t in tags[list(TAGS_SCHEMA)].dtypes.items()} == TAGS_SCHEMA
    assert pd.isna(tags.loc[2, "created_at"])
    assert len(collapse_platforms(tags)) == 3
    plan = retention_plan(tags, keep_last=1).set_index("tag")
    assert plan.loc["v1", "action"] == "delete"
    assert plan.loc["sha256-" + "a" * 64 + ".sig", "action"] == "delete"  # with its subject
    assert plan.loc["v2", "action"] == "keep"


def test_coerce_leaves_its_input_alone_and_gives_a_frame_of_its_own():
    given = pd.DataFrame({"repository": ["a", "b"], "size": [1, 2],
                          "created_at": ["2026-01-01T00:00:00Z", "bad"], "extra": [1.5, 2.5]})
    before = given.copy()
    out = coerce(given, {"repository": "string", "size": "Int64", "created_at": UTC_NS,
                         "tag": "string"})
    assert list(out.columns) == ["repository", "size", "created_at", "tag", "extra"]
    assert str(out["size"].dtype) == "Int64" and str(out["created_at"].dtype) == UTC_NS
    assert out["tag"].isna().all() and out["created_at"].isna().tolist() == [False, True]
    pd.testing.assert_frame_equal(given, before)  # no column added, none cast
    out.loc[0, "extra"] = 9.0
    out.loc[0, "repository"] = "z"
    assert given["extra"].tolist() == [1.5, 2.5] and given["repository"].tolist() == ["a", "b"]


def test_frame_of_equals_coerce_of_the_same_lists():
    """The tags frame is made column by column at its dtypes (frame_of): the same frame as
    casting a frame of objects, missing values, times and extra columns included."""
    columns = {"repository": ["a", None, "c"], "size": [1, None, 3],
               "is_image": [True, False, None],
               "created_at": ["2026-01-01T00:00:00Z", "bad", None],
               "config": [{"a": 1}, None, {}], "extra": [1, 2, 3]}
    schema = {"repository": "string", "size": "Int64", "is_image": "boolean",
              "created_at": UTC_NS, "config": "object", "tag": "string"}
    out = frame_of(columns, schema)
    pd.testing.assert_frame_equal(out, coerce(pd.DataFrame(columns), schema))
    assert list(out.columns) == [*schema, "extra"]
    assert out["size"].tolist() == [1, pd.NA, 3]


@pytest.mark.parametrize(("values", "dtype"), [([1.5], "Int64"), (["x"], "Int64"),
                                                (["yes"], "boolean")])
def test_frame_of_values_that_do_not_cast_raise_as_coerce_does(values, dtype):
    with pytest.raises((TypeError, ValueError)):
        coerce(pd.DataFrame({"c": values}), {"c": dtype})
    with pytest.raises((TypeError, ValueError)):
        frame_of({"c": values}, {"c": dtype})


def test_coerce_of_columns_already_cast_still_gives_a_frame_of_its_own():
    given = pd.DataFrame({"repository": pd.array(["a", "b"], dtype="string"),
                          "size": pd.array([1, 2], dtype="Int64")})
    out = coerce(given, {"repository": "string", "size": "Int64"})
    out.loc[0, "size"] = 9
    out.loc[0, "repository"] = "z"
    assert given["size"].tolist() == [1, 2] and given["repository"].tolist() == ["a", "b"]
