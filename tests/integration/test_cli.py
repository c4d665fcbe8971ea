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
    captured = capsys.readouterr()
    out = captured.out
    assert "stored (unique blobs)" in out and "(total)" in out
    # every phase that takes seconds says so: start, seeding, the walk, the report
    status = [line[:-4] for line in captured.err.splitlines() if line.endswith(" ...")]
    assert status[0] == "starting the demo registry (CNCF Distribution on loopback)"
    assert status[1].startswith("seeding the demo fleet at http://127.0.0.1")
    assert status[2].startswith("reading http://127.0.0.1")
    assert "356 tags seeded" in captured.err
    repos = pd.read_csv(tmp_path / "out" / "repositories.csv")
    assert len(repos) == 15
    total = repos[repos["repository"] == "(total)"].iloc[0]
    assert total["unique_bytes"] == total[["layer_bytes", "config_bytes", "manifest_bytes"]].sum()
    tags = pd.read_csv(tmp_path / "out" / "tags.csv")
    assert len(tags) > 300


def test_report_and_tag_with_password_from_stdin(demo_registry, basic_registry, tmp_path,
                                                  capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(basic_registry.password + "\n"))
    import registry_insights as ri
    from tests.support.fleet import push_fleet

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


def test_wrong_password_is_said_to_be_refused(basic_registry, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REGISTRY_INSIGHTS_PASSWORD", "not-the-password")
    code = main(["report", basic_registry.url, "--username", "alice", "--no-cache",
                 "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    assert "refused the credentials of 'alice'" in err and "not-the-password" not in err
    monkeypatch.delenv("REGISTRY_INSIGHTS_PASSWORD")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no docker login either
    assert main(["tag", basic_registry.url, "cli/r0", "v1", "--no-cache"]) == 1
    assert "needs credentials" in capsys.readouterr().err


def test_cleanup_refuses_repositories_not_in_the_catalog(demo_registry, capsys):
    code = main(["cleanup", demo_registry.url, "payments/api", "no/such", "--keep-last", "1",
                 "--no-cache", "--yes"])
    assert code == 1
    assert "no/such" in capsys.readouterr().err
    assert len(demo_registry.client(cache=None).tags("payments/api")) > 1  # nothing deleted


def test_output_path_that_is_a_file_is_a_clear_error(demo_registry, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code = main(["report", demo_registry.url, "--no-cache", "--repository", "base/alpine",
                 "-o", str(target)])
    captured = capsys.readouterr()
    assert code == 1 and str(target) in captured.err
    assert "only 1 repository read" in captured.err
