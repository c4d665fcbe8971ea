"""Fixtures: real registries (Debian's ``docker-registry``) on loopback, in three auth modes.

- ``anonymous_registry``, ``basic_registry``, ``token_registry``: one registry per mode for the
  whole session (starting one costs about a second with its token server); tests isolate
  themselves with unique repository names. Each is a :class:`registry_auth.RegistryHandle`
  (``.url``, ``.host``, ``.server``, ``.mode``, ``.username``, ``.password``, ``.token_server``).
  The knobs of the session token server (``lifetime``, ``max_scopes_per_token``, ...) are put back
  to their defaults after every test.
- ``make_registry(mode, **token_server_options)``: a fresh registry of the test's own, stopped at
  teardown (short-lived tokens, narrowed grants, garbage collection ...).

Tests using them are marked ``integration`` automatically. Without the binary they are skipped,
unless the ``CI`` environment variable is set: CI must install it, so there they fail.
When such a test fails, the report shows the registry's log and the token server's requests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.registries import RegistryHandle, TokenServer, launch_registry

REGISTRY_BINARY = "docker-registry"
REGISTRY_FIXTURES = frozenset(
    {"anonymous_registry", "basic_registry", "token_registry", "make_registry"}
)
#: Every handle started in this session and not yet stopped (stopped at unconfigure at the latest).
_LIVE: list[RegistryHandle] = []
#: The session handles by mode, so their token server's knobs can be reset after each test.
_SESSION_HANDLES: dict[str, RegistryHandle] = {}
_TOKEN_DEFAULTS: dict[str, Any] = {
    "lifetime": 300,
    "max_scopes_per_token": None,
    "json_fields": "both",
    "omit_expires_in": False,
    "anonymous_pull": False,
}
_LOG_OFFSETS = pytest.StashKey[dict]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_binary_reason() -> str:
    return (
        f"{REGISTRY_BINARY!r} (CNCF Distribution) is not installed: "
        "apt-get update && apt-get install -y docker-registry"
    )


def _require_binary() -> None:
    if shutil.which(REGISTRY_BINARY) is None:
        if _in_ci():
            pytest.fail(f"CI is set and {_missing_binary_reason()}", pytrace=False)
        pytest.skip(_missing_binary_reason())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark registry tests ``integration``; skip them when the binary is missing (not in CI)."""
    missing = shutil.which(REGISTRY_BINARY) is None
    skip = pytest.mark.skip(reason=_missing_binary_reason())
    for item in items:
        uses_registry = bool(REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())))
        if uses_registry:
            item.add_marker(pytest.mark.integration)
        if missing and not _in_ci() and (uses_registry or item.get_closest_marker("integration")):
            item.add_marker(skip)


def _start(mode: str, directory: Path, **options: Any) -> RegistryHandle:
    _require_binary()
    handle = launch_registry(mode, directory, **options)
    _LIVE.append(handle)
    return handle


def _stop(handle: RegistryHandle) -> None:
    try:
        handle.stop()
    finally:
        if handle in _LIVE:
            _LIVE.remove(handle)


def _session_registry(
    mode: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RegistryHandle:
    handle = _start(mode, tmp_path_factory.mktemp(f"registry-{mode}"))
    request.addfinalizer(lambda: _stop(handle))
    _SESSION_HANDLES[mode] = handle
    return handle


@pytest.fixture(scope="session")
def anonymous_registry(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RegistryHandle:
    """A registry without authentication (``.username`` and ``.password`` are None)."""
    return _session_registry("anonymous", tmp_path_factory, request)


@pytest.fixture(scope="session")
def basic_registry(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RegistryHandle:
    """An htpasswd registry: users alice / ``s3cret:with:colons`` and bob / ``hunter2``."""
    return _session_registry("basic", tmp_path_factory, request)


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RegistryHandle:
    """A bearer-token registry with its ``.token_server`` (alice, bob; no anonymous pull)."""
    return _session_registry("token", tmp_path_factory, request)


class RegistryFactory:
    """Start registries of a test's own: ``make_registry(mode, **token_server_options)``.

    Keyword arguments ``users``, ``delete_enabled`` and ``storage_dir`` go to the registry; the
    others to :class:`registry_auth.TokenServer` (token mode only). Every registry started is
    stopped at the test's teardown.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.handles: list[RegistryHandle] = []

    def __call__(self, mode: str = "anonymous", **options: Any) -> RegistryHandle:
        directory = self.directory / f"registry-{len(self.handles)}-{mode}"
        handle = _start(mode, directory, **options)
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        errors = []
        for handle in reversed(self.handles):
            try:
                _stop(handle)
            except Exception as error:  # stop the others anyway
                errors.append(error)
        if errors:
            raise errors[0]


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[RegistryFactory]:
    """A factory of fresh registries, stopped at the end of the test."""
    factory = RegistryFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(autouse=True)
def _reset_session_token_server() -> Iterator[None]:
    """Put the session token server's knobs back to their defaults after each test."""
    yield
    handle = _SESSION_HANDLES.get("token")
    if handle is not None and isinstance(handle.token_server, TokenServer):
        for name, value in _TOKEN_DEFAULTS.items():
            setattr(handle.token_server, name, value)


def _handles_of(item: pytest.Item) -> list[RegistryHandle]:
    handles: list[RegistryHandle] = []
    for value in (getattr(item, "funcargs", None) or {}).values():
        if isinstance(value, RegistryHandle):
            handles.append(value)
        elif isinstance(value, RegistryFactory):
            handles.extend(value.handles)
    return handles


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, add the registry log (and token requests) written during the test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    handles = _handles_of(item)
    if not handles:
        return
    if report.when == "setup" and report.passed:
        item.stash[_LOG_OFFSETS] = {id(handle): handle.log_offsets() for handle in handles}
        return
    if report.failed:
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for handle in handles:
            log_offset, token_offset = offsets.get(id(handle), (0, 0))
            for title, text in handle.diagnostics(log_offset, token_offset):
                report.sections.append((f"{title} [{report.when}]", text))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop whatever registry is still running (the fixtures' finalizers normally did)."""
    for handle in list(_LIVE):
        try:
            _stop(handle)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


@pytest.fixture(scope="session", autouse=True)
def _private_user_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`report` saves a snapshot in the user data directory by default: during the tests that
    is a temporary one (platformdirs follows ``XDG_DATA_HOME``), never the user's history."""
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


@pytest.fixture(scope="session")
def demo_registry():
    """The built-in demo registry, seeded once for the session (about 6 s)."""
    _require_binary()
    from registry_insights.testing.demo import DemoRegistry

    with DemoRegistry() as demo:
        yield demo


@pytest.fixture
def proxied(token_registry):
    """A rewriting proxy (tests/support/proxy.py) in front of the session's token registry."""
    from tests.support.proxy import RewritingProxy

    with RewritingProxy(token_registry.url) as proxy:
        yield proxy


#: An earlier version whose cache files hold mutable answers as requests-cache
#: ``CachedResponse`` rows: what the tests of reading old caches run in a subprocess.
PREVIOUS_VERSION = "e487493"


@pytest.fixture(scope="session")
def previous_code(tmp_path_factory) -> Path:
    """The package as commit :data:`PREVIOUS_VERSION` had it, exported once per run (for
    ``PYTHONPATH`` of a subprocess)."""
    where = tmp_path_factory.mktemp("previous-code")
    archive = subprocess.run(["git", "archive", PREVIOUS_VERSION, "registry_insights"],
                             capture_output=True, check=True,
                             cwd=Path(__file__).resolve().parents[1])
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where
