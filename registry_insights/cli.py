"""The ``registry-insights`` command line.

Commands::

    registry-insights report URL -o DIR [--repository R ...] [--username U --password-stdin]
                             [--capacity SIZE] [--no-html] [--now TIME]
    registry-insights demo -o DIR [--seed N] [--capacity SIZE] [--no-html] [--now TIME]
    registry-insights tag URL REPOSITORY TAG
    registry-insights pull URL REPO:TAG DIR [--platform OS/ARCH]
    registry-insights cleanup URL [REPO ...] [--keep-last N] [--older-than 90d]
                              [--keep-regex R] [--delete-regex R] [--protect TAG ...]
                              [--plan FILE] [--yes]

Passwords come from ``--password-stdin`` or the ``REGISTRY_INSIGHTS_PASSWORD`` environment
variable, never from an argument (arguments show in process lists and shell history).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import errors

PASSWORD_ENV = "REGISTRY_INSIGHTS_PASSWORD"
USERNAME_ENV = "REGISTRY_INSIGHTS_USERNAME"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-insights",
        description="What is in a Docker/OCI registry, how big it really is, what to delete.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def connection(p: argparse.ArgumentParser) -> None:
        p.add_argument("url", help="registry host[:port] or https:// URL")
        p.add_argument("--username", default=os.environ.get(USERNAME_ENV),
                       help=f"user name (default ${USERNAME_ENV}, else docker config)")
        p.add_argument("--password-stdin", action="store_true",
                       help=f"read the password from standard input (else ${PASSWORD_ENV})")
        p.add_argument("--insecure", action="store_true", help="allow plain http to this host")
        p.add_argument("--no-cache", action="store_true", help="do not use the HTTP cache")
        p.add_argument("--workers", type=int, default=8, help="concurrent requests (default 8)")
        p.add_argument("-v", "--verbose", action="store_true", help="log every request")

    def report_options(p: argparse.ArgumentParser, now_default: str) -> None:
        p.add_argument("--capacity", type=_size,
                       help="storage capacity, bytes or e.g. 500GiB / 2TB: when the trend "
                            "reaches it")
        p.add_argument("--no-html", action="store_true", help="do not write report.html")
        p.add_argument("--now", type=_time, default=None,
                       help=f"measure tag ages at this UTC time (default {now_default})")

    report = sub.add_parser("report", help="write the capacity report (CSV, PNG, HTML)")
    connection(report)
    report.add_argument("-o", "--output", required=True, help="directory to write into")
    report.add_argument("--repository", action="append", dest="repositories",
                        help="repository to read (repeatable; default: the whole catalog)")
    report_options(report, "the current time")

    demo = sub.add_parser("demo", help="start the built-in demo registry and report on it")
    demo.add_argument("-o", "--output", required=True, help="directory to write into")
    demo.add_argument("--seed", type=int, default=7, help="fleet seed (default 7)")
    report_options(demo, "2026-11-01, the end of the demo fleet")

    tag = sub.add_parser("tag", help="print one tag's details")
    connection(tag)
    tag.add_argument("repository")
    tag.add_argument("tag")

    pull = sub.add_parser("pull", help="pull an image into an OCI image layout directory")
    connection(pull)
    pull.add_argument("image", metavar="REPO:TAG", help="repository:tag or repository@digest")
    pull.add_argument("directory", metavar="DIR", help="OCI image layout (new, empty or one "
                      "written before: pulls share blobs)")
    pull.add_argument("--platform", help="only this platform of a multi-arch image, e.g. "
                      "linux/arm64 (default: every platform)")

    cleanup = sub.add_parser(
        "cleanup", help="plan a cleanup, show what garbage collection would free, delete",
        description="Plan which tags to delete (GitLab/Harbor-style rules), print the plan and "
                    "the bytes garbage collection would free; delete only with --yes.")
    connection(cleanup)
    cleanup.add_argument("repositories", nargs="*", metavar="REPO",
                         help="repositories to clean (default: the whole catalog)")
    cleanup.add_argument("--keep-last", type=int, metavar="N",
                         help="keep the N newest distinct digests per repository")
    cleanup.add_argument("--older-than", type=_age, metavar="AGE",
                         help="delete only tags created more than AGE ago (90d, 12h, 2w)")
    cleanup.add_argument("--keep-regex", type=_regex, metavar="R",
                         help="keep tags this regular expression matches (whole tag)")
    cleanup.add_argument("--delete-regex", type=_regex, metavar="R",
                         help="only tags this regular expression matches may be deleted")
    cleanup.add_argument("--protect", action="append", metavar="TAG",
                         help="tag always kept (repeatable; default: latest; '' for none)")
    cleanup.add_argument("--plan", metavar="FILE", help="write the plan as CSV")
    cleanup.add_argument("--now", type=_time, default=None,
                         help="measure ages from this UTC time (default: now)")
    cleanup.add_argument("--yes", action="store_true",
                         help="delete the planned tags (default: only show the plan)")
    return parser


def _client(args):
    from .client import RegistryClient

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    return RegistryClient(args.url, username=args.username, password=password,
                          insecure=args.insecure, cache=None if args.no_cache else "default",
                          max_workers=args.workers, verbose=args.verbose)


def _size(text: str) -> int:
    from .units import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time(text: str):
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: give e.g. 2026-11-01 or "
                                         "2026-11-01T12:00:00Z (UTC when no offset)")
    return stamp


def _age(text: str):
    from .retention import parse_age

    try:
        parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _regex(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") \
            from None
    return text


def _pull(client, args) -> int:
    from .reference import parse_reference

    ref = parse_reference(args.image)
    if ref.registry:
        raise errors.InvalidReference(
            f"{args.image!r} names a registry ({ref.registry}): give REPO:TAG, the URL "
            "argument says which registry"
        )
    try:
        path = client.pull(ref.repository, ref.reference, args.directory,
                           platform=args.platform)
    except (FileExistsError, ValueError) as exc:
        if isinstance(exc, errors.RegistryInsightsError):
            raise
        print(f"registry-insights: {exc}", file=sys.stderr)
        return 2
    name = f":{ref.reference}" if not ref.digest else ""
    print(f"pulled {ref.repository}{'@' if ref.digest else ':'}{ref.reference} into {path} "
          f"(skopeo: oci:{path}{name})")
    return 0


def _cleanup(client, args) -> int:
    from .analysis import TOTAL
    from .inventory import fetch_inventory
    from .reclaim import reclaimable
    from .retention import deletions, retention_plan
    from .units import format_bytes

    if args.keep_last is None and args.older_than is None and args.delete_regex is None:
        print("registry-insights: cleanup needs a rule: --keep-last, --older-than or "
              "--delete-regex", file=sys.stderr)
        return 2
    chosen = sorted(set(args.repositories))
    try:  # the whole registry: a blob is freed only if no repository still uses it
        inv = fetch_inventory(client)
        complete = True
    except errors.CatalogUnavailable:
        if not chosen:
            raise
        inv = fetch_inventory(client, chosen)
        complete = False
    tags, layers = inv.tags(attestations=True), inv.layers(attestations=True)
    scope = tags[tags["repository"].isin(chosen)] if chosen else tags
    protect = [p for p in args.protect if p] if args.protect is not None else ["latest"]
    plan = retention_plan(scope, keep_last=args.keep_last, older_than=args.older_than,
                          keep_regex=args.keep_regex, delete_regex=args.delete_regex,
                          protect=protect, now=args.now)
    if args.plan:
        plan.to_csv(args.plan, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    summary = reclaimable(tags, layers, plan)
    if chosen:
        summary = summary[summary["repository"].isin([*chosen, TOTAL])].copy()
        is_total = summary["repository"] == TOTAL
        summary.loc[is_total, "tags"] = summary.loc[~is_total, "tags"].sum()
    print(f"{'repository':<32} {'tags':>6} {'delete':>6} {'manifests':>9} "
          f"{'per-tag sum':>12} {'GC frees':>12}")
    for row in summary.itertuples():
        print(f"{row.repository:<32} {row.tags:>6} {row.deleted_tags:>6} "
              f"{row.deleted_manifests:>9} {format_bytes(row.naive_bytes):>12} "
              f"{format_bytes(row.reclaimable_bytes):>12}")
    total = summary[summary["repository"] == TOTAL].iloc[0]
    print(f"garbage collection would free {format_bytes(total['reclaimable_bytes'])} "
          f"({int(total['reclaimable_bytes'])} bytes); the per-tag sum of the deleted tags "
          f"says {format_bytes(total['naive_bytes'])}")
    if not complete:
        print("note: the catalog could not be read, so blobs other repositories share were "
              "not seen: the registry may free less")
    if args.plan:
        print(f"plan written to {args.plan}")
    todo = deletions(plan)
    if not args.yes:
        print(f"dry run: nothing deleted (--yes deletes {len(todo)} tags)")
        return 0
    results = client.delete_many(todo)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
        if not result.ok or result.status == "changed":
            print(f"{result.repository}:{result.tag}: {result.status}: {result.message}",
                  file=sys.stderr)
    print("deleted: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
          + ". Space comes back at the registry's next garbage collection.")
    return 1 if counts.get("failed") else 0


def _report(client, output, repositories=None, args=None, now=None) -> int:
    from .inventory import fetch_inventory
    from .report import summary_text, write_report

    inv = fetch_inventory(client, repositories)
    options = {}
    if args is not None:
        options = {"capacity": args.capacity, "html": not args.no_html,
                   "now": args.now if args.now is not None else now}
    print(summary_text(write_report(inv, output, **options)))
    return 0


def _tag(client, repository, tag) -> int:
    details = client.tag_details(repository, tag)
    out = {"repository": repository, "tag": tag, "digest": details.digest,
           "media_type": details.media_type, "size": details.size, "images": []}
    for image in details.images:
        created = image.created_at
        out["images"].append({
            "platform": image.platform, "manifest_digest": image.manifest_digest,
            "config_digest": image.config_digest,
            "created_at": created.isoformat().replace("+00:00", "Z") if created else None,
            "layer_size": image.layer_size, "layer_count": len(image.layers),
        })
    print(json.dumps(out, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 registry error, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import ANCHOR, DemoRegistry

            with DemoRegistry(seed=args.seed) as demo:
                print(f"demo registry at {demo.url}: {len(demo.images)} tag images seeded")
                with demo.client(cache=None) as client:
                    return _report(client, args.output, args=args, now=ANCHOR)
        with _client(args) as client:
            if args.command == "report":
                return _report(client, args.output, args.repositories, args=args)
            if args.command == "tag":
                return _tag(client, args.repository, args.tag)
            if args.command == "pull":
                return _pull(client, args)
            if args.command == "cleanup":
                return _cleanup(client, args)
    except errors.InvalidReference as exc:
        print(f"registry-insights: {exc}", file=sys.stderr)
        return 2
    except errors.RegistryInsightsError as exc:
        print(f"registry-insights: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
