"""units: byte counts for people, and back."""

from __future__ import annotations

import pytest

from registry_insights.units import format_bytes, parse_bytes


@pytest.mark.parametrize(("text", "expected"), [
    ("500GiB", 500 * 2**30),
    ("1.5 TB", 1_500_000_000_000),
    ("2048", 2048),
    (" 10 mib ", 10 * 2**20),
    ("100B", 100),
    ("3k", 3000),
    ("2 EiB", 2 * 2**60),
    ("1_000", 1000),
    (4096, 4096),
    (1.5 * 2**20, 1572864),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "lots", "-1GiB", "5 GiBs", "nan", float("inf"),
                                  "1.5.2MiB"])
def test_parse_bytes_rejects_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="is not a size"):
        parse_bytes(text)


def test_parse_bytes_round_trips_format_bytes():
    for value in (0, 512, 1536, 3 * 2**40):
        assert parse_bytes(format_bytes(value, precision=3)) == value
