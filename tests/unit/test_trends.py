"""trends: growth, forecast, ages and shared layers on small hand-computed frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from registry_insights.analysis import storage as analysis
from registry_insights.analysis import trends
from registry_insights.frames.schema import LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty
from registry_insights.registry import mediatypes as mt

KiB, MiB, GiB = 2**10, 2**20, 2**30
UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC).as_unit("ns")


def image(repository, tag, manifest, created, layers, *, index=None, index_size=50,
          platform="linux/amd64", is_image=True, manifest_size=100, config_size=10):
    """One tags row and its layers rows; ``layers`` is [(digest, size)]."""
    tag_row = {
        "registry": "registry.test", "repository": repository, "tag": tag,
        "digest": index or manifest,
        "media_type": mt.OCI_INDEX if index else mt.OCI_MANIFEST,
        "size": index_size if index else manifest_size, "platform": platform,
        "manifest_digest": manifest, "manifest_media_type": mt.OCI_MANIFEST,
        "manifest_size": manifest_size, "config_digest": f"cfg-{manifest}",
        "config_size": config_size, "created_at": created,
        "layer_size": sum(size for _, size in layers), "layer_count": len(layers),
        "is_image": is_image,
    }
    layer_rows = [{"registry": "registry.test", "repository": repository, "tag": tag,
                   "platform": platform, "manifest_digest": manifest, "layer_digest": digest,
                   "size": size, "position": position, "is_image": is_image}
                  for position, (digest, size) in enumerate(layers)]
    return [tag_row], layer_rows


def frames(*images):
    tags = [row for t, _ in images for row in t]
    layers = [row for _, ls in images for row in ls]
    return (coerce(pd.DataFrame(tags), TAGS_SCHEMA), coerce(pd.DataFrame(layers), LAYERS_SCHEMA))


BASE, BASE_ARM = ("sha256:base", 1000), ("sha256:base-arm", 900)


@pytest.fixture
def example():
    """January: app:v1 and app:latest (one manifest). March: app:v2 (a two-platform index with
    an attestation), tool:latest and tool:stable (one manifest, reusing app's base layer).
    Unknown dates: repro:1.0 (1970, reproducible build) and repro:nat (no date)."""
    jan, v2 = "2024-01-10T12:00:00Z", "2024-03-05T08:00:00Z"
    return frames(
        image("app", "v1", "m1", jan, [BASE, ("sha256:a1", 500)]),
        image("app", "latest", "m1", jan, [BASE, ("sha256:a1", 500)]),
        image("app", "v2", "m2", v2, [BASE, ("sha256:a2", 700)], index="i1"),
        image("app", "v2", "m3", "2024-03-06T08:00:00Z",
              [BASE_ARM, ("sha256:a2-arm", 600)], index="i1", platform="linux/arm64"),
        image("app", "v2", "att", None, [("sha256:att", 40)], index="i1",
              platform="unknown/unknown", is_image=False, manifest_size=80, config_size=5),
        image("tool", "latest", "m4", "2024-03-20T00:00:00Z", [BASE, ("sha256:t", 300)]),
        image("tool", "stable", "m4", "2024-03-20T00:00:00Z", [BASE, ("sha256:t", 300)]),
        image("repro", "1.0", "m5", "1970-01-01T00:00:00Z", [BASE, ("sha256:r", 4000)]),
        image("repro", "nat", "m6", None, [("sha256:r", 4000), ("sha256:n", 2000)]),
    )


# ---------------------------------------------------------------------------------------- growth


def test_growth_counts_each_blob_once_in_the_month_of_its_first_use(example):
    tags, layers = example
    out = trends.growth(tags, layers)
    assert list(out.columns) == list(trends.GROWTH_SCHEMA)
    assert list(out["period_start"]) == [ts("2024-01-01"), ts("2024-02-01"), ts("2024-03-01")]
    assert list(out["period_end"]) == [ts("2024-02-01"), ts("2024-03-01"), ts("2024-04-01")]
    # January: m1 100 + its config 10 + base 1000 + a1 500 (app:latest shares all of it).
    # March: index 50; m2 100 + 10 + a2 700 (base already stored); m3 100 + 10 + base-arm 900
    # + a2-arm 600; attestation 80 + 5 + 40 (dated by its index); m4 100 + 10 + t 300.
    assert out["new_bytes"].tolist() == [1610, 0, 3005]
    assert out["cumulative_bytes"].tolist() == [1610, 1610, 4615]
    assert out["cumulative_bytes"].tolist() == out["new_bytes"].cumsum().tolist()
    assert out["tags_pushed"].tolist() == [2, 0, 3]
    assert out["images"].tolist() == [1, 0, 3]
    assert {str(d) for d in out.dtypes.iloc[2:]} == {"Int64"}
    assert str(out["period_start"].dtype) == "datetime64[ns, UTC]"


def test_growth_reports_unknown_dates_apart(example):
    tags, layers = example
    out = trends.growth(tags, layers)
    assert out["period_start"].min() == ts("2024-01-01")  # nothing in 1970
    # m5 100 + 10 + r 4000; m6 100 + 10 + n 2000. The base layer repro:1.0 uses is dated.
    assert out.attrs["undated_bytes"] == 6220
    assert out.attrs["undated_rows"] == 2
    total = analysis.storage_summary(tags, layers).set_index("repository").loc[analysis.TOTAL]
    assert out["cumulative_bytes"].iloc[-1] + out.attrs["undated_bytes"] == total["unique_bytes"]


def test_growth_other_frequencies_and_all_undated(example):
    tags, layers = example
    weekly = trends.growth(tags, layers, freq="W-MON")
    assert weekly["period_start"].iloc[0] == ts("2024-01-08")
    assert weekly["new_bytes"].sum() == 4615
    assert (weekly["period_start"].diff().dropna() == pd.Timedelta(days=7)).all()
    undated = tags.assign(created_at=pd.NaT)
    out = trends.growth(undated, layers)
    assert out.empty and list(out.columns) == list(trends.GROWTH_SCHEMA)
    assert out.attrs["undated_bytes"] == 4615 + 6220
    assert out.attrs["undated_rows"] == len(tags)


def test_growth_empty():
    out = trends.growth(empty(TAGS_SCHEMA), empty(LAYERS_SCHEMA))
    assert out.empty
    assert dict(out.dtypes.astype(str)) == trends.GROWTH_SCHEMA
    assert out.attrs["undated_bytes"] == 0 and out.attrs["undated_rows"] == 0


# -------------------------------------------------------------------------------------- forecast


def linear_growth(months=13, start="2023-01-01", per_day=MiB, base=10 * GiB):
    """Monthly periods whose cumulative bytes (at period_end) are base + per_day * days."""
    starts = pd.date_range(start, periods=months, freq="MS", tz=UTC).as_unit("ns")
    ends = starts.shift(1)
    days = (ends - ends[0]) // pd.Timedelta(days=1)
    frame = coerce(pd.DataFrame({"period_start": starts, "period_end": ends,
                                 "cumulative_bytes": base + per_day * np.asarray(days)}),
                   trends.GROWTH_SCHEMA)
    frame.attrs["freq"] = "MS"
    return frame


def test_forecast_recovers_an_exact_line_and_its_capacity_date():
    history = linear_growth()
    origin = ts("2023-02-01")
    out = trends.forecast(history, horizon="365D", capacity=20 * GiB)
    assert out.attrs["slope_bytes_per_day"] == MiB
    assert out.attrs["intercept_bytes"] == 10 * GiB
    assert out.attrs["origin"] == origin
    # 10 GiB more at 1 MiB a day: 10240 days after the first observation, far past the horizon.
    assert out.attrs["capacity_date"] == origin + pd.Timedelta(days=10240)
    assert out.attrs["capacity_date"].tz is not None
    end = ts("2024-02-01") + pd.Timedelta(days=365)
    assert out.attrs["horizon_end"] == end
    assert out.attrs["projected_bytes"] == 10 * GiB + MiB * (end - origin).days
    assert "Theil-Sen" in out.attrs["model"]

    assert list(out.columns) == list(trends.FORECAST_SCHEMA)
    assert dict(out.dtypes.astype(str)) == trends.FORECAST_SCHEMA
    history_rows = out[out["kind"] == "history"]
    assert len(history_rows) == 13
    assert (history_rows["trend"] == history_rows["bytes"]).all()
    assert (out["lower"] == out["trend"]).all() and (out["upper"] == out["trend"]).all()
    future = out[out["kind"] == "forecast"]
    assert future["bytes"].isna().all()
    assert future["date"].iloc[0] == ts("2024-03-01")  # month starts, as the growth's freq
    assert future["date"].iloc[-1] == end
    assert out["date"].is_monotonic_increasing


def test_forecast_capacity_date_to_the_day_within_the_horizon():
    out = trends.forecast(linear_growth(), capacity=10 * GiB + 400.5 * MiB)
    assert out.attrs["capacity_date"] == ts("2023-02-01") + pd.Timedelta(days=400.5)
    assert out.attrs["capacity_date"].floor("D") == ts("2024-03-07")
    assert trends.capacity_date(out, 12 * GiB) == ts("2023-02-01") + pd.Timedelta(days=2048)


def test_forecast_is_robust_to_one_outlier_and_fits_the_last_periods():
    spiky = linear_growth()
    spiky.loc[5, "cumulative_bytes"] += 50 * GiB
    out = trends.forecast(spiky)
    assert out.attrs["slope_bytes_per_day"] == MiB
    history = out[out["kind"] == "history"]
    assert (history["lower"] <= history["trend"]).all()
    assert (history["upper"] >= history["trend"]).all()

    bent = linear_growth()
    knee = bent.loc[6, "cumulative_bytes"]
    days_after = (bent["period_end"] - bent.loc[6, "period_end"]).dt.days.clip(lower=0)
    bent["cumulative_bytes"] = bent["cumulative_bytes"] + MiB * days_after
    assert bent.loc[6, "cumulative_bytes"] == knee
    assert trends.forecast(bent, periods=7).attrs["slope_bytes_per_day"] == 2 * MiB
    assert MiB < trends.forecast(bent).attrs["slope_bytes_per_day"] < 2 * MiB


def test_forecast_without_capacity_or_growth():
    flat = linear_growth(per_day=0)
    out = trends.forecast(flat, capacity=20 * GiB)
    assert out.attrs["slope_bytes_per_day"] == 0
    assert out.attrs["capacity_date"] is pd.NaT
    assert trends.forecast(linear_growth()).attrs["capacity_date"] is pd.NaT
    shrinking = linear_growth(per_day=-MiB)
    assert trends.forecast(shrinking, capacity=GiB).attrs["capacity_date"] is pd.NaT


def test_forecast_from_growth_and_when_too_short(example):
    tags, layers = example
    out = trends.growth(tags, layers).pipe(trends.forecast, horizon="90D")
    assert out[out["kind"] == "history"]["bytes"].tolist() == [1610, 1610, 4615]
    assert out["date"].iloc[-1] == ts("2024-04-01") + pd.Timedelta(days=90)
    assert out.attrs["slope_bytes_per_day"] > 0

    one = trends.forecast(linear_growth(months=1), capacity=GiB)
    assert len(one) == 1 and one["trend"].isna().all()
    assert np.isnan(one.attrs["slope_bytes_per_day"]) and one.attrs["capacity_date"] is pd.NaT
    none = trends.forecast(trends.growth(empty(TAGS_SCHEMA), empty(LAYERS_SCHEMA)))
    assert none.empty and dict(none.dtypes.astype(str)) == trends.FORECAST_SCHEMA
    with pytest.raises(ValueError, match="periods"):
        trends.forecast(linear_growth(), periods=1)
    with pytest.raises(ValueError, match="horizon"):
        trends.forecast(linear_growth(), horizon="soon")


# ------------------------------------------------------------------------------------------ ages

NOW = ts("2024-06-01T00:00:00Z")


@pytest.fixture
def aged():
    """Image rows aged 0.5 .. 800 days at NOW (layer sizes 1, 2, 4, ...), two of unknown date
    and one attestation row (never counted)."""
    rows = [image("svc", f"d{days}", f"m{i}", NOW - pd.Timedelta(days=days), [(f"l{i}", 2**i)])
            for i, days in enumerate([0.5, 29.9, 30, 100, 200, 400, 800])]
    rows += [image("svc", "epoch", "m7", "1970-01-01T00:00:00Z", [("l7", 128)]),
             image("svc", "nat", "m8", None, [("l8", 256)]),
             image("svc", "d100", "att", None, [("l9", 512)], index="ix", is_image=False)]
    return frames(*rows)[0]


def test_stale_tags_oldest_first_without_unknown_dates(example):
    tags, _ = example
    out = trends.stale_tags(tags, older_than="90D", now="2024-06-01")
    assert out[["repository", "tag"]].values.tolist() == [["app", "latest"], ["app", "v1"]]
    assert out["age_days"].tolist() == [142.5, 142.5]
    assert str(out["age_days"].dtype) == "Float64"
    everything = trends.stale_tags(tags, older_than="0D", now=NOW)
    assert everything["created_at"].is_monotonic_increasing
    assert len(everything) == 6  # 1970 and NaT rows are not stale by age; attestation excluded
    assert set(everything["repository"]) == {"app", "tool"}
    assert trends.stale_tags(tags, older_than="365D", now=NOW).empty


def test_stale_tags_default_now_and_empty():
    old = frames(image("svc", "old", "m", "2001-01-01T00:00:00Z", [("l", 1)]))[0]
    assert trends.stale_tags(old)["tag"].tolist() == ["old"]
    out = trends.stale_tags(empty(TAGS_SCHEMA))
    assert out.empty and list(out.columns) == [*TAGS_SCHEMA, "age_days"]
    assert str(out["age_days"].dtype) == "Float64"


def test_age_breakdown_buckets(aged):
    out = trends.age_breakdown(aged, now=NOW)
    assert out["age"].tolist() == ["<30d", "30-90d", "90-180d", "180-365d", "365-730d",
                                   ">730d", "unknown"]
    assert out["age"].cat.ordered
    assert out["rows"].tolist() == [2, 1, 1, 1, 1, 1, 2]
    assert out["layer_size"].tolist() == [1 + 2, 4, 8, 16, 32, 64, 128 + 256]
    assert dict(out.dtypes.astype(str)) == {"age": "category", "rows": "Int64",
                                            "layer_size": "Int64"}
    custom = trends.age_breakdown(aged, bins=("13h", "365D"), now=NOW)
    assert custom["age"].tolist() == ["<13h", "13h-365d", ">365d", "unknown"]
    assert custom["rows"].tolist() == [1, 4, 2, 2]
    with pytest.raises(ValueError, match="increasing"):
        trends.age_breakdown(aged, bins=("90D", "30D"))


def test_age_breakdown_empty():
    out = trends.age_breakdown(empty(TAGS_SCHEMA), now=NOW)
    assert len(out) == 7 and out["rows"].sum() == 0 and out["layer_size"].sum() == 0


# --------------------------------------------------------------------------------- shared layers


def test_shared_layers_saved_bytes(example):
    _, layers = example
    out = trends.shared_layers(layers, top=3)
    assert list(out.columns) == list(trends.SHARED_LAYERS_SCHEMA)
    assert out.iloc[0].to_dict() == {"layer_digest": "sha256:base", "size": 1000,
                                     "repositories": 3, "tags": 6, "saved_bytes": 2000}
    # Nothing else is in two repositories: then the largest first.
    assert out["layer_digest"].tolist()[1:] == ["sha256:r", "sha256:n"]
    assert out["saved_bytes"].tolist()[1:] == [0, 0]
    assert out.loc[1, "tags"] == 2
    assert len(trends.shared_layers(layers, top=None)) == layers["layer_digest"].nunique()


def test_shared_layers_empty():
    out = trends.shared_layers(empty(LAYERS_SCHEMA))
    assert out.empty and dict(out.dtypes.astype(str)) == trends.SHARED_LAYERS_SCHEMA


# ------------------------------------------------------------------------------------ no mutation


def test_inputs_are_not_mutated(example, aged):
    tags, layers = example
    copies = tags.copy(deep=True), layers.copy(deep=True), aged.copy(deep=True)
    growth = trends.growth(tags, layers)
    growth_copy = growth.copy(deep=True)
    trends.forecast(growth, capacity=GiB)
    trends.stale_tags(tags, now=NOW)
    trends.age_breakdown(aged, now=NOW)
    trends.tag_ages(aged, now=NOW)
    trends.shared_layers(layers)
    pd.testing.assert_frame_equal(tags, copies[0])
    pd.testing.assert_frame_equal(layers, copies[1])
    pd.testing.assert_frame_equal(aged, copies[2])
    pd.testing.assert_frame_equal(growth, growth_copy)
