"""The ``registry-insights`` command line."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from registry_insights.cli import main

pytestmark = pytest.mark.integration


def test_demo_command_writes_the_report(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "stored (unique blobs)" in out and "(total)" in out
    repos = pd.read_csv(tmp_path / "out" / "repositories.csv")
    assert len(repos) == 13
    total = repos[repos["repository"] == "(total)"].iloc[0]
    assert total["unique_bytes"] == total[["layer_bytes", "config_bytes", "manifest_bytes"]].sum()
    tags = pd.read_csv(tmp_path / "out" / "tags.csv")
    assert len(tags) > 300


def test_report_and_tag_with_password_from_stdin(demo_registry, basic_registry, tmp_path,
                                                  capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(basic_registry.password + "\n"))
    from fleet import push_fleet

    import registry_insights as ri

    with ri.RegistryClient(basic_registry.url, username="alice",
                           password=basic_registry.password, cache=None) as client:
        seeded = push_fleet(client, "cli", repositories=1, tags=2, index_every=0)
    code = main(["report", basic_registry.url, "--username", "alice", "--password-stdin",
                 "--no-cache", "--repository", "cli/r0", "-o", str(tmp_path / "r")])
    assert code == 0
    tags = pd.read_csv(tmp_path / "r" / "tags.csv")
    assert sorted(tags["tag"]) == ["latest", "v0", "v1"]
    capsys.readouterr()
    monkeypatch.setenv("REGISTRY_INSIGHTS_PASSWORD", basic_registry.password)
    assert main(["tag", basic_registry.url, "cli/r0", "v1", "--username", "alice",
                 "--no-cache"]) == 0
    shown = json.loads(capsys.readouterr().out)
    truth = [i for i in seeded if i.tag == "v1"][0]
    assert shown["digest"] == truth.digest
    assert shown["images"][0]["layer_size"] == truth.layer_size


def test_bad_input_exits_2_with_the_bad_value(capsys):
    assert main(["tag", "127.0.0.1:9", "Bad/Repo", "v1", "--no-cache"]) == 2
    assert "'Bad/Repo'" in capsys.readouterr().err
