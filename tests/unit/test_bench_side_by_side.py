"""The side-by-side benchmark (benchmarks/inventory.py --only-side-by-side): no variant always
runs first or after the same other one, and the report says how much the wall ratios move."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import inventory as bench  # noqa: E402


@pytest.mark.parametrize("count", [2, 3, 4, 5, 7])
def test_each_variant_runs_as_often_at_each_position_and_after_each_other(count):
    rows = count if count % 2 == 0 else 2 * count
    orders = [bench.try_order(attempt, count) for attempt in range(rows)]
    assert all(sorted(order) == list(range(count)) for order in orders)
    positions = Counter((position, v) for order in orders for position, v in enumerate(order))
    assert set(positions.values()) == {rows // count}
    assert len(positions) == count * count
    after = Counter((order[i - 1], order[i]) for order in orders for i in range(1, count))
    assert len(after) == count * (count - 1)  # every ordered pair of two variants ...
    assert len(set(after.values())) == 1  # ... equally often
    assert bench.try_order(rows + 1, count) == bench.try_order(1, count)


def _row(name, seconds, cpu=None):
    return {"name": name, "requests": 609, "rows": 270, "max_rss_kib": 140 * 1024,
            "load": 1.0, "all_seconds": list(seconds), "all_cpu": list(cpu or [1.0] * 5),
            "all_gap_ms": [4.0, 5.0, 6.0, 4.5, 5.5], "all_served_ms": [30.0] * 5}


def _cells(lines, start):
    line = next(line for line in lines if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_report_gives_the_median_wall_ratio_its_quartiles_and_the_tries_no_slower():
    rows = [
        _row("registry_insights (this checkout), cache", [1.8, 2.0, 2.2, 2.4, 3.0],
             cpu=[1.1, 1.2, 1.3, 1.2, 1.25]),
        _row("registry_insights (this checkout), cache=None", [2.0] * 5),
        _row("plain requests reference client (8 threads, no cache)", [2.0] * 5),
    ]
    lines = bench.side_by_side_report(rows, 609)
    # wall ratios 0.9, 1.0, 1.1, 1.2, 1.5: median 1.1, quartiles 1.0 and 1.2, two <= 1
    assert _cells(lines, "| registry_insights (this checkout), cache |")[5:8] == \
        ["1.10", "1.00 to 1.20", "2 of 5"]
    assert _cells(lines, "| registry_insights (this checkout), cache |")[12] == "1.20"
    assert _cells(lines, "| registry_insights (this checkout), cache=None |")[5:8] == \
        ["1.00", "1.00 to 1.00", "5 of 5"]
    assert _cells(lines, "| plain requests")[5:8] == ["1.00", "–", "–"]
    assert _cells(lines, "| plain requests")[8:10] == ["5.00", "30.00"]  # gap, served


def test_the_gaps_are_taken_per_connection_between_an_answer_and_the_next_request():
    # (proxy, method, path, status, arrived, answered, connection), seconds
    entries = [
        ("registry", "GET", "/v2/a", 200, 1.000, 1.030, 1),
        ("registry", "GET", "/v2/b", 200, 1.001, 1.021, 2),
        ("registry", "GET", "/v2/c", 200, 1.034, 1.064, 1),  # 4 ms after /v2/a's answer
        ("registry", "GET", "/v2/d", 200, 1.027, 1.047, 2),  # 6 ms after /v2/b's
        ("token", "GET", "/token", 200, 0.900, 0.920, 1),  # another proxy: no gap with a
        ("registry", "GET", "/v2/e", 200, None, 1.100, 1),  # never arrived: left out
    ]
    gap, served = bench.connection_times(entries)
    assert round(gap, 6) == 5.0
    assert round(served, 6) == round((30 + 20 + 30 + 20 + 20) / 5, 6)
