"""The filter bar of :class:`~registry_insights.ui.widgets.TagBrowser`: repository, tag text or
regular expression, older than N days, platform, and a line for a filter that does not parse.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import ipywidgets as w

from .selection import TagSelection

__all__ = ["FilterBar"]

_ANY = ""  # a dropdown's "any" value


def _style() -> dict:
    return {"description_width": "initial"}


class FilterBar:
    """The filter controls; a change by the user calls ``apply`` with every filter.

    Parameters
    ----------
    apply : callable
        ``apply(repository, text, regex=, older_than=, platform=)`` (the signature of
        :meth:`TagSelection.filter <registry_insights.ui.selection.TagSelection.filter>`; None
        for "any"). A ``ValueError`` it raises (a regular expression being typed) is shown in
        :attr:`message`, not raised.

    Attributes
    ----------
    repository, platform : ipywidgets.Dropdown
    text : ipywidgets.Text
    regex : ipywidgets.Checkbox
    older_than : ipywidgets.BoundedIntText
    message : ipywidgets.HTML
        Why the last filter was refused ("" when it was not).
    controls : tuple of ipywidgets.Widget
        The five controls, in the order shown.
    """

    def __init__(self, apply: Callable[..., object]):
        self._apply = apply
        self._quiet = False
        self.repository = w.Dropdown(description="Repository", style=_style(),
                                     layout=w.Layout(width="auto", min_width="16em"))
        self.text = w.Text(description="Tag", placeholder="text in the tag name", style=_style(),
                           continuous_update=True, layout=w.Layout(width="16em"))
        self.regex = w.Checkbox(description="regex", indent=False, value=False,
                                layout=w.Layout(width="5.5em"))
        self.older_than = w.BoundedIntText(description="Older than (days)", value=0, min=0,
                                           max=100_000, style=_style(),
                                           layout=w.Layout(width="15em"))
        self.platform = w.Dropdown(description="Platform", style=_style(),
                                   layout=w.Layout(width="auto", min_width="12em"))
        self.message = w.HTML()
        self.controls = (self.repository, self.text, self.regex, self.older_than, self.platform)
        for control, name in zip(self.controls,
                                 ("repository", "text", "regex", "older-than", "platform")):
            control.add_class("ri-filter")
            control.add_class(f"ri-{name}")
            control.observe(self._changed, names="value")

    def sync(self, sel: TagSelection) -> None:
        """Put the selection's filters (and choices) into the controls, without applying."""
        self._quiet = True
        try:
            self.repository.options = [("every repository", _ANY)] + [
                (n, n) for n in sel.repositories]
            self.repository.value = sel.repository or _ANY
            self.platform.options = [("any", _ANY)] + [(p, p) for p in sel.platforms]
            self.platform.value = sel.platform or _ANY
            self.text.value = sel.text
            self.regex.value = sel.regex
            self.older_than.value = sel.older_than or 0
        finally:
            self._quiet = False

    def _changed(self, _change) -> None:
        if self._quiet:
            return
        try:
            self._apply(self.repository.value or None, self.text.value, regex=self.regex.value,
                        older_than=self.older_than.value or None,
                        platform=self.platform.value or None)
            self.message.value = ""
        except ValueError as exc:  # e.g. a regular expression being typed
            self.message.value = f"<span style='color:#b00'>{escape(str(exc))}</span>"
