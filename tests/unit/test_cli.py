"""The command line without a registry: reference parsing, usage errors and their exit status,
``--help`` texts, shell completion (argcomplete), output formats."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from registry_insights.cli import build_parser, main
from registry_insights.cli.common import Output, Target, UsageError, legacy_image, parse_target
from registry_insights.errors import InvalidReference

COMMANDS = ["ls", "inspect", "manifest", "config", "digest", "rm", "pull", "tag", "report",
            "demo", "diff", "cleanup"]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("localhost:5000", Target("localhost:5000")),
    ("localhost:5000/team/", Target("localhost:5000", "team", prefix=True)),
    ("registry.example.com/team/app", Target("registry.example.com", "team/app")),
    ("127.0.0.1:5000/team/app:v1.2", Target("127.0.0.1:5000", "team/app", "v1.2")),
    (f"[::1]:5000/app@{DIGEST}", Target("[::1]:5000", "app", None, DIGEST)),
    (f"host.io/a/b:v1@{DIGEST}", Target("host.io", "a/b", "v1", DIGEST)),
    ("https://host.io:8443/a/b:v1", Target("https://host.io:8443", "a/b", "v1")),
    ("http://localhost:5000/v2/", Target("http://localhost:5000", "v2", prefix=True)),
    ("localhost:5000/v2", Target("localhost:5000")),
])
def test_references_parse_like_docker_writes_them(text, expected):
    assert parse_target(text) == expected


def test_reference_errors_name_the_bad_part():
    with pytest.raises(InvalidReference, match="'Team/App'"):
        parse_target("localhost:5000/Team/App:v1")
    with pytest.raises(InvalidReference, match="'-bad'"):
        parse_target("localhost:5000/app:-bad")
    with pytest.raises(InvalidReference, match="sha256:12"):
        parse_target("localhost:5000/app@sha256:12")
    with pytest.raises(UsageError, match="names no repository"):
        parse_target("localhost:5000", repository=True)
    with pytest.raises(UsageError, match="no tag or digest"):
        parse_target("localhost:5000/app", reference=True)
    assert legacy_image("http://127.0.0.1:5000", "team/app:v1") == Target(
        "http://127.0.0.1:5000", "team/app", "v1")
    with pytest.raises(InvalidReference, match="names a registry"):
        legacy_image("127.0.0.1:5000", "other.io/team/app:v1")


@pytest.mark.parametrize("argv", [
    ["inspect", "127.0.0.1:9"],                       # no repository
    ["inspect", "127.0.0.1:9/Bad/Name:v1"],           # bad repository
    ["digest", "127.0.0.1:9/app@sha256:12"],          # bad digest
    ["ls", "127.0.0.1:9/app:v1"],                     # ls takes no tag
    ["rm", "127.0.0.1:9/app", "--yes"],               # rm needs a tag or digest
    ["pull", "127.0.0.1:9/app:v1"],                   # no directory
    ["tag", "127.0.0.1:9", "app"],                    # two operands
    ["cleanup", "127.0.0.1:9/app"],                   # no rule
    ["cleanup", "127.0.0.1:9", "--keep-last", "2", "--log", "x.csv"],  # --log without --yes
    ["cleanup", "127.0.0.1:9", "--older-than", "3 months"],  # argparse: not a duration
    ["inspect", "127.0.0.1:9/app:v1", "--platform", "linux"],
    ["ls", "127.0.0.1:9", "--format", "yaml"],
    ["nosuchcommand"], ["ls"], [],
])
def test_usage_errors_exit_2_with_a_message(argv, capsys):
    assert main(argv) == 2
    assert "registry-insights" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_a_whole_number_of_at_least_one(workers, capsys):
    assert main(["ls", "127.0.0.1:9", "--no-cache", "--workers", workers]) == 2
    assert f"'{workers}' is not a whole number >= 1" in capsys.readouterr().err


def test_password_stdin_without_a_username_is_refused_before_reading_it(capsys, monkeypatch):
    import io

    monkeypatch.delenv("REGISTRY_INSIGHTS_USERNAME", raising=False)
    stdin = io.StringIO("s3cret\n")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["ls", "127.0.0.1:9", "--no-cache", "--password-stdin"]) == 2
    err = capsys.readouterr().err
    assert "--password-stdin needs --username" in err and "s3cret" not in err
    assert stdin.tell() == 0  # not read: nothing sent anywhere


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name, capsys):
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert "example:\n  registry-insights " + name in text
    assert "--format" in text and "--quiet" in text


def test_top_level_help_lists_commands_and_exit_statuses(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"    {name} " in text for name in COMMANDS)
    assert "3 partly done" in text and "HOST[:PORT][/PREFIX]/REPOSITORY[:TAG|@DIGEST]" in text


def complete(line: str, tmp_path) -> list[str]:
    """What bash completion offers for ``line`` (argcomplete's protocol, as the shell hook
    runs it)."""
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
           "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "PYTHONPATH": os.getcwd()}
    subprocess.run([sys.executable, "-m", "registry_insights.cli"], env=env, check=False,
                   capture_output=True, timeout=60)
    return sorted(out.read_text().split()) if out.exists() else []


def test_shell_completion_offers_commands_and_options(tmp_path):
    assert complete("registry-insights ", tmp_path) == sorted(COMMANDS + ["--help", "--version",
                                                                          "-h"])
    assert complete("registry-insights cleanup --keep", tmp_path) == ["--keep-last",
                                                                     "--keep-regex"]
    assert complete("registry-insights ls host --format ", tmp_path) == ["csv", "json", "table"]


def test_console_script_points_to_main():
    from importlib.metadata import entry_points
    from pathlib import Path

    text = Path("pyproject.toml").read_text()
    assert 'registry-insights = "registry_insights.cli:main"' in text
    assert '"argcomplete>=3",' in text.split("[project.optional-dependencies]")[0]
    (script,) = [e for e in entry_points(group="console_scripts")
                 if e.name == "registry-insights"]
    assert script.load() is main
    assert Path("registry_insights/cli/__init__.py").read_text().startswith(
        "# PYTHON_ARGCOMPLETE_OK")
    assert build_parser().prog == "registry-insights"


def test_output_formats_keep_exact_values():
    records = [{"tag": "v1", "digest": DIGEST, "size": 1536,
                "created_at": pd.Timestamp("2026-01-02T03:04:05Z"), "platforms": ["a", "b"]},
               {"tag": "v2", "digest": None, "size": pd.NA, "created_at": pd.NaT,
                "platforms": []}]
    columns = [("tag", "text"), ("digest", "digest"), ("size", "bytes"), ("created_at", "time"),
               ("platforms", "text")]
    out = io.StringIO()
    Output("json", stdout=out).rows(records, columns)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"tag": "v1", "digest": DIGEST, "size": 1536, "created_at": "2026-01-02T03:04:05Z",
         "platforms": ["a", "b"]},
        {"tag": "v2", "digest": None, "size": None, "created_at": None, "platforms": []}]
    out = io.StringIO()
    Output("csv", stdout=out).rows(records, columns)
    assert out.getvalue().splitlines() == [
        "tag,digest,size,created_at,platforms",
        f"v1,{DIGEST},1536,2026-01-02T03:04:05Z,\"a,b\"", "v2,,,,"]
    out = io.StringIO()
    Output("table", stdout=out).rows(records, columns)
    assert out.getvalue().splitlines() == [
        "TAG  DIGEST               SIZE     CREATED_AT           PLATFORMS",
        f"v1   {DIGEST[:19]}  1.5 KiB  2026-01-02 03:04:05  a,b",
        "v2   -                          -  -                    -"]


def test_quiet_silences_status_lines_not_notes():
    err = io.StringIO()
    quiet = Output("table", quiet=True, stderr=err)
    with quiet.phase("slow step", after=0):
        quiet.status("a status")
    quiet.note("a warning")
    assert err.getvalue() == "note: a warning\n" and quiet.progress is False
    err = io.StringIO()
    loud = Output("table", stderr=err)
    with loud.phase("quick step"):  # under a second: silent
        pass
    with loud.phase("slow step", after=0):
        pass
    assert err.getvalue() == "slow step ...\n" and loud.progress is None
