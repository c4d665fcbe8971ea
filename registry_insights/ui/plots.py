"""Matplotlib views of the analysis frames.

Every plot takes its frame first and ``ax=None`` (a new figure when None), returns the Axes and
never calls ``plt.show()``; it draws what :mod:`~registry_insights.analysis` and
:mod:`~registry_insights.trends` computed and computes nothing of its own. Byte axes use binary
units (1 KiB = 1024 B, then MiB, GiB, TiB, ...), said in their labels. ``pyplot`` is imported
inside the functions, so importing this module picks no backend (tests set ``Agg``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from ..analysis import trends
from ..analysis.storage import TOTAL
from ..frames.schema import image_rows
from ..units import _BINARY_UNITS, _DECIMAL_UNITS, format_bytes, short_digest  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The unit note of byte axis labels.
BINARY_NOTE = "binary units: 1 KiB = 1024 B"


class BytesFormatter(FuncFormatter):
    """Byte tick labels: "1.5 GiB", trailing zeros dropped ("2 GiB").

    With ``same_unit`` (linear axes) every tick of an axis is written in the unit of its largest
    tick (0.5 GiB, 1 GiB, not 512 MiB, 1 GiB); without it (log axes, or a value formatted on
    its own) each value gets its own unit, as :func:`format_bytes`.
    """

    def __init__(self, binary: bool = True, same_unit: bool = True) -> None:
        super().__init__(self._label)
        self.binary, self.same_unit = binary, same_unit
        self._exponent: int | None = None

    def set_locs(self, locs) -> None:
        super().set_locs(locs)
        base = 1024.0 if self.binary else 1000.0
        largest = max((abs(v) for v in locs if np.isfinite(v)), default=0.0)
        self._exponent = None
        if self.same_unit and largest >= base:
            self._exponent = min(int(math.log(largest, base) + 1e-9), len(_BINARY_UNITS) - 1)

    def _label(self, value: float, _position: int | None = None) -> str:
        if self._exponent is None:
            text = format_bytes(value, self.binary, precision=3)
        else:
            units = _BINARY_UNITS if self.binary else _DECIMAL_UNITS
            base = 1024.0 if self.binary else 1000.0
            text = f"{value / base**self._exponent:.3f} {units[self._exponent]}"
        number, unit = text.rsplit(" ", 1)
        if "." in number:
            number = number.rstrip("0").rstrip(".")
        return f"{'0' if number == '-0' else number} {unit}"


def bytes_formatter(binary: bool = True, same_unit: bool = True) -> BytesFormatter:
    """A :class:`~matplotlib.ticker.FuncFormatter` for byte axes (see :class:`BytesFormatter`)."""
    return BytesFormatter(binary, same_unit)


class BytesLocator(MaxNLocator):
    """Ticks at round multiples of the axis' binary (or decimal) unit: 0, 2, 4 GiB, not 1.86."""

    def __init__(self, binary: bool = True, nbins: int | str = "auto") -> None:
        super().__init__(nbins=nbins, steps=[1, 2, 2.5, 5, 10])
        self.base = 1024.0 if binary else 1000.0

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        largest = max(abs(vmin), abs(vmax), 1.0)
        scale = self.base ** max(int(math.log(largest, self.base)), 0)
        return super().tick_values(vmin / scale, vmax / scale) * scale


def set_bytes_axis(axis, binary: bool = True) -> None:
    """Put :class:`BytesLocator` and :func:`bytes_formatter` on a linear axis (``ax.xaxis``).

    Ticks fall on round multiples of one unit and are all written in it.
    """
    axis.set_major_locator(BytesLocator(binary))
    axis.set_major_formatter(bytes_formatter(binary))


def storage_by_repository(summary: pd.DataFrame, ax: Axes | None = None, top: int = 15) -> Axes:
    """Stacked horizontal bars of each repository's exclusive and shared bytes.

    Parameters
    ----------
    summary : DataFrame
        :func:`~registry_insights.analysis.storage_summary`'s frame; the :data:`TOTAL` row is
        left out. Bar lengths are its ``exclusive_bytes`` and ``shared_bytes`` as they are.
    ax : Axes, optional
    top : int, default 15
        The ``top`` repositories by ``unique_bytes`` (exclusive + shared), largest on top.
    """
    ax = _axes(ax)
    rows = summary[summary["repository"] != TOTAL]
    exclusive = rows["exclusive_bytes"].to_numpy(dtype="float64", na_value=0.0)
    shared = rows["shared_bytes"].to_numpy(dtype="float64", na_value=0.0)
    order = np.argsort(-(exclusive + shared), kind="stable")[:top]
    names = rows["repository"].astype(str).to_numpy()[order]
    exclusive, shared = exclusive[order], shared[order]
    positions = np.arange(len(order))
    ax.barh(positions, exclusive, label="exclusive (freed by deleting the repository)")
    ax.barh(positions, shared, left=exclusive, label="shared with other repositories")
    ax.set_yticks(positions, labels=names)
    ax.invert_yaxis()
    ax.set_xlabel(f"stored bytes, unique blobs ({BINARY_NOTE})")
    ax.set_ylabel("repository")
    set_bytes_axis(ax.xaxis)
    shown = f"top {len(order)} of {len(rows)}" if len(rows) > len(order) else f"{len(rows)}"
    ax.set_title(f"Storage by repository ({shown} repositories)")
    if len(order):
        ax.legend(loc="best")
    else:
        _no_data(ax)
    return ax


def growth_forecast(forecast: pd.DataFrame, ax: Axes | None = None,
                    capacity: float | None = None) -> Axes:
    """Observed cumulative bytes, the fitted trend, its band, and the capacity line.

    Each observation is a marked point (larger when the forecast's ``attrs["source"]`` is
    ``"snapshots"``: stored bytes measured at each snapshot), the last one circled: an
    anchored forecast starts there.

    Parameters
    ----------
    forecast : DataFrame
        :func:`~registry_insights.trends.forecast`'s frame (and its ``attrs``).
    ax : Axes, optional
    capacity : float, optional
        Bytes; default the capacity the forecast was made with. Its crossing date, from
        :func:`~registry_insights.trends.capacity_date`, is marked when it falls inside the
        plotted dates and named in the legend either way.
    """
    ax = _axes(ax)
    attrs = forecast.attrs
    history = forecast[forecast["kind"] == "history"]
    dates = _naive_utc(forecast["date"])
    measured = attrs.get("source") == "snapshots"
    ax.plot(_naive_utc(history["date"]), _floats(history["bytes"]), marker="o",
            markersize=6 if measured else 3,
            label=("measured at snapshots (stored bytes)" if measured
                   else "observed (cumulative unique bytes, by build date)"))
    if len(history):
        last = history.iloc[-1]
        ax.plot([_naive_utc(history["date"].iloc[-1:])[0]], [float(last["bytes"])],
                marker="o", markersize=9, markerfacecolor="none", markeredgecolor="black",
                linestyle="none", label="last observation")
    if forecast["trend"].notna().any():
        slope = attrs.get("slope_bytes_per_day", np.nan)
        ax.plot(dates, _floats(forecast["trend"]), linestyle="--",
                label=f"trend ({format_bytes(slope)}/day)")
        low, high = trends.BAND_QUANTILES
        ax.fill_between(dates, _floats(forecast["lower"]), _floats(forecast["upper"]),
                        alpha=0.2, label=f"{low:.0%}-{high:.0%} band")
    if capacity is None:
        capacity = attrs.get("capacity")
    if capacity is not None:
        when = trends.capacity_date(forecast, capacity)
        label = f"capacity {format_bytes(capacity)}"
        history = forecast.loc[forecast["kind"] == "history", "bytes"] if len(forecast) else []
        observed = float(pd.Series(history).max()) if len(history) else float("nan")
        if observed >= capacity:
            label += ", already exceeded"
        elif not pd.isna(when):
            label += f", reached {when:%Y-%m-%d}"
            inside = len(forecast) and forecast["date"].min() <= when <= forecast["date"].max()
            if inside:
                ax.plot([when.tz_localize(None)], [capacity], marker="X", markersize=10,
                        color="tab:red", linestyle="none")
                ax.axvline(when.tz_localize(None), color="tab:red", linestyle=":", linewidth=1)
            else:
                label += " (beyond the plot)"
        ax.axhline(capacity, color="tab:red", linewidth=1.5, label=label)
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel(f"stored bytes ({BINARY_NOTE})")
    set_bytes_axis(ax.yaxis)
    ax.set_title("Storage growth and forecast")
    if len(forecast):
        ax.legend(loc="upper left")
    else:
        _no_data(ax)
    return ax


def tag_age_histogram(tags: pd.DataFrame, ax: Axes | None = None, now: object = None,
                      bins: int | str = 30) -> Axes:
    """Histogram of image rows' ages in days (:func:`~registry_insights.trends.tag_ages`).

    Rows of unknown date (NaT, or before 1980) are not drawn; the title says how many.
    """
    ax = _axes(ax)
    ages = trends.tag_ages(tags, now)["age_days"]
    known = ages.dropna().to_numpy(dtype="float64")
    unknown = int(ages.isna().sum())
    if len(known):
        ax.hist(known, bins=bins, label=f"{len(known)} image rows")
        ax.legend(loc="upper right")
    else:
        _no_data(ax)
    ax.set_xlabel("age (days since created_at)")
    ax.set_ylabel("image rows (count)")
    ax.set_title(f"Tag age ({unknown} rows of unknown date not shown)")
    return ax


def shared_layers(shared: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of the bytes each layer saves by being shared (:func:`trends.shared_layers`).

    Labels are short digests (algorithm and 12 hex characters) with the number of repositories.
    Layers that save nothing (used by one repository) are left out; the title says how many.
    """
    ax = _axes(ax)
    saving = shared[shared["saved_bytes"].fillna(0) > 0]
    saved = saving["saved_bytes"].to_numpy(dtype="float64")
    labels = [f"{short_digest(d)} ({r} repos)"
              for d, r in zip(saving["layer_digest"], saving["repositories"])]
    positions = np.arange(len(saved))
    ax.barh(positions, saved, label="saved bytes = size x (repositories - 1)")
    ax.set_yticks(positions, labels=labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"bytes saved by sharing ({BINARY_NOTE})")
    ax.set_ylabel("layer digest")
    set_bytes_axis(ax.xaxis)
    unshared = len(shared) - len(saving)
    note = f" ({unshared} used by one repository not shown)" if unshared else ""
    ax.set_title(f"Most shared layers{note}")
    if not len(saved):
        _no_data(ax)
    return ax


def size_distribution(tags: pd.DataFrame, ax: Axes | None = None, bins: int = 30) -> Axes:
    """Histogram of image rows' ``layer_size`` on a logarithmic (base 2) byte axis.

    Rows with no or zero ``layer_size`` cannot sit on a log axis; the title says how many.
    """
    ax = _axes(ax)
    images = image_rows(tags)
    sizes = images["layer_size"].to_numpy(dtype="float64", na_value=np.nan)
    positive = sizes[sizes > 0]
    left_out = len(sizes) - len(positive)
    if len(positive):
        low, high = positive.min(), positive.max()
        if high == low:
            low, high = low / 2, high * 2
        ax.hist(positive, bins=np.geomspace(low, high, bins + 1))
    else:
        _no_data(ax)
    ax.set_xscale("log", base=2)
    if len(positive) and positive.max() / positive.min() < 16:
        from matplotlib.ticker import LogLocator

        ax.xaxis.set_major_locator(LogLocator(base=2, subs=(1.0, 1.25, 1.5, 1.75)))
    ax.xaxis.set_major_formatter(bytes_formatter(same_unit=False))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"layer_size per image row (compressed bytes, log scale, {BINARY_NOTE})")
    ax.set_ylabel("image rows (count)")
    note = f"; {left_out} rows without a size not shown" if left_out else ""
    ax.set_title(f"Image size distribution ({len(positive)} rows{note})")
    return ax


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    return ax


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")


def _naive_utc(times: pd.Series) -> np.ndarray:
    """UTC times as naive ``datetime64[ns]`` (what matplotlib's date axis takes)."""
    return times.astype("datetime64[ns, UTC]").dt.tz_localize(None).to_numpy()


def _floats(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="float64", na_value=np.nan)

