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


class _NoBar:
    """What a disabled bar does: nothing (and tqdm is not even imported for it)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):  # tqdm bars are context managers too
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int, desc: str, progress: bool | None = None, unit: str = "it", **kw):
    """A tqdm.auto bar, or a do-nothing bar when ``progress`` is False (or None and not
    interactive)."""
    enabled = _interactive() if progress is None else bool(progress)
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, **kw)
