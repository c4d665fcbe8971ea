"""The live benchmark's warm and fresh tries (benchmarks/live.py --warm-repeat): medians,
quartiles and the CPU ratio paired within each try."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import live as bench  # noqa: E402


def _try(**cpu):
    return {label.replace("_", " "): {"cpu": seconds} for label, seconds in cpu.items()}


def test_warm_tries_are_summarised_per_checkout_with_ratios_paired_by_try():
    # the machine's speed drifts between tries; the other checkout is 10 % slower in each
    tries = [_try(this=3.0, other=3.3), _try(other=5.5, this=5.0), _try(this=4.0, other=4.4),
             _try(other=3.96, this=3.6)]
    rows = bench.summarise_warm(tries, tags=20_000)
    assert [r["checkout"] for r in rows] == ["this", "other"]
    this, other = rows
    assert this["tries"] == other["tries"] == 4
    assert this["cpu_ms_per_tag"] == pytest.approx((3.6 + 4.0) / 2 / 20)  # median, ms per tag
    assert this["ratio"] == 1 and this["no_slower"] == 4
    assert other["ratio"] == pytest.approx(1.1) and other["no_slower"] == 0
    low, high = other["quartiles"]
    assert 3.3 / 20 < low < high < 5.5 / 20


def test_one_try_has_its_own_value_as_both_quartiles():
    rows = bench.summarise_warm([_try(this=2.0)], tags=1000)
    assert rows == [{"checkout": "this", "tries": 1, "cpu_ms_per_tag": 2.0,
                     "quartiles": (2.0, 2.0), "ratio": 1.0, "no_slower": 1}]


def test_warm_repeat_is_zero_or_more():
    with pytest.raises(SystemExit):
        bench.main(["--warm-repeat", "-1"])
    assert bench._at_least_zero("0") == 0 and bench._at_least_zero("8") == 8
