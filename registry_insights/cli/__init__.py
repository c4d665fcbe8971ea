# PYTHON_ARGCOMPLETE_OK
"""The ``registry-insights`` command line.

Every command takes an image reference as docker, crane and skopeo write it,
``HOST[:PORT][/PREFIX]/REPOSITORY[:TAG|@DIGEST]``::

    registry-insights ls HOST[/PREFIX/|/REPOSITORY]      repositories, or a repository's tags
    registry-insights inspect REF [--platform P]         like skopeo inspect
    registry-insights manifest REF [--platform P]        the raw manifest or index
    registry-insights config REF [--platform P]          the raw image config
    registry-insights digest REF [--platform P]          the digest a tag points to
    registry-insights rm REF [--yes]                     a tag (siblings stay) or a digest
    registry-insights pull REF DIR [--platform P]        into an OCI image layout
    registry-insights report HOST[/REPOSITORY] -o DIR    the capacity report (saves a snapshot)
    registry-insights diff [HOST] [--older ID --newer ID]  what changed between two snapshots
    registry-insights cleanup HOST[/REPOSITORY] [REPO ...] --keep-last N ... [--yes --log F]
    registry-insights demo -o DIR [--serve]              the built-in demo registry

The older forms with the registry as a separate argument stay accepted: ``report URL``,
``cleanup URL [REPO ...]``, ``tag URL REPOSITORY TAG`` and ``pull URL REPO:TAG DIR``.

Every command takes ``--format table|json|csv`` (lists print JSON lines) and ``--quiet``.
Exit statuses: 0 done, 1 failed (registry error, not found, refused), 2 usage (bad
arguments or input, or a delete not confirmed), 3 partly done (some deletes of a cleanup
failed), 130 interrupted.

Passwords come from ``--password-stdin`` or the ``REGISTRY_INSIGHTS_PASSWORD`` environment
variable, never from an argument (arguments show in process lists and shell history).

Shell completion: ``eval "$(register-python-argcomplete registry-insights)"`` (argcomplete).

Each command is a handler ``handler(args, out) -> int`` registered with
``set_defaults(handler=...)`` by its module (:mod:`.images`, :mod:`.report`, :mod:`.cleanup`);
the work they call lives in the library (the cleanup steps in
:mod:`registry_insights.analysis.cleanup`).
"""

from __future__ import annotations

import argparse
import sys

from .. import errors
from . import cleanup, history, images, report
from .common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    PASSWORD_ENV,
    USERNAME_ENV,
    HelpFormatter,
    Output,
    UsageError,
    cli_advice,
)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_PARTIAL",
           "PASSWORD_ENV", "USERNAME_ENV"]

#: The command modules, in the order ``--help`` lists them; each has ``register(sub)``.
COMMAND_MODULES = (images, report, history, cleanup)

EPILOG = """\
references: HOST[:PORT][/PREFIX]/REPOSITORY[:TAG|@DIGEST], e.g. localhost:5000/team/app:v1

exit statuses: 0 done, 1 failed, 2 usage (bad arguments, or a delete not confirmed),
               3 partly done (some deletes failed), 130 interrupted

example:
  registry-insights ls localhost:5000/team/app
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="registry-insights",
        description="What is in a Docker/OCI registry, how big it really is, what to delete.",
        epilog=EPILOG, formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 failure, 2 usage, 3 partly done)."""
    parser = build_parser()
    try:
        import argcomplete
    except ImportError:  # pragma: no cover - a runtime dependency
        argcomplete = None
    if argcomplete is not None:
        argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse printed them
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # SIGTERM (kill, a service manager) unwinds like Ctrl-C, so a demo registry is stopped
    # and its temporary storage removed
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        previous = None
    try:
        return run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace, out: Output | None = None) -> int:
    """Call the command's handler; turn errors into a message and an exit status."""
    out = out or Output(args.format or args.default_format, args.quiet,
                        raw_csv=getattr(args, "raw_csv", False))
    try:
        return args.handler(args, out)
    except (UsageError, errors.InvalidReference, errors.InvalidValue) as exc:
        print(f"registry-insights: {cli_advice(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except errors.RegistryInsightsError as exc:
        print(f"registry-insights: {cli_advice(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # output paths: an existing file, no permission ...
        print(f"registry-insights: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("registry-insights: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
