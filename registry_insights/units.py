"""Human-readable byte counts. Binary units (KiB = 1024 bytes) unless ``binary=False``."""

from __future__ import annotations

import math

import pandas as pd

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def format_bytes(n: float | None, binary: bool = True, precision: int = 1) -> str:
    """A byte count for people: ``format_bytes(1572864) == "1.5 MiB"``.

    Parameters
    ----------
    n : number
        Bytes; None/NA gives ``"n/a"``.
    binary : bool, default True
        Binary units, powers of 1024 (B, KiB, MiB, GiB, TiB, PiB, EiB); False gives decimal
        (SI) units, powers of 1000 (B, kB, MB, GB, TB, PB, EB).
    precision : int, default 1
        Decimals above bytes; bytes are whole (unless fractional).
    """
    if n is None or pd.isna(n):
        return "n/a"
    value = float(n)
    if not math.isfinite(value):
        return f"{value} B"
    sign = "-" if value < 0 else ""
    value = abs(value)
    base = 1024.0 if binary else 1000.0
    units = _BINARY_UNITS if binary else _DECIMAL_UNITS
    if value < base:
        return f"{sign}{value:g} B"
    exponent = min(int(math.log(value, base)), len(units) - 1)
    scaled = value / base**exponent
    if scaled < 1:  # log rounding just below a power
        exponent, scaled = exponent - 1, scaled * base
    if round(scaled, precision) >= base and exponent < len(units) - 1:
        exponent, scaled = exponent + 1, scaled / base
    return f"{sign}{scaled:.{precision}f} {units[exponent]}"
