"""Human-readable byte counts. Binary units (KiB = 1024 bytes) unless ``binary=False``."""

from __future__ import annotations

import math


def format_bytes(n, binary: bool = True, precision: int = 1) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary) or ``"1.5 kB"`` (decimal); missing -> ``"-"``."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "-"
    try:
        value = float(n)
    except (TypeError, ValueError):
        return "-"
    base = 1024.0 if binary else 1000.0
    units = (["B", "KiB", "MiB", "GiB", "TiB", "PiB"] if binary
             else ["B", "kB", "MB", "GB", "TB", "PB"])
    sign = "-" if value < 0 else ""
    value = abs(value)
    i = 0
    while value >= base and i < len(units) - 1:
        value /= base
        i += 1
    if i == 0:
        return f"{sign}{int(value)} B"
    return f"{sign}{value:.{precision}f} {units[i]}"
