"""Trying to break issue 14's ``frame_of`` (the tags frame made column by column at its
dtypes) and ``coerce`` skipping columns already cast: whatever the values, the same frame, or
the same error, as ``coerce(pd.DataFrame(columns))``; inputs never changed. Values chosen to
behave alike under pandas 2.1 and 3."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from registry_insights.frames.schema import TAGS_SCHEMA, UTC_NS, coerce, empty, frame_of

SCHEMA = {"s": "string", "i": "Int64", "b": "boolean", "o": "object", "t": UTC_NS}

SAME = {
    "non-str in a string column": {"s": [1, 2.5, True, None, np.nan, "x"]},
    "None everywhere": {c: [None, None] for c in SCHEMA},
    "zero rows": {c: [] for c in SCHEMA},
    "integral floats and NaN in an Int64 column": {"i": [1.0, None, np.nan, 2]},
    "digit strings in an Int64 column": {"i": ["12", "3"]},
    "bools in an Int64 column": {"i": [True, False]},
    "0/1 in a boolean column": {"b": [0, 1, None]},
    "numpy bools and NA in a boolean column": {"b": [np.bool_(True), False, pd.NA]},
    "NaN in a boolean column": {"b": [np.nan, True]},
    "NA in a string column": {"s": [pd.NA, "a"]},
    "times as text": {"t": ["2026-01-01T00:00:00Z", None, "not a time"]},
}

RAISE = {
    "a fraction in an Int64 column": ({"i": [1.5, 2]}, TypeError),
    "an int beyond int64": ({"i": [2 ** 70]}, OverflowError),
    "words in a boolean column": ({"b": ["true", "false"]}, TypeError),
}


def _filled(columns):
    n = len(next(iter(columns.values())))
    return {**{c: [None] * n for c in SCHEMA}, **columns}


@pytest.mark.parametrize("name", list(SAME))
def test_frame_of_is_coerce_of_the_frame_of_objects(name):
    columns = _filled(SAME[name])
    expected = coerce(pd.DataFrame(columns), SCHEMA)
    got = frame_of(dict(columns), SCHEMA)
    pd.testing.assert_frame_equal(got, expected)
    assert {c: str(t) for c, t in got.dtypes.items()} == SCHEMA


@pytest.mark.parametrize("name", list(RAISE))
def test_frame_of_raises_what_coerce_raises(name):
    columns, error = RAISE[name]
    columns = _filled(columns)
    with pytest.raises(error):
        coerce(pd.DataFrame(columns), SCHEMA)
    with pytest.raises(error):
        frame_of(dict(columns), SCHEMA)


def test_frame_of_zero_rows_of_the_tags_schema_is_the_empty_tags_frame():
    got = frame_of({c: [] for c in TAGS_SCHEMA}, TAGS_SCHEMA)
    pd.testing.assert_frame_equal(got, empty(TAGS_SCHEMA))


def test_frame_of_keeps_extra_columns_after_the_schema_and_changes_no_input():
    columns = {"extra": [1, 2], "s": ["a", None], "i": [1, None]}
    before = {k: list(v) for k, v in columns.items()}
    got = frame_of(columns, SCHEMA)
    assert list(got.columns) == [*SCHEMA, "extra"]
    assert columns == before
    assert list(got["s"].astype(object).fillna("-")) == ["a", "-"]
    assert got["i"].isna().tolist() == [False, True]


def test_coerce_of_a_frame_already_cast_gives_a_frame_of_its_own():
    """coerce skips a column already at its dtype: writing to the result must still leave
    the input as it was (pandas 2 without copy on write included)."""
    frame = pd.DataFrame({"s": pd.array(["a", "b"], dtype="string"),
                          "i": pd.array([1, 2], dtype="Int64"),
                          "b": pd.array([True, None], dtype="boolean")})
    out = coerce(frame, {"s": "string", "i": "Int64", "b": "boolean"})
    out.loc[0, "s"] = "z"
    out.loc[0, "i"] = 9
    out.loc[1, "b"] = False
    assert frame["s"].tolist() == ["a", "b"]
    assert frame["i"].tolist() == [1, 2]
    assert frame["b"].isna().tolist() == [False, True]


def test_a_pipeline_whose_pool_was_shut_down_raises_and_does_not_wait_forever():
    from concurrent.futures import ThreadPoolExecutor

    from registry_insights.registry.workers import Pipeline

    executor = ThreadPoolExecutor(2)
    pipeline = Pipeline(executor)
    started, release = threading.Event(), threading.Event()

    def first():
        started.set()
        release.wait(5)
        pipeline.submit(print, "never")  # the pool is shut down by now

    pipeline.submit(first)
    started.wait(5)
    closer = threading.Thread(target=executor.shutdown)  # what client.close() does
    closer.start()
    time.sleep(0.1)
    release.set()
    closer.join(5)
    assert pipeline.wait_idle(0.5), "the pipeline never becomes idle: wait() hangs"
    with pytest.raises(RuntimeError):
        pipeline.wait()
