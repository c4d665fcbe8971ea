"""What every command shares: references, connection options, output formats, status lines.

References are written as docker, crane and skopeo write them::

    HOST[:PORT][/PREFIX]/REPOSITORY[:TAG|@DIGEST]

The first path component is always the registry (there is no default registry), optionally
with ``https://`` or ``http://`` in front. ``report``, ``cleanup``, ``tag`` and ``pull`` also
accept their older form with the registry URL as a separate argument.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import errors

PASSWORD_ENV = "REGISTRY_INSIGHTS_PASSWORD"
USERNAME_ENV = "REGISTRY_INSIGHTS_USERNAME"

#: Exit statuses (documented in the README and ``--help``).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
FORMATS = ("table", "json", "csv")


class UsageError(errors.RegistryInsightsError):
    """A command line that cannot run as given (exit status 2); the message says what to fix."""


# -- references ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A parsed ``HOST[:PORT][/PREFIX]/REPOSITORY[:TAG|@DIGEST]`` (parts but the host optional).

    ``prefix`` is True when the text ended in ``/`` (``ls HOST/team/``: the repositories under
    ``team/``, not a repository called ``team``).
    """

    registry: str
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    prefix: bool = False

    @property
    def reference(self) -> str | None:
        """The manifest reference: the digest when given, else the tag, else None."""
        return self.digest or self.tag

    def __str__(self) -> str:
        host = self.registry.split("://", 1)[-1]
        out = f"{host}/{self.repository}" if self.repository else host
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def manifest_reference(self) -> str:
        """The reference to fetch: the digest, else the tag, else ``latest`` (as docker)."""
        return self.digest or self.tag or "latest"

    def image(self) -> str:
        """``repository:tag`` or ``repository@digest`` (what status lines show)."""
        sep = "@" if self.digest else ":"
        return f"{self.repository}{sep}{self.reference}" if self.reference else str(
            self.repository)


def parse_target(text: str, *, repository: bool = False, reference: bool = False) -> Target:
    """Parse a reference; ``repository``/``reference``: require those parts.

    Raises
    ------
    InvalidReference
        Naming the bad part (host, repository, tag or digest).
    UsageError
        When a required part is missing.
    """
    from ..registry.names import (
        normalize_registry,
        validate_digest,
        validate_repository,
        validate_tag,
    )

    if not isinstance(text, str) or not text.strip():
        raise UsageError("the reference is empty: give HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]")
    rest = text.strip()
    scheme = ""
    for candidate in ("https://", "http://"):
        if rest.lower().startswith(candidate):
            scheme, rest = rest[:len(candidate)], rest[len(candidate):]
    host, _, path = rest.partition("/")
    registry = scheme + host
    normalize_registry(registry, insecure=True)  # InvalidReference names a bad host
    prefix = path.endswith("/")
    path = path.rstrip("/")
    if path == "v2" and not scheme:  # "host/v2" is a registry URL, not a repository
        path = ""
    digest = tag = None
    if "@" in path:
        path, digest = path.split("@", 1)
        validate_digest(digest)
    if ":" in path.rpartition("/")[2]:
        path, tag = path.rsplit(":", 1)
        validate_tag(tag)
    if path:
        validate_repository(path)
    if repository and not path:
        raise UsageError(f"{text!r} names no repository: give HOST[:PORT]/REPOSITORY"
                         "[:TAG|@DIGEST], e.g. localhost:5000/team/app:v1")
    if reference and not (tag or digest):
        raise UsageError(f"{text!r} names no tag or digest: add :TAG or @sha256:...")
    return Target(registry, path or None, tag, digest, prefix and not (tag or digest))


def legacy_image(url: str, image: str) -> Target:
    """The older form ``URL REPOSITORY[:TAG|@DIGEST]`` (registry as a separate argument)."""
    from ..registry.names import parse_reference

    target = parse_target(url)
    if target.repository:
        raise UsageError(f"{url!r}: with the registry as a separate argument, give the host "
                         "only (or the one-argument form HOST/REPOSITORY:TAG)")
    ref = parse_reference(image)
    if ref.registry:
        raise errors.InvalidReference(
            f"{image!r} names a registry ({ref.registry}): give REPO:TAG, the URL argument "
            "says which registry (or use the one-argument form HOST/REPOSITORY:TAG)")
    return Target(target.registry, ref.repository, ref.tag, ref.digest)


# -- options ---------------------------------------------------------------------------------
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks."""


def command(sub, name: str, help: str, example: str, description: str | None = None,
            **kwargs) -> argparse.ArgumentParser:
    """A subcommand with its one-line help, description and an example in its ``--help``."""
    epilog = "example:\n" + textwrap.indent(example.strip("\n"), "  ")
    text = textwrap.fill(description or help, width=88)
    parser = sub.add_parser(name, help=help, description=text, epilog=epilog,
                            formatter_class=HelpFormatter, **kwargs)
    return parser


def connection_options(p: argparse.ArgumentParser) -> None:
    """Credentials and transport options."""
    p.add_argument("--username", default=os.environ.get(USERNAME_ENV),
                   help=f"user name (default ${USERNAME_ENV}, else docker config)")
    p.add_argument("--password-stdin", action="store_true",
                   help=f"read the password from standard input (else ${PASSWORD_ENV})")
    p.add_argument("--insecure", action="store_true", help="allow plain http to this host")
    p.add_argument("--no-cache", action="store_true", help="do not use the HTTP cache")
    p.add_argument("--workers", type=positive, default=8,
                   help="concurrent requests (default 8)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")


def output_options(p: argparse.ArgumentParser, default: str = "table",
                   note: str = "") -> None:
    """``--format`` and ``--quiet``."""
    p.add_argument("--format", choices=FORMATS, default=None,
                   help=f"output format (default {default}{note}); lists print JSON lines")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no status lines or progress bars on standard error")
    p.add_argument("--raw-csv", action="store_true",
                   help="CSV output and files keep the registry's values as they are, for "
                        "programs (default: text a spreadsheet would run as a formula, "
                        "=... +... -... @..., gets a ' in front)")
    p.set_defaults(default_format=default)


def connect(args, target: Target, **kwargs):
    """A RegistryClient for ``target``'s registry with the command line's credentials."""
    from ..registry.client import RegistryClient

    password = None
    if getattr(args, "password_stdin", False):
        if not args.username:
            # as docker login: a password alone names nobody (the docker config's entry
            # would be used instead, and the password read for nothing)
            raise UsageError(f"--password-stdin needs --username (or ${USERNAME_ENV})")
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    return RegistryClient(target.registry, username=args.username, password=password,
                          insecure=args.insecure, cache=None if args.no_cache else "default",
                          max_workers=args.workers, verbose=args.verbose, **kwargs)


def _whole(text: str, least: int) -> int:
    """``text`` as a whole number of at least ``least``; else argparse's usage error."""
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {least}")
    return value


def count(text: str) -> int:
    return _whole(text, 0)


def positive(text: str) -> int:
    return _whole(text, 1)


def size(text: str) -> int:
    from ..units import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def utc_time(text: str):
    from ..frames.schema import utc

    try:
        return utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def age(text: str):
    from ..analysis.retention import parse_age

    try:
        parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def regex(text: str) -> str:
    """A tag pattern: checked here, matched with a time limit (``TagPattern``) when planning."""
    from ..analysis.retention import TagPattern

    try:
        TagPattern(text, "regular expression")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def platform(text: str) -> str:
    from ..registry.models import Platform

    try:
        return str(Platform.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def platform_matches(wanted: str, actual: str) -> bool:
    """``linux/arm64`` matches ``linux/arm64`` and ``linux/arm64/v8``; a variant must match."""
    return actual == wanted or actual.startswith(wanted + "/")


# -- output ----------------------------------------------------------------------------------
def plain(value):
    """A JSON/CSV-ready value: UTC times as ISO 8601 ``...Z``, NA as None, numpy as Python."""
    if value is None:
        return None
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):  # dicts, and ImageConfig (one parse for all its items)
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (ImportError, TypeError, ValueError):
            pass
        text = value.isoformat()
        return text.replace("+00:00", "Z")
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (ImportError, TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def short_digest(digest) -> str:
    text = "" if digest is None else str(digest)
    return text[:19] if text.startswith("sha256:") else text


def _cell(value, kind: str) -> str:
    from ..units import format_bytes

    value = plain(value)
    if value is None:
        return "-"
    if kind == "bytes":
        return format_bytes(value)
    if kind == "digest":
        return short_digest(value)
    if kind == "date":
        return str(value)[:10]
    if kind == "time":
        return str(value)[:19].replace("T", " ")
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


class Output:
    """Where a command's results (standard output) and status lines (standard error) go.

    Tables are for people: sizes in binary units, digests shortened, times to the second.
    ``json`` prints one JSON object per line for lists (JSON lines) and one indented object
    otherwise; ``csv`` a header and rows. Both keep exact bytes and full digests.
    """

    def __init__(self, fmt: str, quiet: bool = False, stdout=None, stderr=None,
                 raw_csv: bool = False):
        self.format = fmt
        self.quiet = quiet
        self.raw_csv = raw_csv
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr

    @property
    def progress(self) -> bool | None:
        """For the library's ``progress=``: off when quiet, else on in a terminal only."""
        return False if self.quiet else None

    def status(self, text: str) -> None:
        """A status line on standard error (not with ``--quiet``)."""
        if not self.quiet:
            print(text, file=self.stderr, flush=True)

    def note(self, text: str) -> None:
        """A warning the user must see even with ``--quiet``."""
        print(f"note: {text}", file=self.stderr, flush=True)

    def unread(self, inventory):
        """Note how many tags (and repositories) the walk could not read; return it."""
        errors = getattr(inventory, "read_errors", ())
        if errors:
            repos = sum(e.tag is None for e in errors)
            self.note(f"{inventory.unread_tags} tag(s) and {repos} repositor(y/ies) could not "
                      "be read and are left out, never planned (the report's 'Could not "
                      "read', errors.csv)")
        return inventory

    @contextmanager
    def phase(self, text: str, after: float = 1.0):
        """A status line ``text ...`` once a step has taken ``after`` seconds (quick steps
        stay silent), and its time when it ends."""
        import threading

        start = time.monotonic()
        shown = threading.Event()

        def show() -> None:
            shown.set()
            self.status(f"{text} ...")

        timer = threading.Timer(after, show) if after > 0 else None
        if timer is None:
            show()
        else:
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
        if shown.is_set() and time.monotonic() - start >= after + 0.5:
            self.status(f"{text}: done in {time.monotonic() - start:.1f} s")

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def raw(self, data: bytes) -> None:
        """Bytes exactly as received (a manifest's digest is of these bytes)."""
        self.stdout.flush()
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.stdout.write(data.decode("utf-8", "replace"))
        if getattr(self.stdout, "isatty", lambda: False)():
            self.line()

    def rows(self, records: list[dict], columns: list[tuple[str, str]], *,
             indent: str = "", header: bool = True) -> None:
        """``records`` as a table, JSON lines or CSV; ``columns``: (key, kind) where kind is
        ``text``, ``bytes``, ``digest``, ``date`` or ``time`` (how a table shows it)."""
        keys = [k for k, _ in columns]
        if self.format == "json":
            for record in records:
                self.line(json.dumps({k: plain(record.get(k)) for k in keys}))
            return
        if self.format == "csv":
            buffer = io.StringIO()
            writer = csv_writer(buffer)
            if header:
                writer.writerow(keys)
            for record in records:
                writer.writerow([csv_value(record.get(k), self.raw_csv) for k in keys])
            self.stdout.write(buffer.getvalue())
            self.stdout.flush()
            return
        self.line(table([{k: _cell(r.get(k), kind) for k, kind in columns} for r in records],
                        keys, right={k for k, kind in columns if kind == "bytes"},
                        indent=indent, header=header).rstrip("\n"))

    def record(self, record: dict, table_lines: list[str] | None = None) -> None:
        """One object: indented JSON, a one-row CSV (nested values as JSON), or lines."""
        if self.format == "json":
            self.line(json.dumps(plain(record), indent=2))
        elif self.format == "csv":
            buffer = io.StringIO()
            writer = csv_writer(buffer)
            writer.writerow(list(record))
            writer.writerow([csv_value(v, self.raw_csv) for v in record.values()])
            self.stdout.write(buffer.getvalue())
            self.stdout.flush()
        else:
            for text in table_lines if table_lines is not None else [
                    f"{k}: {_cell(v, 'text')}" for k, v in record.items()]:
                self.line(text)


def csv_writer(buffer):
    """A csv writer with the report's line ends (CRLF: a CR inside a cell is quoted)."""
    from ..report.build import CSV_LINE_END

    return csv.writer(buffer, lineterminator=CSV_LINE_END)


def csv_value(value, raw: bool = False):
    """A CSV cell; text a spreadsheet would run as a formula is neutralised unless ``raw``."""
    from ..report.build import csv_safe

    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        value = ",".join(str(v) for v in value)
    elif isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return value if raw else csv_safe(value)


def table(rows: list[dict], keys: list[str], right: set[str] = frozenset(), indent: str = "",
          header: bool = True) -> str:
    """Aligned text columns, upper-case headers."""
    widths = {k: max([len(k) if header else 0] + [len(r[k]) for r in rows]) for k in keys}
    lines = []
    if header:
        lines.append(indent + "  ".join(k.upper().ljust(widths[k]) for k in keys).rstrip())
    for r in rows:
        lines.append(indent + "  ".join(
            r[k].rjust(widths[k]) if k in right else r[k].ljust(widths[k])
            for k in keys).rstrip())
    return "\n".join(lines) + "\n"


def write_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def cli_advice(exc: Exception) -> str:
    """The error's text, with the Python API's advice put in command-line terms."""
    return (str(exc)
            .replace("pass username= and password= instead",
                     "use --username and --password-stdin instead")
            .replace("pass insecure=True to allow it", "use --insecure to allow it")
            .replace("e.g. tags_frame(client, repositories=[...])",
                     "e.g. HOST/REPOSITORY or --repository NAME (report), REPO arguments "
                     "(cleanup)"))
