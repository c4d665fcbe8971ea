"""The review history on the command line: ``report``'s ``--history``/``--no-history``/
``--storage`` options and the ``diff`` command (what changed between two snapshots)."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, UsageError, command, output_options


def history_options(p: argparse.ArgumentParser) -> None:
    """``report``'s review history and disk options."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--history", metavar="DIR",
                       help="history store to save this report's snapshot in and compare with "
                            "(default: the user data directory, e.g. "
                            "~/.local/share/registry_insights/history)")
    where.add_argument("--no-history", action="store_true",
                       help="save no snapshot (growth then comes from build dates)")
    p.add_argument("--storage", metavar="DIR", type=storage_dir,
                   help="the registry's filesystem storage root (CNCF Distribution "
                        "rootdirectory), read-only: add what the disk holds and what garbage "
                        "collection would free now (S3 and other drivers are not read)")


def storage_dir(text: str) -> str:
    """Check ``--storage`` before the walk: a Distribution filesystem storage root."""
    from ..frames.disk import StorageError, storage_root

    try:
        storage_root(text)
    except StorageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def report_history_options(args, repositories) -> dict:
    """``write_report`` keyword arguments for ``report``'s history and storage options
    (the demo has none: it saves no snapshot)."""
    if not hasattr(args, "no_history"):
        return {}
    history = False if args.no_history else (args.history or True)
    return {"history": history, "storage": args.storage, "partial": bool(repositories)}


def register(sub) -> None:
    """Add ``diff`` to the subparsers ``sub``."""
    diff = command(
        sub, "diff", "what changed between two snapshots of a registry's history",
        "registry-insights diff localhost:5000                      # the last two snapshots\n"
        "registry-insights diff --history hist/ --older 2026 --newer 2027",
        description="Compare two snapshots of the review history (each report saves one; by "
                    "default the last two of the registry, of the same scope): tags added, "
                    "removed and moved, bytes per repository, blobs added and no longer "
                    "referenced. json and csv print the changed tags.")
    diff.add_argument("url", nargs="?", metavar="HOST[:PORT]",
                      help="the registry as given to report (default: the only one in the "
                           "store)")
    diff.add_argument("--history", metavar="DIR",
                      help="history store (default: the user data directory)")
    diff.add_argument("--older", metavar="ID", help="older snapshot id or a unique prefix "
                      "(default: the one before --newer)")
    diff.add_argument("--newer", metavar="ID", help="newer snapshot id or a unique prefix "
                      "(default: the last)")
    diff.add_argument("--limit", type=int, default=50, metavar="N",
                      help="tags listed in the table (default 50; 0 for all)")
    output_options(diff, note=": tables; json and csv print the changed tags")
    diff.set_defaults(handler=run_diff)


def run_diff(args, out) -> int:
    import warnings

    from ..analysis.history import diff
    from ..analysis.storage import TOTAL
    from ..frames.history import HistoryWarning, history, load_snapshot, store_path
    from ..units import format_bytes

    where = store_path(args.history)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", HistoryWarning)
        frame = history(where)
    for item in frame.attrs.get("skipped", []):
        out.note(f"skipped {item['path']}: {item['reason']}")
    registries = sorted(frame["registry"].dropna().unique())
    chosen = [r for r in registries if _same(r, args.url)] if args.url else registries
    if len(chosen) != 1:
        what = (f"no snapshot of {args.url!r}" if args.url and not chosen
                else "snapshots of several registries: name one")
        raise UsageError(f"{what} in {where} (registries there: "
                         f"{', '.join(registries) or 'none'})")
    rows = frame[frame["registry"] == chosen[0]]
    newer_id = args.newer or rows["snapshot_id"].iloc[-1]
    older_id = args.older
    if not older_id:  # the one before, of the same scope (whole catalog, or same repositories)
        mine = rows[rows["snapshot_id"].str.startswith(newer_id)]
        if len(mine) == 1:
            same = rows[(rows["scope"] == mine["scope"].iloc[0])
                        & (rows["snapshot_id"] < mine["snapshot_id"].iloc[0])]
            older_id = same["snapshot_id"].iloc[-1] if len(same) else None
    if not older_id:
        raise UsageError(f"{chosen[0]} has {len(rows)} snapshot(s) in {where}: a diff needs "
                         "two of the same scope (each report saves one)")
    older, newer = load_snapshot(where, older_id), load_snapshot(where, newer_id)
    result = diff(older, newer)
    counts, delta = result.counts(), result.delta_bytes
    records = result.tags.to_dict("records")
    if out.format != "table":
        out.rows(records, [(c, "text") for c in result.tags.columns])
        return EXIT_OK

    def signed(value) -> str:
        return ("+" if value >= 0 else "-") + format_bytes(abs(value))

    out.line(f"{chosen[0]}: {older.snapshot_id} ({older.taken_at:%Y-%m-%d %H:%M} UTC) -> "
             f"{newer.snapshot_id} ({newer.taken_at:%Y-%m-%d %H:%M} UTC)")
    out.line(f"tags: {counts['added']} added, {counts['removed']} removed, {counts['moved']} "
             f"moved; stored {signed(delta)} ({delta} bytes): blobs {counts['blobs_added']} "
             f"added ({format_bytes(counts['added_bytes'])}), {counts['blobs_freed']} no "
             f"longer referenced ({format_bytes(counts['freed_bytes'])})")
    repos = result.repositories
    moved = repos[["added", "removed", "moved"]].sum(axis=1) > 0
    changed = repos[(repos["repository"] != TOTAL) & ((repos["delta_bytes"] != 0) | moved)]
    if len(changed):
        out.line()
        out.rows([{**r, "change": signed(r["delta_bytes"])}
                  for r in changed.to_dict("records")],
                 [("repository", "text"), ("old_bytes", "bytes"), ("new_bytes", "bytes"),
                  ("change", "text"), ("added", "text"), ("removed", "text"),
                  ("moved", "text")])
    shown = records if not args.limit else records[:args.limit]
    if shown:
        out.line()
        out.rows([{**r, "bytes": r["new_bytes"] if _present(r["new_bytes"]) else r["old_bytes"]}
                  for r in shown],
                 [("repository", "text"), ("tag", "text"), ("change", "text"),
                  ("old_digest", "digest"), ("new_digest", "digest"), ("bytes", "bytes")])
        if len(shown) < len(records):
            out.line(f"... {len(records) - len(shown)} more (--limit 0 lists all)")
    return EXIT_OK


def _present(value) -> bool:
    import pandas as pd

    return value is not None and not pd.isna(value)


def _same(stored: str, given: str) -> bool:
    """A registry of the store is the one named on the command line (scheme optional)."""
    from ..registry.names import normalize_registry

    strip = (lambda url: url.split("://", 1)[-1].rstrip("/"))  # noqa: E731
    try:
        wanted = normalize_registry(given, insecure=True)
    except ValueError:
        wanted = given
    return stored in (given, wanted) or ("://" not in given and strip(stored) == strip(given))
