"""The cleanup command: the plan (a dry run) by default, deletes and an audit log with --yes.

The steps (read, plan, apply, tally) are the shared use case
:mod:`registry_insights.analysis.cleanup`; this module parses options and prints.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

from .common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PARTIAL,
    UsageError,
    age,
    command,
    connect,
    connection_options,
    count,
    csv_value,
    csv_writer,
    output_options,
    parse_target,
    plain,
    regex,
    utc_time,
    write_atomic,
)

PLAN_COLUMNS = [("repository", "text"), ("tag", "text"), ("digest", "digest"),
                ("platforms", "text"), ("created_at", "date"), ("layer_size", "bytes"),
                ("action", "text"), ("reason", "text")]
AUDIT_COLUMNS = [("time", "time"), ("repository", "text"), ("tag", "text"),
                 ("digest", "digest"), ("action", "text"), ("result", "text"),
                 ("message", "text")]


def register(sub) -> None:
    """Add ``cleanup`` to the subparsers ``sub``."""
    p = command(
        sub, "cleanup", "plan a cleanup, show what garbage collection would free, delete",
        "registry-insights cleanup localhost:5000 --keep-last 10 --older-than 90d\n"
        "registry-insights cleanup localhost:5000/team/app --delete-regex 'pr-.*' --yes "
        "--log cleanup.csv",
        description="Plan which tags to delete (GitLab/Harbor-style rules) and print the plan: "
                    "every tag with its action and reason, grouped by repository, and the "
                    "bytes garbage collection would free. Nothing is deleted without --yes; "
                    "then one record per tag (time, repository, tag, digest, action, result) "
                    "is printed and, with --log, written.")
    p.add_argument("url", metavar="HOST[:PORT][/REPOSITORY]",
                   help="the registry (host[:port] or https:// URL), optionally with a "
                        "repository to clean")
    p.add_argument("repositories", nargs="*", metavar="REPO",
                   help="more repositories to clean (default: the whole catalog)")
    p.add_argument("--keep-last", type=count, metavar="N",
                   help="keep the N newest distinct digests per repository")
    p.add_argument("--older-than", type=age, metavar="AGE",
                   help="delete only tags created more than AGE ago (90d, 12h, 2w)")
    p.add_argument("--keep-regex", type=regex, metavar="R",
                   help="keep tags this regular expression matches (whole tag)")
    p.add_argument("--delete-regex", type=regex, metavar="R",
                   help="only tags this regular expression matches may be deleted")
    p.add_argument("--protect", action="append", metavar="TAG", default=[],
                   help="tag always kept (repeatable), in addition to latest")
    p.add_argument("--no-default-protect", action="store_true",
                   help="do not protect latest (only the --protect tags are)")
    p.add_argument("--plan", metavar="FILE", help="write the plan as CSV")
    p.add_argument("--now", type=utc_time, default=None,
                   help="measure ages from this UTC time (default: now)")
    p.add_argument("--yes", action="store_true",
                   help="delete the planned tags (default: only show the plan)")
    p.add_argument("--log", metavar="FILE",
                   help="with --yes, append one record per tag to FILE: CSV when it ends in "
                        ".csv, else JSON lines")
    connection_options(p)
    output_options(p, note=": grouped by repository")
    p.set_defaults(handler=cleanup)


def cleanup(args, out) -> int:
    from ..analysis.cleanup import apply_cleanup, outcome, plan_cleanup, tally
    from ..frames.inventory import fetch_inventory

    if args.keep_last is None and args.older_than is None and args.delete_regex is None:
        raise UsageError("cleanup needs a rule: --keep-last, --older-than or --delete-regex")
    if args.log and not args.yes:
        raise UsageError("--log records deletes: it goes with --yes")
    target = parse_target(args.url)
    if target.reference:
        raise UsageError(f"{args.url!r}: cleanup takes repositories, not an image")
    chosen = ([target.repository] if target.repository else []) + list(args.repositories)
    # a cleanup decides what to delete: on answers revalidated now, not cached ones
    with connect(args, target, freshness=0.0) as client:
        with out.phase(f"reading {client.registry}", after=0):
            planned = plan_cleanup(
                lambda repos: out.unread(fetch_inventory(client, repos, progress=out.progress)),
                chosen,
                keep_last=args.keep_last, older_than=args.older_than,
                keep_regex=args.keep_regex, delete_regex=args.delete_regex,
                protect=[p for p in args.protect if p], now=args.now,
                protect_defaults=not args.no_default_protect)
        if args.plan:
            from ..report.build import csv_text

            write_atomic(args.plan, csv_text(planned.plan.drop(columns=["config"],
                                                               errors="ignore"),
                                             raw=args.raw_csv))
        todo = planned.deletions
        if not args.yes:
            _show_plan(planned, out)
            if args.plan:
                out.status(f"plan written to {args.plan}")
            _say(out, f"dry run: nothing deleted (--yes deletes {len(todo)} tags)")
            return EXIT_OK
        _say(out, _freed_line(planned))
        if args.log:  # can it be written? find out before deleting anything
            append_log(args.log, [])

        def record(result) -> None:
            """Each delete's record goes to the log the moment it is known: an interrupted
            or failed cleanup still leaves the record of what it did."""
            if args.log:
                append_log(args.log, [{
                    "time": datetime.now(timezone.utc), "repository": result.repository,
                    "tag": result.tag, "digest": result.digest, "action": "delete",
                    "result": result.status, "message": result.message}], raw=args.raw_csv)

        with out.phase(f"deleting {len(todo)} tags", after=0):
            audit = apply_cleanup(planned, lambda items: client.delete_many(
                items, progress=out.progress, on_result=record))
    records = audit.to_dict("records")
    if out.format == "table":  # people read the deletes; the kept tags were in the plan
        out.rows([r for r in records if r["action"] == "delete"], AUDIT_COLUMNS)
        kept = sum(1 for r in records if r["action"] != "delete")
        out.line(f"{kept} tags kept (--format json or csv, or --log, list them too)")
    else:
        out.rows(records, AUDIT_COLUMNS)
    if args.log:  # the deletes are in already, one by one; now the tags kept
        path = append_log(args.log, [r for r in records if r["action"] != "delete"],
                          raw=args.raw_csv)
        out.status(f"{len(records)} records appended to {path}")
    counts = tally(audit)
    _say(out, "deleted: " + (", ".join(f"{n} {status}" for status, n in counts.items())
                             or "nothing") +
         ". Space comes back at the registry's next garbage collection.")
    return {"ok": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_FAILURE}[outcome(counts)]


def _say(out, text: str) -> None:
    """A summary line: part of the table output, on standard error for json and csv."""
    if out.format == "table":
        out.line(text)
    else:
        out.status(text)


def _freed_line(planned) -> str:
    from ..units import format_bytes

    total = planned.total
    return (f"garbage collection would free {format_bytes(total['reclaimable_bytes'])} "
            f"({int(total['reclaimable_bytes'])} bytes); the per-tag sum of the deleted tags "
            f"says {format_bytes(total['logical_bytes'])}")


def _show_plan(planned, out) -> None:
    from ..analysis.storage import TOTAL
    from ..units import format_bytes

    plan = planned.plan
    records = plan.drop(columns=["config"], errors="ignore").to_dict("records")
    for record in records:
        record["platforms"] = [p for p in str(record.get("platforms") or "").split(",") if p]
    summary = {row["repository"]: row for row in planned.summary.to_dict("records")}
    if out.format == "json":
        for record in records:
            out.line(json.dumps({"record": "tag", **{k: plain(record.get(k)) for k, _ in
                                                    PLAN_COLUMNS}, "rank": plain(record["rank"]),
                                 "media_type": plain(record["media_type"])}))
        for name, row in summary.items():
            out.line(json.dumps({"record": "total" if name == TOTAL else "repository",
                                 **{k: plain(v) for k, v in row.items()}}))
    elif out.format == "csv":
        out.rows(records, PLAN_COLUMNS[:3] + [("media_type", "text")] + PLAN_COLUMNS[3:6]
                 + [("rank", "text")] + PLAN_COLUMNS[6:])
    else:
        by_repo: dict[str, list[dict]] = {}
        for record in records:
            by_repo.setdefault(str(record["repository"]), []).append(record)
        for name in planned.repositories:
            rows = by_repo.get(name, [])
            row = summary.get(name)
            deleting = sum(1 for r in rows if r["action"] == "delete")
            freed = format_bytes(row["reclaimable_bytes"]) if row else "0 B"
            naive = format_bytes(row["logical_bytes"]) if row else "0 B"
            out.line(f"{name}: {len(rows)} tags, {deleting} to delete; garbage collection "
                     f"frees {freed} (per-tag sum {naive})")
            if rows:
                out.rows(rows, PLAN_COLUMNS[1:], indent="  ")
            out.line()
    if out.format == "table":
        out.line(_freed_line(planned))
    else:
        out.status(_freed_line(planned))
    if not planned.complete:
        out.note("the catalog could not be read, so blobs other repositories share were "
                 "not seen: the registry may free less")


def append_log(path: str, records: list[dict], raw: bool = False) -> Path:
    """Append the audit records to ``path`` (CSV when it ends in ``.csv``, else JSON lines),
    rewriting the file atomically: a reader never sees half a record."""
    target = Path(path)
    keys = [k for k, _ in AUDIT_COLUMNS]
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    buffer = io.StringIO()
    if target.suffix.lower() == ".csv":
        if old and old.split("\n", 1)[0].strip() != ",".join(keys):
            raise UsageError(f"{path} is a CSV with other columns than {keys}: not appended")
        writer = csv_writer(buffer)
        if not old:
            writer.writerow(keys)
        for record in records:
            writer.writerow([csv_value(record.get(k), raw) for k in keys])
    else:
        for record in records:
            buffer.write(json.dumps({k: plain(record.get(k)) for k in keys}) + "\n")
    return write_atomic(target, old + buffer.getvalue())
