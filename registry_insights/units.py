"""Human-readable byte counts. Binary units (KiB = 1024 bytes) unless ``binary=False``."""

from __future__ import annotations

import math

from .errors import InvalidValue

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
    try:
        value = float(n)  # None and pandas.NA raise TypeError
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(value):
        return "n/a"
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


_UNIT_FACTORS = {
    **{unit.lower(): 1024**i for i, unit in enumerate(_BINARY_UNITS)},
    **{unit.lower(): 1000**i for i, unit in enumerate(_DECIMAL_UNITS)},
    "": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5,
}


#: The largest byte count a size may have: the largest ``Int64`` (8 EiB less one byte).
MAX_BYTES = 2**63 - 1


def parse_bytes(text: str | int | float) -> int:
    """A byte count from ``"500GiB"``, ``"1.5 TB"``, ``"2048"`` or a number: whole bytes.

    Binary units (KiB, MiB, GiB, TiB, PiB, EiB) are powers of 1024; decimal ones (kB, MB, GB,
    TB, PB, EB, and the bare K, M, G, T, P) are powers of 1000. Case and a space before the
    unit do not matter; a trailing ``B`` alone means bytes. The result is rounded to a byte.

    Raises
    ------
    InvalidValue
        A ``ValueError``: when the text is not a non-negative number with a known unit, or the
        size is over :data:`MAX_BYTES` (the message names it).
    """
    if isinstance(text, int) and not isinstance(text, bool) and 0 <= text <= MAX_BYTES:
        return text
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        number, unit = float(text), ""
    else:
        cleaned = str(text).strip().replace("_", "")
        stripped = cleaned.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
        number_text, unit = stripped, cleaned[len(stripped):].strip().lower()
        try:
            number = float(number_text)
        except ValueError:
            number = math.nan
        if unit not in _UNIT_FACTORS or not number_text:
            number = math.nan
    if not math.isfinite(number) or number < 0:
        raise InvalidValue(f"{text!r} is not a size: give bytes or a number with a unit such as "
                           "'500GiB' (binary, 1024) or '2TB' (decimal, 1000)")
    size = number * _UNIT_FACTORS[unit]
    if not size < MAX_BYTES:  # inf and overflowing products too
        raise InvalidValue(f"{text!r} is too large a size: at most {MAX_BYTES} bytes "
                           "(8 EiB, the largest 64-bit byte count)")
    return int(round(size))


def short_digest(digest: object, missing: str = "") -> str:
    """``sha256:`` and the first 12 hex digits (what ``docker images`` shows, with the
    algorithm kept); other algorithms cut to 19 characters; None or NA gives ``missing``."""
    if digest is None or digest != digest or str(digest) in ("", "<NA>"):
        return missing
    text = str(digest)
    algorithm, _, hexits = text.partition(":")
    return f"{algorithm}:{hexits[:12]}" if hexits else text[:19]
