"""Progress bars (tqdm.auto): on in a terminal or notebook, off otherwise unless asked."""

from __future__ import annotations

import sys


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(total: int, desc: str, progress: bool | None = None, unit: str = "it", **kw):
    """A tqdm.auto bar, or a do-nothing bar when ``progress`` is False (or None and not
    interactive)."""
    from tqdm.auto import tqdm

    enabled = _interactive() if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, **kw)
