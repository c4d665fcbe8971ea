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
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    demo.add_argument("--serve", action="store_true",
                      help="after the report, keep the demo registry running until Ctrl-C "
                           "(to try the other commands and the notebooks against it)")
    report_options(demo, "2026-11-01, the end of the demo fleet")

    tag = sub.add_parser("tag", help="print one tag's details")
    connection(tag)
    tag.add_argument("repository", help="repository name, e.g. team/app")
    tag.add_argument("tag", help="tag, e.g. v1.2.3")

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
    cleanup.add_argument("--keep-last", type=_count, metavar="N",
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


def _client(args, **kwargs):
    from .registry.client import RegistryClient

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    return RegistryClient(args.url, username=args.username, password=password,
                          insecure=args.insecure, cache=None if args.no_cache else "default",
                          max_workers=args.workers, verbose=args.verbose, **kwargs)


def _cli_url(url: str) -> str:
    """Check the URL early, with advice in CLI terms (not the Python API's)."""
    from .registry.names import normalize_registry

    try:
        normalize_registry(url, insecure=True)
    except errors.InvalidReference as exc:
        print(f"registry-insights: {_cli_advice(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    return url


def _cli_advice(exc: Exception) -> str:
    """The error's text, with the Python API's advice put in command-line terms."""
    return (str(exc)
            .replace("pass username= and password= instead",
                     "use --username and --password-stdin instead")
            .replace("pass insecure=True to allow it", "use --insecure to allow it")
            .replace("e.g. tags_frame(client, repositories=[...])",
                     "e.g. --repository NAME (report) or REPO arguments (cleanup)"))


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


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
    from .analysis.retention import parse_age

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
    from .registry.names import parse_reference

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
    print(f"pulled {ref.repository}{'@' if ref.digest else ':'}{ref.reference} into {path}"
          + _skopeo_hint(path, None if ref.digest else ref.reference))
    return 0


def _skopeo_hint(path, tag: str | None) -> str:
    """How skopeo opens the layout: by tag only for OCI media types (skopeo 1.9), by the bare
    layout only when it holds one image."""
    from .registry import mediatypes as mt

    try:
        entries = json.loads((path / "index.json").read_text()).get("manifests") or []
    except (OSError, ValueError):
        return ""
    mine = [e for e in entries
            if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag]
    if tag and mine and mine[0].get("mediaType") in (mt.OCI_MANIFEST, mt.OCI_INDEX):
        return f" (skopeo: oci:{path}:{tag})"
    if len(entries) == 1:
        return f" (skopeo: oci:{path})"
    return ""


def _cleanup(client, args) -> int:
    from .analysis.reclaim import reclaimable
    from .analysis.retention import deletions, retention_plan
    from .analysis.storage import TOTAL
    from .frames.inventory import fetch_inventory
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
    unknown = [r for r in chosen if r not in inv.repositories]
    if unknown:
        raise errors.NotFound(f"repositories not in the catalog: {unknown}; nothing planned, "
                              "nothing deleted")
    tags, layers = inv.tags(attestations=True), inv.layers(attestations=True)
    scope = tags[tags["repository"].isin(chosen)] if chosen else tags
    protect = [p for p in args.protect if p] if args.protect is not None else ["latest"]
    plan = retention_plan(scope, keep_last=args.keep_last, older_than=args.older_than,
                          keep_regex=args.keep_regex, delete_regex=args.delete_regex,
                          protect=protect, now=args.now)
    if args.plan:
        from .report.build import csv_ready

        csv_ready(plan.drop(columns=["config"], errors="ignore")).to_csv(args.plan, index=False)
    summary = reclaimable(tags, layers, plan)
    if chosen:
        summary = summary[summary["repository"].isin([*chosen, TOTAL])].copy()
        is_total = summary["repository"] == TOTAL
        summary.loc[is_total, "tags"] = summary.loc[~is_total, "tags"].sum()
    print(f"{'repository':<32} {'tags':>6} {'delete':>6} {'manifests':>9} "
          f"{'per-tag sum':>12} {'GC frees':>12}")
    for row in summary.itertuples():
        print(f"{row.repository:<32} {row.tags:>6} {row.deleted_tags:>6} "
              f"{row.deleted_manifests:>9} {format_bytes(row.logical_bytes):>12} "
              f"{format_bytes(row.reclaimable_bytes):>12}")
    total = summary[summary["repository"] == TOTAL].iloc[0]
    print(f"garbage collection would free {format_bytes(total['reclaimable_bytes'])} "
          f"({int(total['reclaimable_bytes'])} bytes); the per-tag sum of the deleted tags "
          f"says {format_bytes(total['logical_bytes'])}")
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
    from .frames.inventory import fetch_inventory
    from .report.build import summary_text, write_report

    inv = fetch_inventory(client, repositories)
    if repositories:
        count = len(inv.repositories)
        noun = "repository" if count == 1 else "repositories"
        print(f"note: only {count} {noun} read: 'exclusive' and the "
              "(total) row count blobs among them only; blobs they share with repositories not "
              "read look exclusive, so deleting them may free less", file=sys.stderr)
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
    # SIGTERM (kill, a service manager) unwinds like Ctrl-C, so a demo registry is stopped
    # and its temporary storage removed
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        previous = None
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _main(args) -> int:
    if getattr(args, "url", None) is not None:
        args.url = _cli_url(args.url)
    try:
        if args.command == "demo":
            from .testing.demo import ANCHOR, DemoRegistry

            with DemoRegistry(seed=args.seed) as demo:
                tags = len({(i.repository, i.tag) for i in demo.images})
                print(f"demo registry at {demo.url}: {tags} tags seeded "
                      f"({len(demo.images)} tag-platform images)")
                with demo.client(cache=None) as client:
                    code = _report(client, args.output, args=args, now=ANCHOR)
                if args.serve:
                    print(f"serving the demo registry at {demo.url} (anonymous; Ctrl-C stops "
                          "it), e.g.: registry-insights tag "
                          f"{demo.url} payments/api latest", flush=True)
                    import time

                    while True:
                        time.sleep(3600)
                return code
        # a cleanup decides what to delete: on answers revalidated now, not cached ones
        fresh = {"freshness": 0.0} if args.command == "cleanup" else {}
        with _client(args, **fresh) as client:
            if args.command == "report":
                return _report(client, args.output, args.repositories, args=args)
            if args.command == "tag":
                return _tag(client, args.repository, args.tag)
            if args.command == "pull":
                return _pull(client, args)
            if args.command == "cleanup":
                return _cleanup(client, args)
    except errors.InvalidReference as exc:
        print(f"registry-insights: {_cli_advice(exc)}", file=sys.stderr)
        return 2
    except errors.RegistryInsightsError as exc:
        print(f"registry-insights: {_cli_advice(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # output paths: an existing file, no permission ...
        print(f"registry-insights: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("registry-insights: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
