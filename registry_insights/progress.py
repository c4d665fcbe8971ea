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


def progress_bar(total: int | None, desc: str, progress: bool | None = None, unit: str = "it",
                 **kw):
    """A tqdm.auto bar, or a do-nothing bar when ``progress`` is False (or None and not
    interactive). ``total`` None: not known yet (see :func:`grow_total`)."""
    enabled = _interactive() if progress is None else bool(progress)
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, **kw)


def grow_total(bar, n: int, lock) -> None:
    """Add ``n`` to what ``bar`` counts to (work found as it goes, such as tags as their
    lists arrive); ``lock`` serialises the threads that do it."""
    if isinstance(bar, _NoBar) or not n:
        return
    with lock:
        bar.total = (bar.total or 0) + n
        bar.refresh()
