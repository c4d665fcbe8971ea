"""The capacity report commands: report and demo."""

from __future__ import annotations

import argparse

from .common import (
    EXIT_OK,
    command,
    connect,
    connection_options,
    output_options,
    parse_target,
    size,
    utc_time,
)
from .history import history_options, report_history_options


def report_options(p: argparse.ArgumentParser, now_default: str) -> None:
    """Options ``report`` and ``demo`` share."""
    p.add_argument("--capacity", type=size,
                   help="storage capacity, bytes or e.g. 500GiB / 2TB: when the trend "
                        "reaches it")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--now", type=utc_time, default=None,
                   help=f"measure tag ages at this UTC time (default {now_default})")


def register(sub) -> None:
    """Add ``report`` and ``demo`` to the subparsers ``sub``."""
    report = command(
        sub, "report", "write the capacity report (CSV, PNG, HTML)",
        "registry-insights report localhost:5000 -o report/ --capacity 500GiB\n"
        "registry-insights report localhost:5000/team/app -o report/   # one repository",
        description="Walk the registry (or the repositories named) and write report.html, "
                    "the CSVs and PNG plots into the output directory; print a summary per "
                    "repository.")
    report.add_argument("url", metavar="HOST[:PORT][/REPOSITORY]",
                        help="the registry (host[:port] or https:// URL), optionally with a "
                             "repository to read")
    connection_options(report)
    report.add_argument("-o", "--output", required=True, help="directory to write into")
    report.add_argument("--repository", action="append", dest="repositories",
                        help="repository to read (repeatable; default: the whole catalog)")
    report_options(report, "the current time")
    history_options(report)
    output_options(report, note=": the summary; json and csv print its rows")
    report.set_defaults(handler=run_report)

    demo = command(
        sub, "demo", "start the built-in demo registry and report on it",
        "registry-insights demo -o demo-report && xdg-open demo-report/report.html\n"
        "registry-insights demo -o demo-report --serve   # then: registry-insights ls URL")
    demo.add_argument("-o", "--output", required=True, help="directory to write into")
    demo.add_argument("--seed", type=int, default=7, help="fleet seed (default 7)")
    demo.add_argument("--serve", action="store_true",
                      help="after the report, keep the demo registry running until Ctrl-C "
                           "(to try the other commands and the notebooks against it)")
    report_options(demo, "2026-11-01, the end of the demo fleet")
    output_options(demo, note=": the summary; json and csv print its rows")
    demo.set_defaults(handler=run_demo)


def run_report(args, out) -> int:
    target = parse_target(args.url)
    if target.reference:
        raise_usage(f"{args.url!r}: report reads repositories, not one image")
    repositories = list(args.repositories or [])
    if target.repository:
        repositories.append(target.repository)
    with connect(args, target) as client:
        return _report(client, args, out, repositories or None)


def raise_usage(message: str):
    from .common import UsageError

    raise UsageError(message)


def _report(client, args, out, repositories=None, now=None) -> int:
    from ..frames.inventory import fetch_inventory
    from ..report.build import write_report

    with out.phase(f"reading {client.registry}", after=0):
        inventory = fetch_inventory(client, repositories, progress=out.progress)
    out.unread(inventory)
    if repositories:
        count = len(inventory.repositories)
        noun = "repository" if count == 1 else "repositories"
        out.note(f"only {count} {noun} read: 'exclusive' and the "
                 "(total) row count blobs among them only; blobs they share with repositories "
                 "not read look exclusive, so deleting them may free less")
    options = {"capacity": args.capacity, "html": not args.no_html,
               "now": args.now if args.now is not None else now, "raw_csv": args.raw_csv,
               **report_history_options(args, repositories)}
    with out.phase(f"writing the report into {args.output}"):
        report = write_report(inventory, args.output, **options)
    _print_summary(report, out)
    return EXIT_OK


def _print_summary(report, out) -> None:
    from ..report.build import summary_text

    if out.format == "table":
        out.line(summary_text(report))
        return
    frame = report.summary
    columns = [(c, "text") for c in frame.columns]
    out.rows(frame.to_dict("records"), columns)


def run_demo(args, out) -> int:
    from ..testing.demo import ANCHOR, DemoRegistry

    demo = DemoRegistry(seed=args.seed)
    try:
        with out.phase("starting the demo registry (CNCF Distribution on loopback)", after=0):
            demo.server.start()
        with out.phase(f"seeding the demo fleet at {demo.url}", after=0):
            demo.seed_fleet(progress=out.progress)
        tags = len({(i.repository, i.tag) for i in demo.images})
        out.status(f"demo registry at {demo.url}: {tags} tags seeded "
                   f"({len(demo.images)} tag-platform images)")
        with demo.client(cache=None) as client:
            code = _report(client, args, out, now=ANCHOR)
        if args.serve:
            out.status(f"serving the demo registry at {demo.url} (anonymous; Ctrl-C stops "
                       f"it), e.g.: registry-insights ls {demo.url.split('://')[-1]}"
                       "/payments/api")
            import time

            while True:
                time.sleep(3600)
        return code
    finally:
        demo.stop()
