"""The table of :class:`~registry_insights.ui.widgets.TagBrowser`: one header button per column
(click to sort), a checkbox and a row of cells per tag, :data:`PAGE_SIZE` rows a page, the
paging buttons and "Select all shown" / "Select none".

It draws a :class:`~registry_insights.ui.selection.TagSelection` and forwards clicks to the
callables it is given; it holds no state but the page number.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import ipywidgets as w
import pandas as pd

from ..frames.schema import EARLIEST_KNOWN
from ..units import format_bytes, short_digest
from .selection import Pair, TagSelection

__all__ = ["TagTable", "PAGE_SIZE", "COLUMNS", "STYLE", "cell_texts"]

#: Rows per page of the table.
PAGE_SIZE = 20
#: The table's columns: (key in the selection's rows, header, sort key, CSS width).
COLUMNS = (
    ("repository", "Repository", "repository", "minmax(6em, 1.5fr)"),
    ("tag", "Tag", "tag", "minmax(5em, 1.2fr)"),
    ("digest", "Digest", "digest", "11.5em"),
    ("platforms", "Platforms", "platforms", "minmax(6em, 1.2fr)"),
    ("created_at", "Built (UTC)", "created_at", "8.5em"),
    ("age_days", "Age", "age_days", "5em"),
    ("layer_size", "Size", "layer_size", "6.5em"),
)
_CSS = "ri-tags"
#: The browser's style sheet (an HTML ``<style>`` element), shown once above the table.
STYLE = f"""<style>
.{_CSS} .ri-cell {{overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 28px}}
.{_CSS} .ri-num {{text-align: right; padding-right: 4px}}
.ri-output table td, .ri-output table th {{text-align: left !important}}
.{_CSS} .ri-head button {{font-weight: bold; text-align: left; padding: 0 4px}}
.ri-summary {{line-height: 1.4}}
</style>"""


class TagTable:
    """The table, its paging and its row selection buttons.

    Parameters
    ----------
    on_sort : callable
        ``on_sort(column_key)`` on a header click.
    on_check : callable
        ``on_check(row_index_on_page, checked)`` when a row's checkbox is clicked (not when
        :meth:`draw` sets it).
    on_turn : callable
        ``on_turn(step)`` on "Previous" (-1) / "Next" (+1).
    on_all, on_none : callable
        ``on_all()`` on "Select all shown", ``on_none()`` on "Select none".

    Attributes
    ----------
    page : int
        The page shown, from 0 (:meth:`draw` keeps it within the pages).
    header : dict of str to ipywidgets.Button
    checkboxes : list of ipywidgets.Checkbox
    cells : list of list of ipywidgets.HTML
        Per row of the page, one cell per column.
    grid : ipywidgets.GridBox
    prev_button, next_button, all_button, none_button : ipywidgets.Button
    page_label : ipywidgets.HTML
    """

    def __init__(self, on_sort: Callable[[str], None], on_check: Callable[[int, bool], None],
                 on_turn: Callable[[int], None], on_all: Callable[[], None],
                 on_none: Callable[[], None]):
        self.page = 0
        self._quiet = False
        self._on_check = on_check
        self.header = {}
        head: list[w.Widget] = [w.HTML("")]
        for key, title, _sort, _width in COLUMNS:
            button = w.Button(description=title, tooltip=f"sort by {title.lower()}",
                              layout=w.Layout(width="auto"))
            button.add_class("ri-head")
            button.add_class(f"ri-head-{key}")
            button.on_click(lambda _b, key=key: on_sort(key))
            self.header[key] = button
            head.append(button)
        self.checkboxes: list[w.Checkbox] = []
        self.cells: list[list[w.HTML]] = []
        for i in range(PAGE_SIZE):
            self._add_row(i)
        template = "2em " + " ".join(width for *_x, width in COLUMNS)
        body = [widget for box, row in zip(self.checkboxes, self.cells) for widget in (box, *row)]
        self.grid = w.GridBox(head + body, layout=w.Layout(
            grid_template_columns=template, grid_gap="0 6px", width="100%"))
        self.grid.add_class(_CSS)
        self.prev_button = w.Button(description="Previous", icon="chevron-left",
                                    layout=w.Layout(width="8em"))
        self.next_button = w.Button(description="Next", icon="chevron-right",
                                    layout=w.Layout(width="8em"))
        self.page_label = w.HTML()
        self.all_button = w.Button(description="Select all shown", icon="check-square",
                                   layout=w.Layout(width="auto"))
        self.none_button = w.Button(description="Select none", icon="square",
                                    layout=w.Layout(width="auto"))
        for widget, name in ((self.prev_button, "prev"), (self.next_button, "next"),
                             (self.page_label, "page"), (self.all_button, "all"),
                             (self.none_button, "none")):
            widget.add_class(f"ri-{name}")  # stable names for browser tests and styling
        self.prev_button.on_click(lambda _b: on_turn(-1))
        self.next_button.on_click(lambda _b: on_turn(1))
        self.all_button.on_click(lambda _b: on_all())
        self.none_button.on_click(lambda _b: on_none())

    def _add_row(self, i: int) -> None:
        box = w.Checkbox(value=False, indent=False, description="",
                         layout=w.Layout(width="2em"))
        box.add_class(f"ri-row-{i}")
        box.observe(lambda change, i=i: self._checked(i, change), names="value")
        self.checkboxes.append(box)
        row = []
        for key, *_rest in COLUMNS:
            cell = w.HTML("")
            cell.add_class("ri-cell")
            cell.add_class(f"ri-cell-{key}")
            if key in ("age_days", "layer_size"):
                cell.add_class("ri-num")
            row.append(cell)
        self.cells.append(row)

    def _checked(self, i: int, change) -> None:
        if not self._quiet:
            self._on_check(i, bool(change["new"]))

    def page_rows(self, visible: list[Pair]) -> list[Pair]:
        """The rows of ``visible`` on the current page."""
        start = self.page * PAGE_SIZE
        return visible[start:start + PAGE_SIZE]

    def draw(self, sel: TagSelection) -> None:
        """Draw the page (checkboxes, cells), the headers' sort arrows and the paging."""
        visible = sel.visible
        pages = max(1, -(-len(visible) // PAGE_SIZE))
        self.page = min(self.page, pages - 1)
        page = self.page_rows(visible)
        frame = sel._frame_of(page)
        chosen = set(sel.selected)
        self._quiet = True
        try:
            for i, box in enumerate(self.checkboxes):
                shown = i < len(page)
                box.value = shown and page[i] in chosen
                values = cell_texts(frame.iloc[i]) if shown else [("", "")] * len(COLUMNS)
                display = None if shown else "none"  # empty rows of the last page collapse
                box.layout.display = display
                for cell, (text, title) in zip(self.cells[i], values):
                    cell.value = (f'<div title="{escape(title)}">{escape(text)}</div>'
                                  if text else "")
                    cell.layout.display = display
            for key, title, _s, _w in COLUMNS:
                arrow = (" ▲" if sel.sort_ascending else " ▼") if key == sel.sort_column else ""
                self.header[key].description = title + arrow
            first = self.page * PAGE_SIZE + 1 if visible else 0
            self.page_label.value = (
                f"&nbsp;rows {first}–{self.page * PAGE_SIZE + len(page)} of {len(visible)} shown"
                f" ({len(sel.rows)} tags)&nbsp;")
            self.prev_button.disabled = self.page == 0
            self.next_button.disabled = self.page >= pages - 1
            self.all_button.description = f"Select all {len(visible)} shown"
        finally:
            self._quiet = False


def cell_texts(row) -> list[tuple[str, str]]:
    """``(text, title)`` per column of one row of the selection's frame (title: the full
    value, shown on hover)."""
    digest = None if pd.isna(row["digest"]) else str(row["digest"])
    created = row["created_at"]
    built = "unknown" if pd.isna(created) else f"{created:%Y-%m-%d}"
    age = "?" if pd.isna(row["age_days"]) else f"{int(row['age_days'])} d"
    if not pd.isna(created) and created < EARLIEST_KNOWN:
        age = "? (epoch)"
    platforms = "" if pd.isna(row["platforms"]) else str(row["platforms"])
    size = row["layer_size"]
    return [
        (str(row["repository"]), str(row["repository"])),
        (str(row["tag"]), str(row["tag"])),
        (short_digest(digest, "?" * 19), digest or "unknown"),
        (platforms or "-", platforms or "no image platform"),
        (built, "" if pd.isna(created) else str(created)),
        (age, age),
        ("?" if pd.isna(size) else format_bytes(size),
         "unknown" if pd.isna(size) else f"{int(size)} bytes"),
    ]
