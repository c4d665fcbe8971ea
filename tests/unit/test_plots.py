"""plots: on the Agg backend, bars carry the frames' values, axes say their units."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from registry_insights.analysis import storage as analysis  # noqa: E402
from registry_insights.analysis import trends
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty  # noqa: E402
from registry_insights.registry import mediatypes as mt  # noqa: E402
from registry_insights.ui import plots

MiB, GiB = 2**20, 2**30
NOW = pd.Timestamp("2024-06-01", tz="UTC")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def inventory():
    """Three repositories sharing a base layer; one image of unknown date (1970)."""
    images = [  # repository, tag, manifest, created_at, [(layer, size)]
        ("web", "v1", "m1", "2024-01-10", [("sha256:" + "b" * 64, 30 * MiB), ("l-web", 5 * MiB)]),
        ("web", "v2", "m2", "2024-03-01", [("sha256:" + "b" * 64, 30 * MiB), ("l-web2", MiB)]),
        ("api", "v1", "m3", "2024-02-15", [("sha256:" + "b" * 64, 30 * MiB), ("l-api", GiB)]),
        ("db", "1.0", "m4", "1970-01-01", [("l-db", 200 * MiB)]),
    ]
    tags, layers = [], []
    for repository, tag, manifest, created, blobs in images:
        tags.append({"registry": "registry.test", "repository": repository, "tag": tag,
                     "digest": manifest, "media_type": mt.OCI_MANIFEST, "size": 500,
                     "platform": "linux/amd64", "manifest_digest": manifest,
                     "manifest_size": 500, "config_digest": f"c-{manifest}", "config_size": 50,
                     "created_at": created, "layer_size": sum(s for _, s in blobs),
                     "layer_count": len(blobs), "is_image": True})
        layers += [{"registry": "registry.test", "repository": repository, "tag": tag,
                    "platform": "linux/amd64", "manifest_digest": manifest, "layer_digest": d,
                    "size": s, "position": i, "is_image": True}
                   for i, (d, s) in enumerate(blobs)]
    return coerce(pd.DataFrame(tags), TAGS_SCHEMA), coerce(pd.DataFrame(layers), LAYERS_SCHEMA)


def test_format_bytes():
    assert plots.format_bytes(1536) == "1.5 KiB"
    assert plots.format_bytes(1.5 * MiB) == "1.5 MiB"
    assert plots.format_bytes(10 * GiB) == "10.0 GiB"
    assert plots.format_bytes(3 * 2**40) == "3.0 TiB"
    assert plots.format_bytes(512) == "512 B"
    assert plots.format_bytes(0) == "0 B"
    assert plots.format_bytes(MiB - 1) == "1.0 MiB"  # not "1024.0 KiB"
    assert plots.format_bytes(-2048) == "-2.0 KiB"
    assert plots.format_bytes(1_500_000, binary=False) == "1.5 MB"
    assert plots.format_bytes(None) == "n/a" and plots.format_bytes(pd.NA) == "n/a"
    tick = plots.bytes_formatter()
    assert isinstance(tick, matplotlib.ticker.FuncFormatter)
    assert tick(2 * GiB, 0) == "2 GiB"
    assert tick(1.5 * GiB, 0) == "1.5 GiB"
    assert tick(0, 0) == "0 B"


def test_byte_axis_ticks_are_round_and_in_one_unit():
    ticks = plots.BytesLocator().tick_values(0, 10 * GiB)
    assert len(ticks) >= 3
    assert np.allclose(ticks / (GiB / 2), np.round(ticks / (GiB / 2)))
    _, ax = plt.subplots()
    ax.plot([0, 1], [0, 1.1 * GiB])
    plots.set_bytes_axis(ax.yaxis)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "0 GiB" in labels and "1 GiB" in labels
    assert all(label.endswith(" GiB") for label in labels)


def test_storage_by_repository_bars_are_the_frames_values(inventory):
    summary = analysis.storage_summary(*inventory)
    ax = plots.storage_by_repository(summary)
    exclusive_bars, shared_bars = ax.containers
    names = [label.get_text() for label in ax.get_yticklabels()]
    expected = summary[summary["repository"] != analysis.TOTAL]
    assert analysis.TOTAL not in names
    assert names == expected["repository"].tolist()  # largest first, as the summary sorts
    rows = expected.set_index("repository").loc[names]
    assert [p.get_width() for p in exclusive_bars] == rows["exclusive_bytes"].tolist()
    assert [p.get_width() for p in shared_bars] == rows["shared_bytes"].tolist()
    assert [p.get_x() for p in shared_bars] == rows["exclusive_bytes"].tolist()
    assert rows.loc["web", "shared_bytes"] == 30 * MiB  # the base layer, shared with api
    assert "bytes" in ax.get_xlabel() and "KiB" in ax.get_xlabel()

    top = plots.storage_by_repository(summary, top=2)
    assert len(top.containers[0]) == 2


def test_growth_forecast(inventory):
    capacity = 2 * GiB
    frame = trends.forecast(trends.growth(*inventory), horizon="730D", capacity=capacity)
    ax = plots.growth_forecast(frame)
    assert "bytes" in ax.get_ylabel() and "UTC" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(text.startswith("capacity 2.0 GiB") for text in legend)
    when = frame.attrs["capacity_date"]
    assert not pd.isna(when)
    assert any(f"reached {when:%Y-%m-%d}" in text for text in legend)
    assert len(ax.collections) == 1  # the band
    assert ax.get_lines()[0].get_ydata().tolist() == frame.loc[
        frame["kind"] == "history", "bytes"].tolist()

    # Another capacity: its own crossing date from the same trend.
    other = plots.growth_forecast(frame, capacity=10 * GiB)
    legend = [t.get_text() for t in other.get_legend().get_texts()]
    expected = trends.capacity_date(frame, 10 * GiB)
    assert any(f"capacity 10.0 GiB, reached {expected:%Y-%m-%d}" in t for t in legend)

    # A capacity below what is already stored: exceeded, not "reached" in the past.
    stored = frame.loc[frame["kind"] == "history", "bytes"].max()
    below = plots.growth_forecast(frame, capacity=int(stored) // 2)
    legend = [t.get_text() for t in below.get_legend().get_texts()]
    assert any(t.endswith("already exceeded") for t in legend)


def test_tag_age_histogram_counts_and_unknown(inventory):
    tags, _ = inventory
    ax = plots.tag_age_histogram(tags, now=NOW, bins=5)
    assert sum(p.get_height() for p in ax.patches) == 3
    assert "1 rows of unknown date" in ax.get_title()
    assert "days" in ax.get_xlabel()


def test_shared_layers_plot(inventory):
    shared = trends.shared_layers(inventory[1], top=3)
    ax = plots.shared_layers(shared)
    assert [p.get_width() for p in ax.patches] == [30 * MiB]  # base: 2 repositories
    assert shared["saved_bytes"].tolist() == [30 * MiB, 0, 0]
    assert "2 used by one repository not shown" in ax.get_title()
    first = ax.get_yticklabels()[0].get_text()
    assert first == "sha256:bbbbbbbbbbbb (2 repos)"
    assert "bytes" in ax.get_xlabel()


def test_size_distribution_log_axis(inventory):
    tags, _ = inventory
    ax = plots.size_distribution(tags)
    assert ax.get_xscale() == "log"
    assert sum(p.get_height() for p in ax.patches) == 4
    assert "bytes" in ax.get_xlabel()


PLOTTERS = {
    "storage_by_repository": lambda inv: (plots.storage_by_repository,
                                          analysis.storage_summary(*inv)),
    "growth_forecast": lambda inv: (plots.growth_forecast,
                                    trends.forecast(trends.growth(*inv), capacity=GiB)),
    "tag_age_histogram": lambda inv: (plots.tag_age_histogram, inv[0]),
    "shared_layers": lambda inv: (plots.shared_layers, trends.shared_layers(inv[1])),
    "size_distribution": lambda inv: (plots.size_distribution, inv[0]),
}

EMPTY = {
    "storage_by_repository": lambda: analysis.storage_summary(empty(TAGS_SCHEMA),
                                                              empty(LAYERS_SCHEMA)),
    "growth_forecast": lambda: trends.forecast(trends.growth(empty(TAGS_SCHEMA),
                                                             empty(LAYERS_SCHEMA))),
    "tag_age_histogram": lambda: empty(TAGS_SCHEMA),
    "shared_layers": lambda: trends.shared_layers(empty(LAYERS_SCHEMA)),
    "size_distribution": lambda: empty(TAGS_SCHEMA),
}


@pytest.mark.parametrize("name", sorted(PLOTTERS))
def test_each_plot_uses_the_given_axes_and_saves(name, inventory, tmp_path):
    plot, frame = PLOTTERS[name](inventory)
    before = frame.copy(deep=True)
    fig, (left, right) = plt.subplots(1, 2)
    assert plot(frame, ax=right) is right
    assert not left.has_data()
    pd.testing.assert_frame_equal(frame, before)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    created = plot(frame)
    assert created is not right and created.figure is not fig


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_each_plot_draws_empty_frames(name, tmp_path):
    plot = getattr(plots, name)
    ax = plot(EMPTY[name]())
    ax.figure.savefig(tmp_path / "empty.png")
    assert any(t.get_text() == "no data" for t in ax.texts)
