"""The report (CSV, PNG, HTML) on the demo registry: numbers checked against the registry's disk
and the CSVs, the page self-contained and escaped, and opened in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import registry_insights as ri
from registry_insights.analysis.storage import TOTAL
from registry_insights.cli import main
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, coerce
from registry_insights.registry import mediatypes as mt
from registry_insights.report.build import PLOTS, report_from_frames, write_report
from registry_insights.testing.demo import ANCHOR, EMPTY_REPOSITORY

NOW = pd.Timestamp(ANCHOR)
CAPACITY = 100 * 2**20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "chromium"
CHROMIUM_TIMEOUT = 60
#: Every element the page may contain: no script, link, iframe, object, form, ...
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p",
                "div", "span", "strong", "code", "table", "caption", "thead", "tbody", "tr",
                "th", "td", "figure", "img", "footer"}


class Page(HTMLParser):
    """The parts of a report page the tests read: tables by id, elements by id, every tag."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.elements: dict[str, dict[str, str | None]] = {}
        self.texts: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._open_ids: list[tuple[str, str]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        ident = attributes.get("id")
        if ident:
            self.elements[ident] = attributes
            self.texts[ident] = ""
            if tag not in ("img", "meta"):
                self._open_ids.append((tag, ident))
        if tag == "table":
            self._table = ident or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _tag, ident in self._open_ids:
            self.texts[ident] += data

    def records(self, table: str) -> list[dict[str, str]]:
        """A table's body rows as dicts by header."""
        header, *rows = self.tables[table]
        return [dict(zip(header, row)) for row in rows]


def data_uri_images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in
            re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def assert_png(data: bytes, min_size: int = 100) -> tuple[int, int]:
    """Decode a PNG (through matplotlib's reader); return (height, width)."""
    import matplotlib.image

    assert data[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.ndim == 3 and pixels.shape[0] >= min_size and pixels.shape[1] >= min_size
    return pixels.shape[0], pixels.shape[1]


@pytest.fixture(scope="module")
def demo_report(demo_registry, tmp_path_factory):
    """The report of the demo registry, ages at the fleet's end, capacity 100 MiB."""
    client = demo_registry.client(cache=tmp_path_factory.mktemp("cache"))
    inventory = ri.fetch_inventory(client, progress=False)
    client.close()
    report = write_report(inventory, tmp_path_factory.mktemp("report"), capacity="100MiB",
                          now=NOW)
    html = report.files["html"].read_text(encoding="utf-8")
    return inventory, report, html, Page(html)


# ----------------------------------------------------------------------------------------------
# files and CSVs


@pytest.mark.integration
def test_report_writes_every_file(demo_report):
    _inventory, report, _html, _page = demo_report
    names = {path.name for path in report.files.values()}
    assert names == {"tags.csv", "repositories.csv", "growth.csv", "forecast.csv",
                     "stale_tags.csv", "shared_layers.csv", "cleanup_scenarios.csv",
                     "errors.csv", "content_kinds.csv", "report.html",
                     *(f"{name}.png" for name in PLOTS)}
    for path in report.files.values():
        assert path.parent == report.directory and path.stat().st_size > 0, path
    for name in PLOTS:
        assert_png(report.files[f"{name}.png"].read_bytes())


@pytest.mark.integration
def test_cleanup_scenarios_price_plans_with_reclaimable_bytes(demo_report):
    inventory, report, html, _page = demo_report
    tags, layers = inventory.tags(attestations=True), inventory.layers(attestations=True)
    plan = ri.retention_plan(tags, keep_last=5, now=NOW)
    total = ri.reclaimable(tags, layers, plan)
    total = total[total["repository"] == "(total)"].iloc[0]
    row = report.scenarios.set_index("policy").loc["keep the 5 newest digests per repository"]
    assert row["reclaimable_bytes"] == total["reclaimable_bytes"] > 0
    assert row["logical_bytes"] == total["logical_bytes"] > 10 * row["reclaimable_bytes"]
    assert row["deleted_tags"] == total["deleted_tags"]
    csv = pd.read_csv(report.files["cleanup_scenarios"])
    assert csv["reclaimable_bytes"].tolist() == report.scenarios["reclaimable_bytes"].tolist()
    assert 'id="cleanup-scenarios"' in html and f">{int(row['reclaimable_bytes'])}<" in html


@pytest.mark.integration
def test_growth_csv_adds_up_to_the_blobs_on_disk(demo_registry, demo_report):
    _inventory, report, _html, _page = demo_report
    on_disk = demo_registry.server.blob_bytes()
    growth = pd.read_csv(report.files["growth"])
    undated = report.growth.attrs["undated_bytes"]
    assert undated > 0  # the reproducible builds (1970) of tools/ci-runner
    assert int(growth["cumulative_bytes"].iloc[-1]) + undated == on_disk == report.unique_bytes
    assert (growth["new_bytes"].cumsum() == growth["cumulative_bytes"]).all()
    assert growth["period_start"].str.endswith("Z").all()
    assert growth["period_start"].iloc[-1] == "2026-10-01T00:00:00Z"  # the fleet ends 2026-11-01
    assert growth["tags_pushed"].sum() > 200


@pytest.mark.integration
def test_forecast_and_stale_csvs(demo_report):
    _inventory, report, _html, _page = demo_report
    forecast = pd.read_csv(report.files["forecast"])
    for column in ("trend", "lower", "upper"):
        assert pd.api.types.is_integer_dtype(forecast[column]), column  # whole bytes
    history = forecast[forecast["kind"] == "history"]
    assert (history["bytes"].astype("int64")
            == pd.read_csv(report.files["growth"])["cumulative_bytes"]).all()
    assert forecast["date"].iloc[-1] == "2027-11-01T00:00:00Z"  # last observation + 365 days
    assert report.forecast.attrs["slope_bytes_per_day"] > 0

    stale = pd.read_csv(report.files["stale_tags"])
    assert "config" not in stale.columns
    tags = pd.read_csv(report.files["tags"])
    created = pd.to_datetime(tags["created_at"], utc=True, format="ISO8601")
    cutoff = NOW - pd.Timedelta(days=180)
    expected = tags[(created < cutoff) & (created >= pd.Timestamp("1980-01-01", tz="UTC"))]
    assert len(stale) == len(expected) > 0
    assert set(zip(stale["repository"], stale["tag"], stale["platform"])) == set(
        zip(expected["repository"], expected["tag"], expected["platform"]))
    assert pd.to_datetime(stale["created_at"], utc=True, format="ISO8601").is_monotonic_increasing
    epoch = created == pd.Timestamp("1970-01-01", tz="UTC")
    assert report.unknown_date_rows == int(epoch.sum()) > 0
    assert not stale["created_at"].str.startswith("1970").any()


@pytest.mark.integration
def test_shared_layers_csv_counts_repositories(demo_report):
    _inventory, report, _html, _page = demo_report
    shared = pd.read_csv(report.files["shared_layers"])
    assert len(shared) > 0 and (shared["repositories"] >= 2).all()
    assert (shared["saved_bytes"] == shared["size"] * (shared["repositories"] - 1)).all()
    users = report.layers.groupby("layer_digest")["repository"].nunique()
    assert set(shared["layer_digest"]) == set(users[users >= 2].index)
    top = shared.iloc[0]
    assert top["repositories"] == users[top["layer_digest"]]


# ----------------------------------------------------------------------------------------------
# the page


@pytest.mark.integration
def test_html_states_the_registry_total_exactly(demo_registry, demo_report):
    inventory, report, html, page = demo_report
    on_disk = demo_registry.server.blob_bytes()
    assert page.elements["total-unique-bytes"]["data-bytes"] == str(on_disk)
    assert str(on_disk) in page.texts["total-unique-bytes"] + html
    storage = page.records("storage")
    total = next(r for r in storage if r["repository"] == TOTAL)
    assert total["unique bytes"] == str(on_disk)
    kinds = {r["kind"]: int(r["bytes"]) for r in page.records("total-by-kind")}
    assert kinds["total"] == on_disk
    assert kinds["layers"] + kinds["configs"] + kinds["manifests and indexes"] == on_disk
    assert page.texts["undated-bytes"] == str(report.growth.attrs["undated_bytes"])
    assert "UTC" in page.texts["as-of"] and "2026-11-01" in page.texts["as-of"]
    # binary units are said, and used
    assert "1 KiB = 1024 bytes" in html and total["unique"].endswith("MiB")


@pytest.mark.integration
def test_html_repository_table_matches_the_csv(demo_report):
    inventory, report, _html, page = demo_report
    csv = pd.read_csv(report.files["repositories"], keep_default_na=False)
    shown = {r["repository"]: r for r in page.records("storage")}
    assert set(shown) == set(csv["repository"]) == set(inventory.repositories) | {TOTAL}
    assert EMPTY_REPOSITORY in shown and shown[EMPTY_REPOSITORY]["unique bytes"] == "0"
    for row in csv.itertuples(index=False):
        cells = shown[row.repository]
        assert int(cells["unique bytes"]) == row.unique_bytes
        assert int(cells["exclusive bytes"]) == row.exclusive_bytes
        assert int(cells["shared bytes"]) == row.shared_bytes
        assert int(cells["tags"]) == row.tags


@pytest.mark.integration
def test_html_candidates_forecast_and_stale_counts(demo_report):
    _inventory, report, _html, page = demo_report
    summary = report.summary[report.summary["repository"] != TOTAL]
    ranked = page.records("reclaimable-repositories")
    freed = [int(r["bytes"]) for r in ranked]
    assert freed == sorted(freed, reverse=True) and freed[0] > 0
    expected = summary.sort_values(["exclusive_bytes", "repository"], ascending=[False, True])
    assert [r["repository"] for r in ranked] == list(expected["repository"][:len(ranked)])
    assert freed == [int(v) for v in expected["exclusive_bytes"][:len(ranked)]]

    stale = pd.read_csv(report.files["stale_tags"])
    oldest = page.records("oldest-stale")
    assert len(oldest) == min(20, len(stale))
    assert [(r["repository"], r["tag"], r["platform"]) for r in oldest] == list(
        zip(stale["repository"], stale["tag"], stale["platform"]))[:len(oldest)]
    assert oldest[0]["built (UTC)"].endswith("UTC")
    assert int(oldest[0]["age (days)"]) == round(stale["age_days"].iloc[0])
    counts = page.texts["stale-counts"]
    distinct = stale[["repository", "tag"]].drop_duplicates()
    assert f"{len(distinct)} tags ({len(stale)} image rows" in counts
    assert f"{report.unknown_date_rows} image rows of unknown date" in counts

    forecast = {r[""]: r for r in page.records("forecast")}
    attrs = report.forecast.attrs
    assert forecast["slope per day"]["exact"] == f"{round(attrs['slope_bytes_per_day'])} B/day"
    assert forecast["capacity"]["exact"] == str(CAPACITY)
    assert attrs["capacity_date"] > attrs["origin"]
    assert page.texts["capacity-date"] == f"{attrs['capacity_date']:%Y-%m-%d}"
    growth = page.records("growth")
    assert len(growth) == len(report.growth)
    assert int(growth[-1]["stored bytes"]) == int(report.growth["cumulative_bytes"].iloc[-1])


@pytest.mark.integration
def test_html_embeds_the_plots_as_png_and_loads_nothing(demo_report):
    _inventory, report, html, page = demo_report
    images = data_uri_images(html)
    assert len(images) == len(PLOTS)
    for data in images:
        assert_png(data)
    assert sorted(images) == sorted(report.files[f"{n}.png"].read_bytes() for n in PLOTS)
    assert {tag for tag, _ in page.tags} <= ALLOWED_TAGS
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:image/png;base64,"), (tag, name)
    assert "url(" not in html and "@import" not in html
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]


def test_html_escapes_strings_from_the_registry(tmp_path):
    evil_repository = "<script>alert(1)</script>"
    evil_tag = '"><img src=x onerror=alert(2)>'
    tags, layers = _tiny_frames([(evil_repository, evil_tag), ("web&co", "v<1>")])
    report = report_from_frames(tags, layers, tmp_path, registry="<b>registry</b>",
                                repositories=[evil_repository, "web&co"],
                                now="2024-06-01", plots=False)
    html = report.files["html"].read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<b>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Page(html)
    assert {tag for tag, _ in page.tags} <= ALLOWED_TAGS
    assert all(not any(name.startswith("on") for name in a) for _t, a in page.tags)
    names = [r["repository"] for r in page.records("storage")]
    assert evil_repository in names and "web&co" in names  # shown as text, exactly
    stale_tags = [r["tag"] for r in page.records("oldest-stale")]
    assert evil_tag in stale_tags and "v<1>" in stale_tags
    assert not any(path.suffix == ".png" for path in report.files.values())
    assert len(data_uri_images(html)) == len(PLOTS)  # the page has its plots anyway


def test_report_leaves_the_pyplot_backend_alone(tmp_path):
    """Writing the plots imports no pyplot (so selects no backend) in a fresh interpreter."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.integration.test_report_html import _tiny_frames
        from registry_insights.report.build import report_from_frames
        tags, layers = _tiny_frames([("web", "v1"), ("api", "v2")])
        report = report_from_frames(tags, layers, {str(tmp_path)!r}, now="2024-06-01")
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported"
        print(len([p for p in report.files.values() if p.suffix == ".png"]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(PLOTS))


def _tiny_frames(pairs: list[tuple[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tags and layers frames: one old image per (repository, tag), sharing a base layer."""
    tags, layers = [], []
    for n, (repository, tag) in enumerate(pairs):
        manifest = f"sha256:{n:064x}"
        blobs = [("sha256:" + "b" * 64, 3 * 2**20), (f"sha256:{n + 100:064x}", 2**20 + n)]
        tags.append({"registry": "registry.test", "repository": repository, "tag": tag,
                     "digest": manifest, "media_type": mt.OCI_MANIFEST, "size": 400,
                     "platform": "linux/amd64", "manifest_digest": manifest,
                     "manifest_media_type": mt.OCI_MANIFEST, "manifest_size": 400,
                     "config_digest": f"sha256:{n + 200:064x}", "config_size": 90,
                     "created_at": f"2023-0{n + 1}-15T00:00:00Z",
                     "layer_size": sum(s for _, s in blobs), "layer_count": len(blobs),
                     "is_image": True, "config": {"os": "linux"}})
        layers += [{"registry": "registry.test", "repository": repository, "tag": tag,
                    "platform": "linux/amd64", "manifest_digest": manifest, "layer_digest": d,
                    "size": s, "position": i, "is_image": True}
                   for i, (d, s) in enumerate(blobs)]
    return coerce(pd.DataFrame(tags), TAGS_SCHEMA), coerce(pd.DataFrame(layers), LAYERS_SCHEMA)


# ----------------------------------------------------------------------------------------------
# command line


@pytest.mark.integration
def test_report_command_with_capacity_and_no_html(demo_registry, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", demo_registry.url, "--no-cache", "--capacity", "100MiB",
                 "--now", "2026-11-01", "--no-html", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "capacity 100.0 MiB" in printed and "stale (built > 180 days" in printed
    assert not (out / "report.html").exists()
    assert {p.name for p in out.glob("*.png")} == {f"{name}.png" for name in PLOTS}
    assert (out / "growth.csv").exists() and (out / "stale_tags.csv").exists()


def test_capacity_must_be_a_size(capsys):
    assert main(["report", "127.0.0.1:9", "--capacity", "lots", "-o", "x"]) == 2
    assert "'lots' is not a size" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# headless Chromium


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium in a session of its own; kill that group if it hangs."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT} s: {command}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.integration
def test_report_opens_in_headless_chromium(demo_report, tmp_path):
    if shutil.which(CHROMIUM) is None:
        reason = "Debian's chromium is not installed: apt-get install -y chromium"
        if _in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    _inventory, report, _html, _page = demo_report
    url = report.files["html"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    done = _chromium("--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                     "--window-size=1280,2000", url, profile=tmp_path / "profile-shot")
    assert done.returncode == 0, done.stderr[-4000:]
    problems = [line for line in done.stderr.splitlines()
                if re.search(r"Uncaught|CONSOLE|Refused to|net::ERR_|Content.Security", line)]
    assert not problems, "\n".join(problems)
    assert shot.stat().st_size > 10_000
    height, width = assert_png(shot.read_bytes())
    assert (height, width) == (2000, 1280)
    # the first plot was decoded and drawn: its bars' colour (matplotlib's tab:blue) shows
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    blue = np.abs(pixels - np.array([31, 119, 180]) / 255).max(axis=-1) < 0.02
    assert blue.sum() > 2000

    dumped = _chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dumped.returncode == 0, dumped.stderr[-4000:]
    dom = Page(dumped.stdout)
    for table in ("storage", "total-by-kind", "forecast", "growth", "age-breakdown",
                  "reclaimable-repositories", "oldest-stale", "shared-layers"):
        assert len(dom.tables[table]) > 1, table
    assert dom.elements["total-unique-bytes"]["data-bytes"] == str(report.unique_bytes)
    assert sum(1 for tag, _ in dom.tags if tag == "img") == len(PLOTS)
    assert {r["repository"] for r in dom.records("storage")} == set(report.summary["repository"])


def test_a_report_that_fails_leaves_the_previous_one_as_it_was(tmp_path, monkeypatch):
    """Every file is staged first and moved into place only when all are written: a failure
    while the page is rendered changes no file of the earlier report and leaves no staging
    directory behind."""
    from registry_insights.report import build

    tags, layers = _tiny_frames([("web", "v1"), ("api", "v2")])
    first = report_from_frames(tags, layers, tmp_path, now="2024-06-01", plots=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {p.name for p in first.files.values()} and "report.html" in before
    more, more_layers = _tiny_frames([("web", "v1"), ("api", "v2"), ("db", "v3")])

    def broken(*_args, **_kwargs):
        raise RuntimeError("the page could not be drawn")

    monkeypatch.setattr(build, "render_html", broken)
    with pytest.raises(RuntimeError, match="could not be drawn"):
        report_from_frames(more, more_layers, tmp_path, now="2024-06-01", plots=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    second = report_from_frames(more, more_layers, tmp_path, now="2024-06-01", plots=False)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(after) == set(before)  # replaced in place, nothing staged is left
    assert b"db" in after["tags.csv"] and b"db" not in before["tags.csv"]
    assert second.files["tags"] == tmp_path / "tags.csv"
