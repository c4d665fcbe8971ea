"""The message area of :class:`~registry_insights.ui.widgets.TagBrowser` and the texts it shows
for a delete preview and a delete's outcomes.

:class:`MessageArea` holds the ``ipywidgets.Output``; :func:`preview_lines`,
:func:`preview_table` and :func:`delete_report` turn frames into what it shows (no widget, no
I/O).
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
import pandas as pd

from ..analysis.retention import DELETE, KEEP
from ..frames.schema import OUTCOMES_SCHEMA
from ..registry.client import DeleteResult
from ..units import format_bytes, short_digest
from .selection import Pair

__all__ = ["MessageArea", "preview_lines", "preview_table", "delete_report"]


class MessageArea:
    """Messages, results and tables, in an ``ipywidgets.Output`` (:attr:`output`)."""

    def __init__(self):
        self.output = w.Output(layout=w.Layout(width="100%"))
        self.output.add_class("ri-output")

    @property
    def text(self) -> str:
        """The text shown (messages and results, tables as plain text)."""
        parts = []
        for out in self.output.outputs:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "text/plain" in out.get("data", {}):
                parts.append(out["data"]["text/plain"] + "\n")
        return "".join(parts)

    def clear(self) -> None:
        self.output.outputs = ()

    def say(self, text: str) -> None:
        """Add a line."""
        self.output.append_stdout(text.rstrip("\n") + "\n")

    def show(self, frame: pd.DataFrame) -> None:
        """Add a table (HTML in the notebook, plain text in :attr:`text`)."""
        self.output.outputs += ({
            "output_type": "display_data",
            "data": {"text/plain": frame.to_string(index=False),
                     "text/html": frame.to_html(index=False, escape=True)},
            "metadata": {},
        },)


def preview_lines(preview: pd.DataFrame, scoped: bool) -> list[str]:
    """What a delete preview means, in sentences.

    Parameters
    ----------
    preview : DataFrame
        :data:`~registry_insights.frames.schema.PREVIEW_SCHEMA` with its ``attrs``
        (``reclaimable_bytes``, ``logical_bytes``, ``deleted_manifests``).
    scoped : bool
        Only some repositories were read (the figures may overstate what is freed).
    """
    goes = preview[preview["action"] == DELETE]
    stays = preview[preview["action"] == KEEP]
    freed = preview.attrs["reclaimable_bytes"]
    lines = [f"Deleting {len(goes)} tag(s) deletes {preview.attrs['deleted_manifests']} "
             "manifest(s) (platform manifests of indexes included); "
             f"{len(stays)} other tag(s) on the same digests stay."]
    if freed is None:
        lines.append("What garbage collection frees needs the layers frame: pass layers= "
                     "or press Refresh.")
    else:
        per_tag = format_bytes(preview.attrs["logical_bytes"])
        lines.append(f"Garbage collection would then free {format_bytes(freed)} ({freed} "
                     f"bytes); the per-tag sum says {per_tag}.")
        if scoped:
            lines.append("Only the repositories shown were read: blobs they share with other "
                         "repositories look freeable, so the registry may free less.")
    lines.append("Nothing is deleted until the confirmation is ticked and 'Delete selected' "
                 "is pressed.")
    return lines


def preview_table(preview: pd.DataFrame) -> pd.DataFrame:
    """The preview as shown: short digests, dates, human sizes."""
    return pd.DataFrame({
        "repository": preview["repository"], "tag": preview["tag"],
        "digest": [short_digest(d, "?" * 19) for d in preview["digest"]],
        "created (UTC)": preview["created_at"].dt.strftime("%Y-%m-%d"),
        "layers": [format_bytes(n) for n in preview["layer_size"]],
        "action": preview["action"], "reason": preview["reason"],
    })


def _outcome(result: DeleteResult) -> str:
    if result.status == "deleted":
        return "deleted (tag only)" if result.message.startswith("tag only") else "deleted"
    return {"absent": "already gone", "changed": "refused"}.get(result.status, "failed")


def delete_report(results: list[DeleteResult], siblings: list[Pair],
                  digest_of: Callable[[Pair], str | None], freed: int | None, asked: int
                  ) -> tuple[pd.DataFrame, list[str], str]:
    """The outcomes of a delete: a frame, a line per tag, and the tally with what it means
    for space.

    Parameters
    ----------
    results : list of DeleteResult
        The deletes done (fewer than ``asked`` when an error stopped them).
    siblings : list of (str, str)
        The tags not selected that share a selected tag's digest (they stay).
    digest_of : callable
        ``digest_of((repository, tag))``, the digest the table shows.
    freed : int or None
        Bytes garbage collection frees by the selection's figures (None: unknown).
    asked : int
        How many tags were to be deleted.

    Returns
    -------
    outcomes : DataFrame
        :data:`~registry_insights.frames.schema.OUTCOMES_SCHEMA`.
    lines : list of str
    summary : str
    """
    rows = [(r.repository, r.tag, r.digest, _outcome(r), r.message) for r in results]
    gone = {(r.repository, r.tag) for r in results if r.status in ("deleted", "absent")}
    for r, t in siblings:
        if (r, t) not in gone:
            rows.append((r, t, digest_of((r, t)), "kept",
                         "not selected; shares the digest of a selected tag"))
    outcomes = pd.DataFrame(rows, columns=list(OUTCOMES_SCHEMA)).astype(OUTCOMES_SCHEMA)
    counts: dict[str, int] = {}
    for _r, _t, _d, outcome, _m in rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    lines = [f"{r}:{t}: {outcome}: {message}" for r, t, _d, outcome, message in rows]
    if len(results) < asked:
        lines.append(f"stopped after {len(results)} of {asked} tag(s) (see the error below).")
    tally = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    if any(r.status == "deleted" for r in results):
        space = ("about " + format_bytes(freed) + " by the selection's figures"
                 if freed is not None else "an amount unknown without the layers frame")
        summary = (f"{tally}. The registry frees the space of what no manifest references any "
                   f"more ({space}) only when its garbage collection runs.")
    else:
        summary = f"{tally or 'no result'}. Nothing was deleted, so no space comes back."
    return outcomes, lines, summary
