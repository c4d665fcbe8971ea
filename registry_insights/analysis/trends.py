"""Trends over time: growth, a forecast, tag ages and shared layers (pure ``frame -> frame``).

No I/O, no printing, inputs never mutated (they are coerced to their schema on a copy); the frame
comes first so ``.pipe`` works. Sizes are bytes (``Int64`` when counted, ``Float64`` when fitted),
times are UTC (``datetime64[ns, UTC]``).

Unknown dates
    A ``created_at`` that is missing (NaT) or earlier than :data:`EARLIEST_KNOWN` (1980-01-01 UTC)
    is *unknown*: reproducible builds set 1970-01-01 on purpose, so such an image was not pushed
    then. Unknown dates never land on a timeline and never make a tag "stale by age"; each
    function says where they are reported instead.

Storage model (as :mod:`registry_insights.analysis`)
    Every manifest, index, config and layer is a blob stored once per registry, whatever the
    number of repositories and tags referencing it (CNCF Distribution, OCI distribution-spec).

The forecast (:func:`forecast`)
    The model
        Theil–Sen robust linear fit of ``cumulative_bytes`` (bytes) against time (days): the
        slope is the median of the slopes between every pair of points. One outlier period (a
        large base image pushed once) moves it far less than a least-squares fit. It is fitted
        on the last ``periods`` rows (all by default; O(n²) pairs, so thousands of daily
        periods are better cut down).
    The anchor
        With ``anchor="last"`` (the default) the line goes through the last observation
        (intercept ``bytes_last - slope * days_last``): the forecast starts where the registry
        is, not where a fit of its past would put it. With ``anchor=None`` the intercept is
        the median of ``bytes - slope * days`` (plain Theil–Sen).
    The band
        ``lower``/``upper`` are the trend plus the 10 % / 90 % quantiles of the fit's
        residuals (widened to include 0, so the band covers the trend itself and, anchored,
        the last observation); after the last observation they widen linearly with the
        10 % / 90 % quantiles of the pairwise slopes (slope uncertainty). On an exactly linear
        history the band collapses onto the trend. After the last observation the trend and
        band never go below 0 bytes (a shrinking registry stops at empty).
    The time of a value
        ``cumulative_bytes`` is what is stored at the end of its period, so it is placed at
        ``period_end`` (as :func:`growth` gives it), or at ``period_start`` when the frame has
        no ``period_end``. The last period may still be running (partly counted): pass
        ``periods`` over a frame without it, or drop it, if that matters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from ..frames.schema import (
    EARLIEST_KNOWN,
    FORECAST_SCHEMA,
    GROWTH_SCHEMA,
    LAYERS_SCHEMA,
    SHARED_LAYERS_SCHEMA,
    TAGS_SCHEMA,
    UTC_NS,
    coerce,
    empty,
    image_mask,
    image_rows,
    utc,
)
from ..registry import mediatypes as mt

#: The quantiles of the forecast band (lower, upper).
BAND_QUANTILES = (0.10, 0.90)

_NS_PER_DAY = 86_400 * 10**9
_DAY = pd.Timedelta(days=1)


# ----------------------------------------------------------------------------------------------
# growth


def growth(tags: pd.DataFrame, layers: pd.DataFrame, freq: str = "MS") -> pd.DataFrame:
    """Bytes, tags and images first seen per period: how fast the registry grows.

    A blob's first-seen time is the earliest known ``created_at`` of any tags row that uses it
    (``created_at`` is the image's build time from its config: the closest the registry
    protocol comes to a push time). Blobs are counted once registry-wide, in the period of
    their first use, so ``cumulative_bytes`` at the last period is what the registry stores for
    the dated images (compare :func:`~registry_insights.analysis.storage_summary`'s total
    ``unique_bytes``, which adds ``attrs["undated_bytes"]``).

    Parameters
    ----------
    tags : DataFrame
        The tags frame (:data:`~registry_insights.schema.TAGS_SCHEMA`). Its blobs: the platform
        manifests (``manifest_digest``, ``manifest_size``), the configs (``config_digest``,
        ``config_size``) and the indexes (``digest``, ``size`` of rows whose ``media_type`` is
        an index). Rows with ``is_image`` False (attestations, when the frame has them) carry
        no build time: they take the earliest known date of the image rows of the same index.
    layers : DataFrame
        The layers frame (:data:`~registry_insights.schema.LAYERS_SCHEMA`): ``layer_digest``,
        ``size``; a layer row takes the date of its ``manifest_digest`` in ``tags``.
    freq : str, default "MS"
        A pandas offset alias for the periods ("MS" month start, "W-MON", "D", "QS"...).

    Returns
    -------
    DataFrame
        :data:`GROWTH_SCHEMA`, one row per period from the period holding the earliest known
        date to the one holding the latest, empty periods included:

        - ``period_start``, ``period_end`` (``datetime64[ns, UTC]``; the end is exclusive and
          is the next period's start);
        - ``new_bytes`` (``Int64`` bytes): distinct blobs first seen in the period;
        - ``cumulative_bytes`` (``Int64`` bytes): running sum of ``new_bytes``, the bytes
          stored at the end of the period;
        - ``tags_pushed`` (``Int64``): distinct (repository, tag) whose earliest image row was
          created in the period;
        - ``images`` (``Int64``): distinct image ``manifest_digest`` first seen in the period.

        ``attrs``: ``undated_bytes`` (``int`` bytes of the blobs used only by rows of unknown
        date, or not found in ``tags``), ``undated_rows`` (``int``, tags rows of unknown date,
        left out of the timeline), ``freq`` (the ``freq`` given).

    Raises
    ------
    ValueError
        When ``freq`` is not a pandas offset alias.
    """
    offset = to_offset(freq)
    tags = coerce(tags, TAGS_SCHEMA)
    layers = coerce(layers, LAYERS_SCHEMA)
    layers = layers[~layers["foreign"].fillna(False).astype(bool)]  # never stored
    images = image_mask(tags)
    row_date = _row_dates(tags, images)

    manifest_date = row_date.groupby(tags["manifest_digest"]).min()
    index_rows = tags["media_type"].isin(list(mt.INDEXES)).to_numpy()
    uses = pd.concat([
        _uses(tags["manifest_digest"], tags["manifest_size"], row_date),
        _uses(tags["config_digest"], tags["config_size"], row_date),
        _uses(tags["digest"][index_rows], tags["size"][index_rows], row_date[index_rows]),
        _uses(layers["layer_digest"], layers["size"],
              _lookup(layers["manifest_digest"], manifest_date)),
    ], ignore_index=True)
    uses = uses[uses["digest"].notna()]
    blobs = uses.groupby("digest").agg(size=("size", "max"), first=("date", "min"))
    undated_bytes = int(blobs.loc[blobs["first"].isna(), "size"].sum())
    blobs = blobs[blobs["first"].notna()]

    dated = images & row_date.notna()
    tag_first = row_date[dated].groupby(
        [tags.loc[dated, "repository"], tags.loc[dated, "tag"]]).min()
    image_first = row_date[dated].groupby(tags.loc[dated, "manifest_digest"]).min()

    out = _per_period(row_date.dropna(), offset, blobs, tag_first, image_first)
    out.attrs.update(undated_bytes=undated_bytes, undated_rows=int(row_date.isna().sum()),
                     freq=freq)
    return out


def _per_period(known: pd.Series, offset, blobs: pd.DataFrame, tag_first: pd.Series,
                image_first: pd.Series) -> pd.DataFrame:
    """:func:`growth`'s rows: blobs' first use, tags and images counted per period."""
    if known.empty:
        return empty(GROWTH_SCHEMA)
    start = offset.rollback(known.min().normalize())
    edges = pd.date_range(start, known.max(), freq=offset).as_unit("ns")
    slots = range(len(edges))

    def per_period(times: pd.Series, values: pd.Series | None = None) -> pd.Series:
        slot = np.searchsorted(edges.asi8, _ns(times), side="right") - 1
        data = (pd.Series(1, index=range(len(times)), dtype="Int64") if values is None
                else pd.Series(values.to_numpy(), dtype="Int64"))
        return data.groupby(slot).sum().reindex(slots, fill_value=0)

    new_bytes = per_period(blobs["first"], blobs["size"].fillna(0))
    return coerce(pd.DataFrame({
        "period_start": edges,
        "period_end": edges.shift(1),
        "new_bytes": new_bytes.to_numpy(),
        "cumulative_bytes": new_bytes.cumsum().to_numpy(),
        "tags_pushed": per_period(tag_first).to_numpy(),
        "images": per_period(image_first).to_numpy(),
    }), GROWTH_SCHEMA)


# ----------------------------------------------------------------------------------------------
# forecast


def forecast(growth: pd.DataFrame, horizon: str | pd.Timedelta = "365D",
             capacity: float | None = None, periods: int | None = None,
             anchor: str | None = "last") -> pd.DataFrame:
    """Fit a linear trend to ``cumulative_bytes`` and extend it ``horizon`` into the future.

    How the line, its anchor and its band are made: the module docstring, "The forecast".

    Parameters
    ----------
    growth : DataFrame
        :func:`growth`'s frame (``period_end`` or ``period_start``, ``cumulative_bytes``).
    horizon : str or Timedelta, default "365D"
        How far past the last observation the forecast runs.
    capacity : float, optional
        Storage capacity in bytes; its crossing date is computed.
    periods : int, optional
        Fit on the last ``periods`` observations only (at least 2); default all.
    anchor : {"last", None}, default "last"
        Make the trend pass through the last observation, or not (see "The anchor").

    Returns
    -------
    DataFrame
        :data:`FORECAST_SCHEMA`: ``date`` (``datetime64[ns, UTC]``), ``kind`` ("history" for
        every observed row, then "forecast" rows stepping by the growth frame's ``freq``
        attribute, else by its median spacing, up to the horizon, which is always the last
        row), ``bytes`` (``Float64``, observed; NA on forecast rows), ``trend``, ``lower``,
        ``upper`` (``Float64`` bytes). With fewer than two observations no trend can be
        fitted: history rows only, trend NA, attrs NaN.

        ``attrs``: ``slope_bytes_per_day`` (float), ``intercept_bytes`` (float, the trend at
        ``origin``), ``origin`` (Timestamp UTC, the first observation), ``horizon_end``
        (Timestamp UTC), ``projected_bytes`` (float, the trend at ``horizon_end``),
        ``capacity`` (as given), ``capacity_date`` (see :func:`capacity_date`), ``periods``
        (int, observations fitted), ``anchor`` (as given), ``model`` (a short description),
        ``source`` (the growth frame's ``attrs["source"]``: ``"snapshots"`` for
        :func:`~registry_insights.analysis.history.measured_growth`, else ``"build dates"``).

    Raises
    ------
    ValueError
        When ``periods`` is below 2, ``horizon`` is negative or ``anchor`` is unknown.
    """
    horizon = _timedelta(horizon, "horizon")
    if anchor not in ("last", None):
        raise ValueError(f"anchor={anchor!r}: give 'last' (through the last observation) or "
                         "None")
    if periods is not None and periods < 2:
        raise ValueError(f"periods={periods!r}: a trend needs at least 2 periods (or None: all)")
    dates, observed = _observations(growth)

    attrs = {"slope_bytes_per_day": np.nan, "intercept_bytes": np.nan,
             "origin": dates[0] if len(dates) else pd.NaT, "horizon_end": pd.NaT,
             "projected_bytes": np.nan, "capacity": capacity, "capacity_date": pd.NaT,
             "periods": 0, "model": "none: fewer than 2 observations",
             "source": growth.attrs.get("source", "build dates"), "anchor": anchor}
    if len(dates) < 2:
        out = coerce(pd.DataFrame({"date": dates, "kind": "history", "bytes": observed}),
                     FORECAST_SCHEMA)
        out.attrs.update(attrs)
        return out

    out, slope, intercept, used = _fitted_frame(dates, observed, periods, anchor, horizon,
                                                growth.attrs.get("freq"))
    last, end = dates[-1], dates[-1] + horizon
    fit = slice(-periods, None) if periods else slice(None)
    attrs.update(
        slope_bytes_per_day=slope, intercept_bytes=intercept, horizon_end=end,
        projected_bytes=max(0.0, float(intercept + slope * _days_since(
            pd.DatetimeIndex([end]), dates[0])[0])),
        periods=used,
        model=(f"Theil-Sen linear fit of cumulative bytes on {used} periods "
               f"({dates[fit][0]:%Y-%m-%d}..{last:%Y-%m-%d})"
               + (", through the last observation" if anchor == "last" else "") + "; band: "
               f"{BAND_QUANTILES[0]:.0%}-{BAND_QUANTILES[1]:.0%} residual and slope quantiles"),
    )
    out.attrs.update(attrs)
    out.attrs["capacity_date"] = capacity_date(out, capacity)
    return out


def _observations(growth: pd.DataFrame) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The growth frame's (time, stored bytes) points, oldest first (see "The time of a
    value" in the module docstring)."""
    time_column = "period_end" if "period_end" in growth.columns else "period_start"
    history = growth[[time_column, "cumulative_bytes"]].dropna()
    dates = pd.DatetimeIndex(history[time_column].astype(UTC_NS)).as_unit("ns")
    order = np.argsort(dates.asi8, kind="stable")
    observed = history["cumulative_bytes"].to_numpy(dtype="float64", na_value=np.nan)[order]
    return dates[order], observed


def _fitted_frame(dates: pd.DatetimeIndex, observed: np.ndarray, periods: int | None,
                  anchor: str | None, horizon: pd.Timedelta, freq) -> tuple:
    """:func:`forecast`'s rows (history, then forecast) with trend and band; returns
    ``(frame, slope, intercept, observations fitted)``."""
    days = _days_since(dates, dates[0])
    fit = slice(-periods, None) if periods else slice(None)
    slope, intercept, pair_slopes = _theil_sen(days[fit], observed[fit])
    if anchor == "last":
        intercept = float(observed[-1] - slope * days[-1])
    residuals = observed[fit] - (intercept + slope * days[fit])
    r_low, r_high = np.quantile(residuals, BAND_QUANTILES)
    r_low, r_high = min(float(r_low), 0.0), max(float(r_high), 0.0)
    s_low, s_high = np.quantile(pair_slopes, BAND_QUANTILES)

    last = dates[-1]
    end = last + horizon
    future = _future_dates(last, end, freq, dates)
    all_dates = dates.append(future)
    all_days = _days_since(all_dates, dates[0])
    ahead = np.maximum(all_days - days[-1], 0.0)
    trend = intercept + slope * all_days
    lower = trend + r_low + (s_low - slope) * ahead
    upper = trend + r_high + (s_high - slope) * ahead
    is_future = ahead > 0
    # a registry cannot store less than nothing: a shrinking trend stops at 0
    trend, lower, upper = (np.where(is_future, np.maximum(v, 0.0), v)
                           for v in (trend, lower, upper))
    out = coerce(pd.DataFrame({
        "date": all_dates,
        "kind": ["history"] * len(dates) + ["forecast"] * len(future),
        "bytes": np.concatenate([observed, np.full(len(future), np.nan)]),
        "trend": trend,
        "lower": lower,
        "upper": upper,
    }), FORECAST_SCHEMA)
    return out, slope, intercept, len(days[fit])


def capacity_date(forecast: pd.DataFrame, capacity: float | None) -> pd.Timestamp:
    """When the trend of a :func:`forecast` frame reaches ``capacity`` bytes.

    Solves ``intercept + slope * days = capacity`` from the frame's ``attrs``, to the
    nanosecond, whether the date falls inside the forecast horizon or beyond it; it is in the
    past when the trend already exceeds the capacity.

    Returns
    -------
    Timestamp
        UTC, or ``NaT`` when ``capacity`` is None, the slope is not positive (the trend never
        reaches it), no trend was fitted, or the date is past what a Timestamp holds (2262).
    """
    slope = forecast.attrs.get("slope_bytes_per_day", np.nan)
    intercept = forecast.attrs.get("intercept_bytes", np.nan)
    origin = forecast.attrs.get("origin", pd.NaT)
    if capacity is None or not slope > 0 or np.isnan(intercept) or pd.isna(origin):
        return pd.NaT
    nanoseconds = round((float(capacity) - intercept) / slope * _NS_PER_DAY)
    try:
        return (origin + pd.Timedelta(nanoseconds, unit="ns")).as_unit("ns")
    except (OverflowError, ValueError):
        return pd.NaT


# ----------------------------------------------------------------------------------------------
# ages


def tag_ages(tags: pd.DataFrame, now: object = None) -> pd.DataFrame:
    """The image rows of the tags frame with their age.

    Parameters
    ----------
    tags : DataFrame
        The tags frame; rows with ``is_image`` False are left out (missing counts as True).
    now : Timestamp, datetime or str, optional
        The reference time (naive means UTC); default the current UTC time.

    Returns
    -------
    DataFrame
        The image rows (:data:`~registry_insights.schema.TAGS_SCHEMA`, index reset) plus
        ``age_days`` (``Float64``, days between ``created_at`` and ``now``; NA when the date is
        unknown, negative when ``created_at`` is after ``now``).
    """
    now = utc(now)
    tags = coerce(tags, TAGS_SCHEMA)
    tags = image_rows(tags).reset_index(drop=True)
    age = (now - _known(tags["created_at"])) / _DAY
    return tags.assign(age_days=age.astype("Float64"))


def stale_tags(tags: pd.DataFrame, older_than: str | pd.Timedelta = "180D",
               now: object = None) -> pd.DataFrame:
    """Image rows created before ``now - older_than``, oldest first.

    Rows of unknown date (NaT, or before 1980: reproducible builds) are never stale by age.
    A tag is listed once per platform row; age is build age (``created_at``), not push time.

    Parameters
    ----------
    tags : DataFrame
        The tags frame.
    older_than : str or Timedelta, default "180D"
    now : Timestamp, datetime or str, optional
        Default the current UTC time (naive means UTC).

    Returns
    -------
    DataFrame
        The matching rows (TAGS_SCHEMA columns, index reset) plus ``age_days`` (``Float64``
        days), sorted by ``created_at``, then repository, tag and platform.
    """
    older_than = _timedelta(older_than, "older_than")
    now = utc(now)
    aged = tag_ages(tags, now)
    stale = aged[(aged["created_at"] < now - older_than) & aged["age_days"].notna()]
    stale = stale.sort_values(["created_at", "repository", "tag", "platform"], kind="stable")
    return stale.reset_index(drop=True)


def age_breakdown(tags: pd.DataFrame,
                  bins: tuple[str | pd.Timedelta, ...] = ("30D", "90D", "180D", "365D", "730D"),
                  now: object = None) -> pd.DataFrame:
    """Image rows and their ``layer_size`` per age bucket.

    Parameters
    ----------
    tags : DataFrame
        The tags frame (image rows only are counted).
    bins : tuple of str or Timedelta
        Increasing, positive bucket edges. Buckets are half-open: ``"<30d"`` is an age below
        30 days (future dates included), ``"30-90d"`` is 30 days up to 90 days excluded,
        ``">730d"`` is 730 days or more. ``"unknown"`` holds the rows of unknown date.
    now : Timestamp, datetime or str, optional
        Default the current UTC time (naive means UTC).

    Returns
    -------
    DataFrame
        :data:`AGE_SCHEMA`, one row per bucket in age order, ``"unknown"`` last, every bucket
        present: ``age`` (ordered categorical label), ``rows`` (``Int64``, image rows),
        ``layer_size`` (``Int64`` bytes, the sum of the rows' ``layer_size``: a logical size,
        layers shared between rows are counted per row, so it is not what deleting them frees).

    Raises
    ------
    ValueError
        When ``bins`` is empty, not increasing or not positive.
    """
    edges = [_timedelta(b, "bins") for b in bins]
    if not edges or edges[0] <= pd.Timedelta(0) or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bins={bins!r}: give increasing, positive durations such as '30D'")
    names = [_duration_label(e) for e in edges]
    labels = ([f"<{names[0]}"] + [f"{a[:-1] if a[-1] == b[-1] else a}-{b}"
                                  for a, b in zip(names, names[1:])]
              + [f">{names[-1]}", "unknown"])
    aged = tag_ages(tags, now)
    days = aged["age_days"].to_numpy(dtype="float64", na_value=np.nan)
    slot = np.searchsorted([e / _DAY for e in edges], days, side="right")
    slot = np.where(np.isnan(days), len(labels) - 1, slot)
    grouped = aged.groupby(slot)
    rows = grouped.size().reindex(range(len(labels)), fill_value=0)
    sizes = grouped["layer_size"].sum().reindex(range(len(labels)), fill_value=0)
    return pd.DataFrame({
        "age": pd.Categorical(labels, categories=labels, ordered=True),
        "rows": pd.array(rows.to_numpy(), dtype="Int64"),
        "layer_size": pd.array(sizes.to_numpy(), dtype="Int64"),
    })


# ----------------------------------------------------------------------------------------------
# sharing


def shared_layers(layers: pd.DataFrame, top: int | None = 20) -> pd.DataFrame:
    """The layers that save the most storage by being stored once for several repositories.

    Parameters
    ----------
    layers : DataFrame
        The layers frame (:data:`~registry_insights.schema.LAYERS_SCHEMA`), every row counted
        (attestation layers too, when the frame has them).
    top : int or None, default 20
        How many rows to keep; None keeps all.

    Returns
    -------
    DataFrame
        :data:`SHARED_LAYERS_SCHEMA`, one row per layer digest: ``size`` (``Int64`` bytes),
        ``repositories`` (distinct repositories using it), ``tags`` (distinct (repository,
        tag) using it), ``saved_bytes`` = ``size * (repositories - 1)`` (``Int64`` bytes the
        registry saves by storing it once rather than once per repository). Sorted by
        ``saved_bytes``, then ``size`` (both descending), then digest.
    """
    layers = coerce(layers, LAYERS_SCHEMA)
    layers = layers[layers["layer_digest"].notna()]
    if layers.empty:
        return empty(SHARED_LAYERS_SCHEMA)
    by_digest = layers.groupby("layer_digest")
    out = pd.DataFrame({
        "size": by_digest["size"].max(),
        "repositories": by_digest["repository"].nunique(),
        "tags": layers.drop_duplicates(["layer_digest", "repository", "tag"])
                      .groupby("layer_digest").size(),
    }).rename_axis("layer_digest").reset_index()
    out = coerce(out, SHARED_LAYERS_SCHEMA)
    out["saved_bytes"] = out["size"] * (out["repositories"] - 1)
    out = out.sort_values(["saved_bytes", "size", "layer_digest"],
                          ascending=[False, False, True], kind="stable", na_position="last")
    if top is not None:
        out = out.head(top)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# helpers



def _known(times: pd.Series) -> pd.Series:
    """``times`` as UTC, with unknown dates (NaT, before :data:`EARLIEST_KNOWN`) as NaT."""
    times = times.astype(UTC_NS)
    return times.where(times >= EARLIEST_KNOWN)


def _row_dates(tags: pd.DataFrame, images: pd.Series) -> pd.Series:
    """Each tags row's known date; non-image rows without one take their index's earliest."""
    own = _known(tags["created_at"])
    index_date = own[images].groupby(tags.loc[images, "digest"]).min()
    borrowed = _lookup(tags["digest"], index_date)
    return own.where(own.notna() | images, borrowed)


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (NaT/NA when absent), on ``keys``' index.

    (``Series.map`` with an empty datetime table fails in pandas 3.)
    """
    return pd.Series(table.reindex(keys.to_numpy()).array, index=keys.index)


def _uses(digests: pd.Series, sizes: pd.Series, dates: pd.Series) -> pd.DataFrame:
    """One row per use of a blob: digest, size (bytes), date (UTC; NaT when unknown)."""
    return pd.DataFrame({"digest": digests.astype("string").array,
                         "size": sizes.astype("Int64").array,
                         "date": dates.astype(UTC_NS).array})


def _ns(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _days_since(dates: pd.DatetimeIndex, origin: pd.Timestamp) -> np.ndarray:
    """Float days from ``origin`` (exact for whole days: whole-day nanoseconds fit a float)."""
    return (dates.asi8 - origin.as_unit("ns").value).astype("float64") / _NS_PER_DAY


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Median pairwise slope, median intercept, and the pairwise slopes."""
    first, second = np.triu_indices(len(x), k=1)
    dx = x[second] - x[first]
    distinct = dx != 0
    slopes = (y[second] - y[first])[distinct] / dx[distinct]
    if slopes.size == 0:  # every observation at the same time
        slopes = np.zeros(1)
    slope = float(np.median(slopes))
    intercept = float(np.median(y - slope * x))
    return slope, intercept, slopes


def _future_dates(last: pd.Timestamp, end: pd.Timestamp, freq: object,
                  history: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Dates after ``last`` up to ``end`` (included), by ``freq`` or the history's spacing."""
    if end <= last:
        return pd.DatetimeIndex([], dtype=UTC_NS)
    try:
        steps = pd.date_range(last, end, freq=freq) if freq else None
    except (ValueError, TypeError):
        steps = None
    if steps is None:
        spacing = pd.Timedelta(int(np.median(np.diff(history.asi8))), unit="ns")
        steps = pd.date_range(last, end, freq=max(spacing, _DAY))
    steps = steps.as_unit("ns")
    steps = steps[steps > last]
    if len(steps) == 0 or steps[-1] < end:
        steps = steps.append(pd.DatetimeIndex([end]).as_unit("ns"))
    return pd.DatetimeIndex(steps, freq=None)


def _timedelta(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}={value!r} is not a duration: give e.g. '180D'") from error
    if pd.isna(delta) or delta < pd.Timedelta(0):
        raise ValueError(f"{name}={value!r}: give a positive duration such as '180D'")
    return delta




def _duration_label(delta: pd.Timedelta) -> str:
    if delta % _DAY == pd.Timedelta(0):
        return f"{delta // _DAY}d"
    if delta % pd.Timedelta(hours=1) == pd.Timedelta(0):
        return f"{delta // pd.Timedelta(hours=1)}h"
    return str(delta)
