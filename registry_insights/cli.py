"""The ``registry-insights`` command line.

Commands::

    registry-insights report URL -o DIR [--repository R ...] [--username U --password-stdin]
    registry-insights demo -o DIR [--seed N]
    registry-insights tag URL REPOSITORY TAG

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

    report = sub.add_parser("report", help="write the CSV capacity report of a registry")
    connection(report)
    report.add_argument("-o", "--output", required=True, help="directory to write into")
    report.add_argument("--repository", action="append", dest="repositories",
                        help="repository to read (repeatable; default: the whole catalog)")

    demo = sub.add_parser("demo", help="start the built-in demo registry and report on it")
    demo.add_argument("-o", "--output", required=True, help="directory to write into")
    demo.add_argument("--seed", type=int, default=7, help="fleet seed (default 7)")

    tag = sub.add_parser("tag", help="print one tag's details")
    connection(tag)
    tag.add_argument("repository")
    tag.add_argument("tag")
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


def _report(client, output, repositories=None) -> int:
    from .inventory import fetch_inventory
    from .report import summary_text, write_report

    inv = fetch_inventory(client, repositories)
    print(summary_text(write_report(inv, output)))
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
            from .demo import DemoRegistry

            with DemoRegistry(seed=args.seed) as demo:
                print(f"demo registry at {demo.url}: {len(demo.images)} tag images seeded")
                with demo.client(cache=None) as client:
                    return _report(client, args.output)
        with _client(args) as client:
            if args.command == "report":
                return _report(client, args.output, args.repositories)
            if args.command == "tag":
                return _tag(client, args.repository, args.tag)
    except errors.InvalidReference as exc:
        print(f"registry-insights: {exc}", file=sys.stderr)
        return 2
    except errors.RegistryInsightsError as exc:
        print(f"registry-insights: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
