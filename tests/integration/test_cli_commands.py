"""The image commands (ls, inspect, manifest, config, digest, rm, pull) and cleanup's audit
output, in each output format, against a real registry; digests and bytes compared with
Debian's skopeo (an independent client). Registries: anonymous (shared), basic, token."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.cli import main
from registry_insights.testing.demo import FleetBuilder
from tests.support.proxy import RewritingProxy, oci_error

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None and not os.environ.get("CI"),
                                  reason="skopeo is not installed (apt-get install skopeo)")
REPO = "cmd/app"


def skopeo(*args: str, raw: bool = False):
    result = subprocess.run([SKOPEO or "skopeo", *args], capture_output=True, timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr.decode()}"
    return result.stdout if raw else json.loads(result.stdout)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def fleet(anonymous_registry):
    """cmd/app: v1 (OCI image, amd64), v2 + latest (OCI index amd64 + arm64), d1 (Docker
    schema 2); cmd/other: one tag. Small layers."""
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        builder = FleetBuilder(client, 16)
        base = builder.layer(30_000, "cmd-base")
        arm = builder.layer(25_000, "cmd-arm")
        app = builder.layer(5_000, "cmd-app")
        digests = {
            "v1": builder.build(REPO, ["v1"], {"linux/amd64": [base]},
                                "2026-01-01T00:00:00Z", oci=True),
            "v2": builder.build(REPO, ["v2", "latest"], {"linux/amd64": [base, app],
                                                         "linux/arm64": [arm, app]},
                                "2026-02-01T00:00:00Z", oci=True),
            "d1": builder.build(REPO, ["d1"], {"linux/amd64": [base, app]},
                                "2025-12-01T00:00:00Z", oci=False),
        }
        builder.build("cmd/other", ["x"], {"linux/amd64": [app]}, "2026-01-05T00:00:00Z",
                      oci=True)
    host = anonymous_registry.url.split("://", 1)[1]
    return host, digests, builder.images


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([*argv, "--no-cache"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_ls_repositories_in_each_format(fleet, capsys):
    host, _digests, _images = fleet
    code, out, _ = run(capsys, "ls", f"{host}/cmd/", "--format", "json")
    assert code == 0
    assert json_lines(out) == [{"repository": "cmd/app"}, {"repository": "cmd/other"}]
    code, out, _ = run(capsys, "ls", f"{host}/cmd/", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(out))) == [{"repository": "cmd/app"},
                                                      {"repository": "cmd/other"}]
    code, out, _ = run(capsys, "ls", host)  # the whole catalog, a table
    lines = out.splitlines()
    assert code == 0 and lines[0] == "REPOSITORY" and {"cmd/app", "cmd/other"} <= set(lines)
    code, out, _ = run(capsys, "ls", f"http://{host}/cmd")  # not a repository: a prefix
    assert code == 0 and out.splitlines()[1:] == ["cmd/app", "cmd/other"]


@needs_skopeo
def test_ls_tags_in_each_format_match_skopeo(fleet, capsys):
    host, digests, images = fleet
    code, out, _ = run(capsys, "ls", f"{host}/{REPO}", "--format", "json")
    assert code == 0
    rows = {r["tag"]: r for r in json_lines(out)}
    assert sorted(rows) == ["d1", "latest", "v1", "v2"]
    for tag, row in rows.items():
        raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{host}/{REPO}:{tag}",
                     raw=True)
        assert row["digest"] == sha256(raw)
        truth = [i for i in images if i.repository == REPO and i.tag == tag]
        assert row["layer_size"] == sum(i.layer_size for i in truth)
        assert row["platforms"] == sorted(i.platform for i in truth)
        assert row["created_at"] == truth[0].created
    assert rows["v2"]["media_type"] == "application/vnd.oci.image.index.v1+json"
    code, out, _ = run(capsys, "ls", f"{host}/{REPO}", "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == ["repository", "tag", "digest", "media_type", "platforms",
                                   "created_at", "layer_size"]
    assert frame.set_index("tag").loc["v2", "platforms"] == "linux/amd64,linux/arm64"
    assert frame.set_index("tag").loc["v1", "digest"] == digests["v1"]
    code, out, _ = run(capsys, "ls", f"{host}/{REPO}")
    table = out.splitlines()
    assert table[0].split() == ["TAG", "DIGEST", "PLATFORMS", "CREATED_AT", "LAYER_SIZE"]
    assert table[1].split()[:2] == ["d1", digests["d1"][:19]]


@needs_skopeo
def test_inspect_matches_skopeo_in_each_format(fleet, capsys):
    host, digests, _images = fleet
    ref = f"{host}/{REPO}:v2"
    code, out, _ = run(capsys, "inspect", ref, "--format", "json")
    assert code == 0
    shown = json.loads(out)
    raw_index = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}", raw=True)
    assert shown["digest"] == sha256(raw_index) == digests["v2"]
    assert shown["size"] == len(raw_index)
    assert shown["tags"] == ["latest", "v2"]  # the other tag on the same digest
    assert shown["platforms"] == ["linux/amd64", "linux/arm64"]
    index = json.loads(raw_index)
    arm_digest = [m["digest"] for m in index["manifests"]
                  if m["platform"]["architecture"] == "arm64"][0]
    code, out, _ = run(capsys, "inspect", ref, "--platform", "linux/arm64", "--format", "json")
    (image,) = json.loads(out)["images"]
    theirs = skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64",
                    "--override-os", "linux", f"docker://{ref}")
    assert image["manifest_digest"] == arm_digest
    assert image["created_at"] == theirs["Created"]
    assert image["labels"] == theirs["Labels"]
    arm_manifest = json.loads(skopeo("inspect", "--tls-verify=false", "--raw",
                                     f"docker://{host}/{REPO}@{arm_digest}", raw=True))
    assert [la["digest"] for la in image["layers"]] == theirs["Layers"]
    assert [(la["digest"], la["size"], la["media_type"]) for la in image["layers"]] == \
        [(la["digest"], la["size"], la["mediaType"]) for la in arm_manifest["layers"]]
    assert image["layer_size"] == sum(la["size"] for la in arm_manifest["layers"])
    assert image["config_digest"] == arm_manifest["config"]["digest"]
    # by digest, as a table and as CSV (one row per image)
    code, out, _ = run(capsys, "inspect", f"{host}/{REPO}@{digests['v2']}")
    assert code == 0 and f"digest      {digests['v2']}" in out and "tags        latest, v2" in out
    assert "linux/arm64" in out and arm_digest in out
    code, out, _ = run(capsys, "inspect", ref, "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert frame["platform"].tolist() == ["linux/amd64", "linux/arm64"]
    assert set(frame["digest"]) == {digests["v2"]}
    assert frame.loc[frame["platform"] == "linux/arm64", "manifest_digest"].item() == arm_digest
    # tag (the older name) takes a digest and --platform too, and prints JSON by default
    code, out, _ = run(capsys, "tag", f"{host}/{REPO}@{digests['v2']}", "--platform",
                       "linux/arm64")
    shown = json.loads(out)
    assert code == 0 and shown["digest"] == digests["v2"] and shown["tag"] is None
    assert [i["manifest_digest"] for i in shown["images"]] == [arm_digest]
    # no such platform: exit 1, the platforms there are named
    code, _, err = run(capsys, "inspect", ref, "--platform", "linux/s390x")
    assert code == 1 and "linux/amd64, linux/arm64" in err


@needs_skopeo
def test_manifest_config_and_digest_are_skopeos_bytes(fleet, capsys):
    host, digests, _images = fleet
    for tag in ("v1", "d1", "v2"):
        ref = f"{host}/{REPO}:{tag}"
        theirs = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}", raw=True)
        code = main(["manifest", ref, "--no-cache"])
        assert code == 0 and capsys.readouterr().out.encode() == theirs
        code, out, _ = run(capsys, "digest", ref)
        assert code == 0 and out.strip() == sha256(theirs) == digests[tag]
        code, out, _ = run(capsys, "digest", ref, "--format", "json")
        assert json.loads(out)["digest"] == digests[tag]
        assert json.loads(out)["media_type"] == json.loads(theirs)["mediaType"]
    for tag, platform_args, arch in (("v1", [], "amd64"), ("d1", [], "amd64"),
                                     ("v2", ["--platform", "linux/arm64"], "arm64")):
        ref = f"{host}/{REPO}:{tag}"
        config = skopeo("inspect", "--tls-verify=false", "--config", "--raw",
                        "--override-arch", arch, "--override-os", "linux", f"docker://{ref}",
                        raw=True)
        code = main(["config", ref, *platform_args, "--no-cache"])
        assert code == 0 and capsys.readouterr().out.encode() == config
        code, out, _ = run(capsys, "config", ref, *platform_args, "--format", "csv")
        fields = dict(csv.reader(io.StringIO(out)))
        assert fields["architecture"] == arch and fields["os"] == "linux"
    # the index's arm64 manifest, its digest, and the index as descriptors
    raw_index = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{host}/{REPO}:v2",
                       raw=True)
    arm = [m for m in json.loads(raw_index)["manifests"]
           if m["platform"]["architecture"] == "arm64"][0]
    main(["manifest", f"{host}/{REPO}:v2", "--platform", "linux/arm64", "--no-cache"])
    assert sha256(capsys.readouterr().out.encode()) == arm["digest"]
    code, out, _ = run(capsys, "digest", f"{host}/{REPO}:v2", "--platform", "linux/arm64")
    assert out.strip() == arm["digest"]
    code, out, _ = run(capsys, "manifest", f"{host}/{REPO}:v2", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["role"], r["platform"], r["digest"], int(r["size"])) for r in rows] == [
        ("manifest", f"linux/{m['platform']['architecture']}", m["digest"], m["size"])
        for m in json.loads(raw_index)["manifests"]]
    code, out, _ = run(capsys, "manifest", f"{host}/{REPO}:v1", "--format", "table")
    assert out.splitlines()[1].split()[0] == "config"
    # an index without --platform has no single config: a usage error naming the platforms
    code, _, err = run(capsys, "config", f"{host}/{REPO}:v2")
    assert code == 2 and "--platform" in err and "linux/arm64" in err


def test_rm_tag_keeps_siblings_digest_lists_its_tags(anonymous_registry, capsys):
    url = anonymous_registry.url
    host = url.split("://", 1)[1]
    repo = "cmd/rm"
    with ri.RegistryClient(url, cache=None) as client:
        builder = FleetBuilder(client, 3)
        one = builder.build(repo, ["a", "b", "c"], {"linux/amd64": [builder.layer(2_000, "x")]},
                            "2026-01-01T00:00:00Z", oci=True)
        builder.build(repo, ["d"], {"linux/amd64": [builder.layer(2_000, "y")]},
                            "2026-01-02T00:00:00Z", oci=False)
        # not a terminal and no --yes: the plan is shown, nothing deleted, exit 2
        code, _, err = run(capsys, "rm", f"{host}/{repo}:a")
        assert code == 2 and "--yes" in err and "sibling tags stay: b, c" in err
        assert client.tags(repo) == ["a", "b", "c", "d"]
        code, out, _ = run(capsys, "rm", f"{host}/{repo}:a", "--yes", "--format", "json")
        assert code == 0
        assert json.loads(out) == {"repository": repo, "reference": "a", "digest": one,
                                   "deleted_tags": ["a"], "kept_tags": ["b", "c"]}
        assert client.tags(repo) == ["b", "c", "d"]
        assert client.head_manifest(repo, "b").digest == one
        code, _, err = run(capsys, "rm", f"{host}/{repo}@{one}")
        assert code == 2 and "the tags that point to it: b, c" in err
        code, out, _ = run(capsys, "rm", f"{host}/{repo}@{one}", "--yes", "--format", "csv")
        (row,) = list(csv.DictReader(io.StringIO(out)))
        assert code == 0 and row["deleted_tags"] == "b,c" and row["digest"] == one
        assert client.tags(repo) == ["d"]
        code, out, _ = run(capsys, "rm", f"{host}/{repo}:d", "-y")
        assert code == 0 and f"deleted {repo}:d" in out
        assert client.tags(repo) == []
        code, _, err = run(capsys, "rm", f"{host}/{repo}:d", "--yes")  # already gone
        assert code == 1 and "d" in err
        code, _, err = run(capsys, "rm", f"{host}/{repo}", "--yes")  # no tag: refused
        assert code == 2 and "no tag or digest" in err


def test_cleanup_plan_and_audit_log_in_each_format(anonymous_registry, tmp_path, capsys):
    from tests.support.fleet import push_fleet

    url = anonymous_registry.url
    host = url.split("://", 1)[1]
    with ri.RegistryClient(url, cache=None) as client:
        push_fleet(client, "audit", repositories=2, tags=4, index_every=0)
    rule = ["--keep-last", "2"]
    code, out, _ = run(capsys, "cleanup", f"{host}/audit/r0", "audit/r1", *rule)
    assert code == 0
    lines = out.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("audit/r")]
    assert [lines[i].split(":")[0] for i in heads] == ["audit/r0", "audit/r1"]
    assert "5 tags, 2 to delete" in lines[heads[0]]
    block = lines[heads[0] + 2:heads[1]]
    assert sorted((line.split()[0], line.split()[6]) for line in block if line.strip()) == [
        ("latest", "keep"), ("v0", "delete"), ("v1", "delete"), ("v2", "keep"), ("v3", "keep")]
    assert "dry run: nothing deleted (--yes deletes 4 tags)" in out
    code, out, err = run(capsys, "cleanup", url, "audit/r0", "audit/r1", *rule,
                         "--format", "json")
    records = json_lines(out)
    tags = [r for r in records if r["record"] == "tag"]
    assert len(tags) == 10 and {r["action"] for r in tags} == {"keep", "delete"}
    total = [r for r in records if r["record"] == "total"][0]
    assert total["deleted_tags"] == 4 and total["reclaimable_bytes"] > 0
    assert f"({total['reclaimable_bytes']} bytes)" in err and "dry run" in err
    code, out, _ = run(capsys, "cleanup", url, "audit/r0", *rule, "--format", "csv")
    plan = pd.read_csv(io.StringIO(out))
    assert sorted(plan.loc[plan["action"] == "delete", "tag"]) == ["v0", "v1"]
    # --yes: one record per tag, printed and appended to the log (CSV, then JSON lines)
    log = tmp_path / "audit.csv"
    code, out, _ = run(capsys, "cleanup", f"{host}/audit/r0", *rule, "--yes", "--log", str(log),
                       "--format", "json")
    assert code == 0
    printed = json_lines(out)
    assert {(r["tag"], r["action"], r["result"]) for r in printed} == {
        ("latest", "keep", "kept"), ("v3", "keep", "kept"), ("v2", "keep", "kept"),
        ("v0", "delete", "deleted"), ("v1", "delete", "deleted")}
    written = pd.read_csv(log)
    assert list(written.columns) == ["time", "repository", "tag", "digest", "action", "result",
                                     "message"]
    # the deletes are logged one by one as they happen (then the kept tags): same records
    def untimed(records):
        return sorted(({k: v for k, v in r.items() if k != "time"} for r in records),
                      key=lambda r: (r["repository"], r["tag"]))
    assert untimed(written.to_dict("records")) == untimed(printed)
    assert list(written["action"]) == ["delete", "delete", "keep", "keep", "keep"]
    assert pd.to_datetime(written["time"], utc=True).notna().all()
    jsonl = tmp_path / "audit.jsonl"
    code, out, _ = run(capsys, "cleanup", url, "audit/r1", *rule, "--yes", "--log", str(jsonl))
    assert code == 0 and "2 deleted" in out and "3 tags kept" in out
    assert sorted((r["tag"], r["result"]) for r in json_lines(jsonl.read_text())
                  if r["action"] == "delete") == [("v0", "deleted"), ("v1", "deleted")]
    with ri.RegistryClient(url, cache=None) as client:
        assert client.tags("audit/r0") == client.tags("audit/r1") == ["latest", "v2", "v3"]
    # a second run appends to the same log (nothing left to delete)
    code, _, _ = run(capsys, "cleanup", url, "audit/r0", *rule, "--yes", "--log", str(log),
                     "--quiet")
    assert code == 0 and len(pd.read_csv(log)) == 5 + 3


def test_cleanup_partly_failed_exits_3(anonymous_registry, capsys, tmp_path):
    from tests.support.fleet import push_fleet

    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        push_fleet(client, "partial", repositories=2, tags=3, index_every=0)
    with RewritingProxy(anonymous_registry.url) as proxy:
        proxy.rules.append(lambda r: oci_error(403, "DENIED", "no deletes here")
                           if r.method == "DELETE" and "/partial/r1/" in r.path else None)
        host = proxy.url.split("://", 1)[1]
        log = tmp_path / "log.jsonl"
        code, out, err = run(capsys, "cleanup", f"{host}/partial/r0", "partial/r1",
                             "--keep-last", "1", "--yes", "--log", str(log), "--format", "csv")
    assert code == 3
    rows = list(csv.DictReader(io.StringIO(out)))
    results = {(r["repository"], r["tag"]): r["result"] for r in rows if r["action"] == "delete"}
    assert results == {("partial/r0", "v0"): "deleted", ("partial/r0", "v1"): "deleted",
                       ("partial/r1", "v0"): "failed", ("partial/r1", "v1"): "failed"}
    assert "2 deleted, 2 failed" in err
    assert len(json_lines(log.read_text())) == len(rows) == 8  # 3 tags + latest, twice


def test_pull_and_report_take_one_reference(fleet, tmp_path, capsys):
    host, digests, _images = fleet
    code, out, _ = run(capsys, "pull", f"{host}/{REPO}:v2", str(tmp_path / "l"), "--platform",
                       "linux/arm64", "--format", "json")
    shown = json.loads(out)
    assert code == 0 and shown["skopeo"] == f"oci:{tmp_path / 'l'}:v2"
    index = json.loads((tmp_path / "l" / "index.json").read_text())
    assert index["manifests"][0]["platform"]["architecture"] == "arm64"
    code, out, _ = run(capsys, "report", f"{host}/{REPO}", "-o", str(tmp_path / "r"),
                       "--no-html", "--format", "json")
    rows = {r["repository"]: r for r in json_lines(out)}
    assert code == 0 and set(rows) == {REPO, "(total)"} and rows[REPO]["tags"] == 4
    assert pd.read_csv(tmp_path / "r" / "tags.csv")["repository"].unique().tolist() == [REPO]


def test_commands_with_credentials(basic_registry, token_registry, capsys, monkeypatch):
    for handle in (basic_registry, token_registry):
        with ri.RegistryClient(handle.url, username="alice", password=handle.password,
                               cache=None) as client:
            builder = FleetBuilder(client, 5)
            digest = builder.build("cmd/auth", ["v1"], {"linux/amd64": [builder.layer(1_000,
                                                                                   "a")]},
                                   "2026-01-01T00:00:00Z", oci=True)
        host = handle.url.split("://", 1)[1]
        monkeypatch.setenv("REGISTRY_INSIGHTS_PASSWORD", handle.password)
        code, out, _ = run(capsys, "digest", f"{host}/cmd/auth:v1", "--username", "alice")
        assert code == 0 and out.strip() == digest
        code, out, _ = run(capsys, "ls", f"{host}/cmd/auth", "--username", "alice",
                           "--format", "json")
        assert [(r["tag"], r["digest"]) for r in json_lines(out)] == [("v1", digest)]
        monkeypatch.delenv("REGISTRY_INSIGHTS_PASSWORD")
