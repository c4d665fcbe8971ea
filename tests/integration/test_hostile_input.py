"""Hostile command-line input (issue 10 item 11) against a real registry (anonymous mode):
regular expressions that backtrack catastrophically, sizes, times and ages out of range. Each
ends in a clear error with exit status 2, never a hang or a traceback; the parsing functions
refuse the same values for every caller (Python API included)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.cli import main
from registry_insights.errors import InvalidValue

LONG_TAG = "a" * 40 + "-"  # 41 characters: 2**40 ways for (a+)+ or (a|a)+ to fail on it


@pytest.fixture(scope="module")
def hostile(anonymous_registry):
    from registry_insights.testing.demo import FleetBuilder

    repo = "hostile/app"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 10)
        layer = fleet.layer(2_000, "hostile")
        fleet.build(repo, [LONG_TAG], {"linux/amd64": [layer]}, "2025-01-01T00:00:00Z",
                    oci=True)
        fleet.build(repo, ["aaaa"], {"linux/amd64": [fleet.layer(1_000, "h2")]},
                    "2025-02-01T00:00:00Z", oci=True)
        fleet.build(repo, ["latest"], {"linux/amd64": [fleet.layer(1_000, "h3")]},
                    "2025-03-01T00:00:00Z", oci=True)
    return anonymous_registry.url, repo


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``registry-insights ARGS`` in its own process: a hang fails the test, not the run."""
    env = {**os.environ, "PYTHONPATH": str(Path(ri.__file__).parent.parent)}
    try:
        return subprocess.run([sys.executable, "-m", "registry_insights.cli", *args],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"registry-insights {' '.join(args)} still ran after {timeout} s")


def test_regex_that_backtracks_is_matched_with_a_time_limit(hostile, tmp_path):
    url, repo = hostile
    plan_file = tmp_path / "plan.csv"
    # (a+)+$ : the regex engine answers at once (no match: the tag ends in '-')
    done = cli("cleanup", url, repo, "--delete-regex", "(a+)+$", "--plan", str(plan_file),
               "--no-cache")
    assert done.returncode == 0, done.stderr
    plan = pd.read_csv(plan_file).set_index("tag")
    assert plan.loc[LONG_TAG, "action"] == "keep"
    assert plan.loc["aaaa", "action"] == "delete"
    # (a|a)+$ : exponential even there: cut off after the limit, a clear error, exit 2
    refused = cli("cleanup", url, repo, "--delete-regex", "(a|a)+$", "--yes", "--no-cache")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert f"'(a|a)+$' took more than 1 s on tag '{LONG_TAG}'" in refused.stderr
    assert "catastrophic backtracking" in refused.stderr
    with ri.RegistryClient(url, cache=None) as client:  # and nothing was deleted
        assert client.tags(repo) == sorted([LONG_TAG, "aaaa", "latest"])


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "{url}", "-o", "{out}", "--capacity", "1e300EiB"],
     "argument --capacity: '1e300EiB' is too large a size: at most 9223372036854775807 bytes"),
    (["report", "{url}", "-o", "{out}", "--now", "0001-01-01"],
     "argument --now: time '0001-01-01' is out of range: give a time between 1677-09-22 and "
     "2262-04-11"),
    (["cleanup", "{url}", "{repo}", "--keep-last", "1", "--now", "0001-01-01"],
     "argument --now: time '0001-01-01' is out of range"),
    (["cleanup", "{url}", "{repo}", "--older-than", "99999999999d"],
     "argument --older-than: age '99999999999d' is too long: at most 36500d (100 years)"),
    (["cleanup", "{url}", "{repo}", "--delete-regex", "(unclosed"],
     "argument --delete-regex: regular expression '(unclosed' is not a regular expression"),
])
def test_out_of_range_values_exit_2_naming_the_value(hostile, tmp_path, capsys, argv, message):
    url, repo = hostile
    argv = [a.format(url=url, repo=repo, out=tmp_path / "r") for a in argv] + ["--no-cache"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "r").exists()


def test_the_python_api_refuses_the_same_values(hostile, tmp_path):
    url, repo = hostile
    with ri.RegistryClient(url, cache=None) as client:
        inv = ri.fetch_inventory(client, [repo])
    tags = inv.tags()
    with pytest.raises(InvalidValue, match="too long"):
        ri.retention_plan(tags, older_than="99999999999d")
    with pytest.raises(InvalidValue, match="out of range"):
        ri.retention_plan(tags, older_than="90d", now="0001-01-01")
    with pytest.raises(InvalidValue, match="took more than 1 s"):
        ri.retention_plan(tags, delete_regex="(a|a)+$")
    with pytest.raises(InvalidValue, match="too large a size"):
        ri.parse_bytes("1e300EiB")
    with pytest.raises(InvalidValue, match="out of range"):
        ri.report.write_report(inv, tmp_path, now="9999-01-01", plots=False, html=False)
    assert list(tmp_path.iterdir()) == []
    # the longest age at the earliest and the latest "now": plans, not overflows
    plan = ri.retention_plan(tags, older_than="36500d", now="1677-09-22")
    assert set(plan["action"]) == {"keep"}
    plan = ri.retention_plan(tags, older_than="36500d", now="2262-04-11")  # 2025 < 2162
    assert sorted(plan.loc[plan["action"] == "delete", "tag"]) == sorted([LONG_TAG, "aaaa"])
