"""The action part of :class:`~registry_insights.ui.widgets.TagBrowser`: the selection's summary,
the pull directory and buttons, the delete confirmation, the progress bar, and the worker
thread that runs a pull or delete started by a button.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from html import escape

import ipywidgets as w

from ..units import format_bytes
from .selection import Pair, TagSelection, names

__all__ = ["ActionBar", "Worker", "summary_html"]


class ActionBar:
    """The buttons that act on the selection, the confirmation and the progress bar.

    Parameters
    ----------
    directory : str
        Initial value of the directory box.
    on_confirm : callable
        ``on_confirm(ticked)`` when the user ticks or clears the confirmation (not when
        :meth:`set_confirmed` does).

    Attributes
    ----------
    summary, progress_label : ipywidgets.HTML
    directory : ipywidgets.Text
    pull_button, preview_button, refresh_button, delete_button : ipywidgets.Button
    confirm : ipywidgets.Checkbox
    progress : ipywidgets.IntProgress
    """

    def __init__(self, directory: str, on_confirm: Callable[[bool], None]):
        self._quiet = False
        self._on_confirm = on_confirm
        self.summary = w.HTML()
        self.summary.add_class("ri-summary")
        self.directory = w.Text(value=directory, description="Pull into",
                                style={"description_width": "initial"},
                                layout=w.Layout(width="auto", min_width="20em", flex="1 1 auto"))
        self.pull_button = w.Button(description="Pull selected", icon="download",
                                    tooltip="an OCI image layout per tag, under the directory",
                                    layout=w.Layout(width="auto"))
        self.preview_button = w.Button(description="Preview delete", icon="eye",
                                       tooltip="which tags go, which stay, what GC frees",
                                       layout=w.Layout(width="auto"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh",
                                       tooltip="read the registry again",
                                       layout=w.Layout(width="auto"))
        self.confirm = w.Checkbox(value=False, indent=False, description="",
                                  layout=w.Layout(width="auto"))
        self.confirm.add_class("ri-confirm")
        self.delete_button = w.Button(description="Delete selected", icon="trash",
                                      button_style="danger", disabled=True,
                                      tooltip="needs the confirmation ticked",
                                      layout=w.Layout(width="auto"))
        self.progress = w.IntProgress(value=0, min=0, max=1, description="",
                                      layout=w.Layout(width="40%", visibility="hidden"))
        self.progress_label = w.HTML()
        for widget, name in ((self.directory, "directory"), (self.pull_button, "pull"),
                             (self.preview_button, "preview"), (self.refresh_button, "refresh"),
                             (self.delete_button, "delete"), (self.progress, "progress"),
                             (self.progress_label, "progress-label")):
            widget.add_class(f"ri-{name}")  # stable names for browser tests and styling
        self.confirm.observe(self._confirmed, names="value")

    def _confirmed(self, change) -> None:
        if not self._quiet:
            self._on_confirm(bool(change["new"]))

    def set_confirmed(self, value: bool) -> None:
        """Tick or clear the confirmation box without calling ``on_confirm``."""
        self._quiet = True
        try:
            self.confirm.value = value
        finally:
            self._quiet = False

    def update(self, chosen: list[Pair], confirmed: bool, busy: bool) -> None:
        """Label the confirmation and enable the buttons for the selection ``chosen``."""
        repos = {r for r, _t in chosen}
        self.confirm.description = (
            f"I understand: deleting these {len(chosen)} selected tag(s) in {len(repos)} "
            "repository(ies) cannot be undone (other tags on the same digests stay)"
            if chosen else "I understand: deleting … (select tags first)")
        self.confirm.disabled = not chosen or busy
        self.delete_button.disabled = not (chosen and confirmed) or busy
        self.pull_button.disabled = not chosen or busy
        self.preview_button.disabled = not chosen
        self.refresh_button.disabled = busy


def summary_html(sel: TagSelection) -> str:
    """The live summary of the selection (HTML): tags, per-tag sum, what garbage collection
    would free, the sibling tags that stay; never raises."""
    if not sel.selected:
        return "No tag selected."
    try:
        s = sel.summary()
    except Exception as exc:  # noqa: BLE001 - shown, never raised into a redraw
        return (f"{len(sel.selected)} tag(s) selected; figures unavailable: "
                f"{escape(str(exc))}")
    freed = ("unknown (no layers frame: press Refresh)" if s["reclaimable_bytes"] is None
             else format_bytes(s["reclaimable_bytes"]))
    siblings = s["siblings"]
    stay = (f"{len(siblings)} sibling tag(s) on these digests stay: "
            f"{escape(names(siblings[:6]))}{' …' if len(siblings) > 6 else ''}"
            if siblings else "no other tag on these digests")
    return (f"<b>{s['tags']} tag(s) selected</b> in {s['repositories']} repository(ies) · "
            f"per-tag sum {format_bytes(s['logical_bytes'])} · garbage collection would free "
            f"<b>{freed}</b> · {stay}")


class Worker:
    """Runs one pull or delete at a time on a thread, driving a progress bar.

    Parameters
    ----------
    progress : ipywidgets.IntProgress
    label : ipywidgets.HTML
        The progress text.
    say : callable
        ``say(text)`` shows an error.
    finished : callable
        Called on the worker thread when the job ends, however it ends.

    Attributes
    ----------
    job : threading.Thread or None
        The job running (None when none runs).
    error : BaseException or None
        What stopped the last job.
    """

    def __init__(self, progress: w.IntProgress, label: w.HTML, say: Callable[[str], None],
                 finished: Callable[[], None]):
        self.progress = progress
        self.label = label
        self._say = say
        self._finished = finished
        self.job: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.is_alive()

    def start(self, name: str, action: Callable[..., object], total: int,
              ready: Callable[[], None] = lambda: None) -> None:
        """Run ``action(progress=step)`` on a thread named ``name`` (``total`` tags); call
        ``ready()`` just before the thread starts. Errors are shown, not raised."""
        self.progress.max, self.progress.value = max(total, 1), 0
        self.progress.layout.visibility = "visible"
        self.label.value = f"{name}: 0 of {total} tag(s)"

        def step(done: int, of: int, text: str) -> None:
            self.progress.value = done
            self.label.value = f"{name}: {done} of {of} tag(s) ({escape(text)})"

        def work() -> None:
            try:
                action(progress=step)
                self.label.value = f"{name}: done"
            except Exception as exc:  # noqa: BLE001 - shown in the widget
                self.error = exc
                self._say(f"error: {exc}")
                self.label.value = f"{name}: stopped by an error"
            finally:
                self.job = None
                self._finished()

        self.job = threading.Thread(target=work, name=name, daemon=True)
        ready()
        self.job.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the job; raise ``TimeoutError`` when it still runs after ``timeout`` s."""
        job = self.job
        if job is not None:
            job.join(timeout)
            if job.is_alive():
                raise TimeoutError(f"the {job.name} still runs after {timeout} s")
