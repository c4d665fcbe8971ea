"""Run a real registry (Debian's ``docker-registry``, CNCF Distribution 2.8) on loopback.

Used by the tests and the demo: :class:`RegistryServer` writes a configuration file, starts
``docker-registry serve CONFIG`` on a free ``127.0.0.1`` port with its own storage directory, waits
until ``GET /v2/`` answers, and stops the process by its PID. It can also run the registry's
offline garbage collection and measure how many blob bytes the storage holds.

The configuration is written as JSON, which is valid YAML, so no YAML library is needed.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from registry_insights.errors import RegistryBinaryNotFound

__all__ = ["RegistryServer"]

#: Seconds :meth:`RegistryServer.start` waits for ``GET /v2/`` to answer.
START_TIMEOUT = 15.0
#: Seconds :meth:`RegistryServer.stop` waits after SIGTERM before SIGKILL.
STOP_TIMEOUT = 10.0
#: How many free ports :meth:`RegistryServer.start` tries when the registry fails to bind.
PORT_ATTEMPTS = 5
#: Log lines quoted in error messages.
LOG_TAIL_LINES = 40


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Returns
    -------
    int
        The port the kernel picked for a socket bound to port 0 (the socket is closed again).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_environment() -> dict[str, str]:
    """Return a copy of ``os.environ`` without any ``REGISTRY_*`` variable.

    The registry reads every ``REGISTRY_*`` variable as an override of its configuration file
    (``REGISTRY_AUTH=token`` alone makes it panic), so none of the caller's may leak in.

    Returns
    -------
    dict of str to str
        The environment for the registry process.
    """
    return {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}


#: Servers started and not stopped: stopped at interpreter exit.
_RUNNING: weakref.WeakSet = weakref.WeakSet()


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.close()


#: The watcher (run with ``python -c``): it reads lines from its stdin, ``watch PATH`` (a
#: temporary directory to remove) and ``config PATH`` (a registry started with that
#: configuration file), until ``done`` (the owner cleaned up itself: exit) or end of file (the
#: owner died without cleaning up, e.g. a Jupyter kernel killed: end that registry, remove those
#: directories). Only the owner holds the pipe's write end, so end of file means it is gone.
_WATCHER = r"""
import os, shutil, signal, sys, time
paths, configs = [], []
for line in sys.stdin:
    verb, _, arg = line.rstrip("\n").partition(" ")
    if verb == "done":
        sys.exit(0)
    (paths if verb == "watch" else configs).append(arg)

def registries():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(c.encode() in argv for c in configs) and b"serve" in argv:
            found.append(int(pid))
    return found

deadline = time.monotonic() + 10  # the registry ends itself (PR_SET_PDEATHSIG) most times
while registries() and time.monotonic() < deadline:
    time.sleep(0.1)
for pid in registries():
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
time.sleep(0.2)
for path in paths:
    shutil.rmtree(path, ignore_errors=True)
"""


class _Watcher:
    """Removes a server's temporary files and ends its registry if this process dies without
    doing it (killed, or ended by a signal that skips ``atexit``): a small ``python -c``
    process in its own session, told what to clean through a pipe (see :data:`_WATCHER`)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WATCHER], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                env=_clean_environment(),
            )
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(line.encode() + b"\n")
            self._process.stdin.flush()
        except OSError:  # the watcher is gone: cleaning up falls back to atexit alone
            pass

    def watch(self, path: Path) -> None:
        self._send(f"watch {path}")

    def config(self, path: Path) -> None:
        self._send(f"config {path}")

    def done(self) -> None:
        """Tell the watcher everything is cleaned up; it exits without doing anything."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write(b"done\n")
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RegistryServer:
    """Run Debian's docker-registry (CNCF Distribution 2.8) on a free 127.0.0.1 port.

    Use it as a context manager (``with RegistryServer() as server: ...``) or call
    :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    storage_dir : str or os.PathLike, optional
        Root directory of the filesystem storage driver; it is kept on :meth:`stop`. When None, a
        temporary directory is created and removed again by :meth:`stop`.
    auth : dict, optional
        The ``auth:`` block of the registry configuration as a dict, e.g.
        ``{"htpasswd": {"realm": "r", "path": "/x/htpasswd"}}`` or
        ``{"token": {"realm": ..., "service": ..., "issuer": ..., "rootcertbundle": ...}}``.
        None serves anonymously.
    port : int, optional
        The port to listen on; None picks a free one (and another one if binding fails).
    binary : str, default "docker-registry"
        Name (looked up on ``PATH``) or path of the registry executable.
    delete_enabled : bool, default True
        Value of ``storage.delete.enabled``.
    log_path : str or os.PathLike, optional
        File the registry's output is appended to; by default a file in a private temporary
        directory.
    prefix : str, optional
        Serve the API under this path (``http.prefix``, e.g. ``"/reg/"``: the API is then at
        ``/reg/v2/``, and :attr:`url` ends with ``/reg``), as behind a path-routing proxy.

    Attributes
    ----------
    storage_dir : pathlib.Path
        The storage root directory.
    config_path : pathlib.Path
        The configuration file written by :meth:`start`.
    log_path : pathlib.Path
        The file holding the registry's output.
    binary : str
        Absolute path of the registry executable.

    Raises
    ------
    RegistryBinaryNotFound
        When ``binary`` is not found on ``PATH``.
    """

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] | None = None,
        *,
        auth: dict[str, Any] | None = None,
        port: int | None = None,
        binary: str = "docker-registry",
        delete_enabled: bool = True,
        log_path: str | os.PathLike[str] | None = None,
        prefix: str | None = None,
    ) -> None:
        resolved = shutil.which(binary)
        if resolved is None:
            raise RegistryBinaryNotFound(binary)
        self.binary: str = resolved
        self.auth: dict[str, Any] | None = auth
        self.delete_enabled: bool = delete_enabled
        path = (prefix or "").strip("/")
        if path and not all(part.replace("-", "").replace("_", "").isalnum()
                            for part in path.split("/")):
            raise ValueError(f"prefix {prefix!r} must be a path like '/reg/'")
        #: ``"/reg/"`` (``http.prefix``), or ``"/"``
        self.prefix: str = f"/{path}/" if path else "/"
        self._requested_port: int | None = port
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._secret: str = secrets.token_hex(32)
        # Config and (default) log live in a private directory, outside the storage.
        self._work_dir = tempfile.TemporaryDirectory(prefix="registry-insights-server-")
        self.config_path: Path = Path(self._work_dir.name) / "config.yml"
        self.log_path: Path = (
            Path(log_path) if log_path is not None else Path(self._work_dir.name) / "registry.log"
        )
        self._own_storage: tempfile.TemporaryDirectory[str] | None = None
        self._given_storage: Path | None = Path(storage_dir) if storage_dir is not None else None
        self._watcher = _Watcher()
        self.storage_dir: Path = self._prepare_storage()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the registry listens on (assigned by :meth:`start` when not given).

        Raises
        ------
        RuntimeError
            When no port was given and the server was never started.
        """
        if self._port is None:
            raise RuntimeError("the registry has no port yet: call start() first")
        return self._port

    @property
    def host(self) -> str:
        """``"127.0.0.1:PORT"``, the registry host as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``"http://127.0.0.1:PORT"`` (with the :attr:`prefix` path, if any, e.g.
        ``"http://127.0.0.1:PORT/reg"``), the registry's base URL."""
        return f"http://{self.host}{self.prefix.rstrip('/')}"

    @property
    def running(self) -> bool:
        """True while the registry process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the registry process, or None when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    # -- configuration -----------------------------------------------------------------------

    def _prepare_storage(self) -> Path:
        """Create (if needed) and return the storage root directory."""
        if self._given_storage is not None:
            self._given_storage.mkdir(parents=True, exist_ok=True)
            return self._given_storage
        if self._own_storage is None:
            self._own_storage = tempfile.TemporaryDirectory(prefix="registry-insights-storage-")
            if self.running or self._watcher._process is not None:
                self._watcher.watch(Path(self._own_storage.name))
        return Path(self._own_storage.name)

    def config(self) -> dict[str, Any]:
        """Return the registry configuration this server writes to :attr:`config_path`.

        Returns
        -------
        dict
            The configuration (the ``http.addr`` part needs :attr:`port`).
        """
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": bool(self.delete_enabled)},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": self._secret,
                     **({"prefix": self.prefix} if self.prefix != "/" else {})},
            "health": {"storagedriver": {"enabled": False}},
            # foreign / non-distributable layers name their URLs; Distribution refuses every
            # URL unless allowed (as Docker Hub allows Microsoft's)
            "validation": {"manifests": {"urls": {"allow": ["^https?://"]}}},
        }
        if self.auth:
            config["auth"] = self.auth
        return config

    def _write_config(self) -> None:
        """Write :meth:`config` as JSON (valid YAML) to :attr:`config_path`."""
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RegistryServer:
        """Start the registry and wait until ``GET /v2/`` answers 200 or 401.

        Returns
        -------
        RegistryServer
            ``self``, so ``server = RegistryServer().start()`` works.

        Raises
        ------
        RuntimeError
            When the registry does not answer within ~15 s, or exits; the message holds the
            tail of its log.
        """
        if self.running:
            return self
        self.storage_dir = self._prepare_storage()
        if self._watcher._process is None:  # from the first start on, a killed owner is covered
            self._watcher.watch(Path(self._work_dir.name))
            if self._own_storage is not None:
                self._watcher.watch(Path(self._own_storage.name))
            self._watcher.config(self.config_path)
        attempts = PORT_ATTEMPTS if self._requested_port is None else 1
        last_error: RuntimeError | None = None
        for _ in range(attempts):
            if self._requested_port is None and (self._port is None or last_error is not None):
                self._port = _free_port()
            try:
                self._launch()
                return self
            except RuntimeError as error:
                last_error = error
                self._stop_process()
                if "address already in use" not in str(error).lower():
                    break
        assert last_error is not None
        raise last_error

    def _launch(self) -> None:
        """Write the configuration, start ``serve`` and wait for it to answer."""
        self._write_config()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_file = open(self.log_path, "ab")  # closed by _stop_process
        self._process = subprocess.Popen(
            [self.binary, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=_clean_environment(),
            cwd=self._work_dir.name,
            preexec_fn=_die_with_parent,
        )
        _RUNNING.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with status {self._process.returncode} on "
                    f"{self.host}:\n{self._log_tail(log_offset)}"
                )
            # Ready when *this* process says it listens and the port answers /v2/ (another
            # program holding the port would answer too, while ours dies of "address in use").
            if f"listening on {self.host}" in self._log_tail(log_offset, lines=1000):
                status = self._probe()
                if status in (200, 401) and self._process.poll() is None:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"docker-registry did not answer GET {self.url}/v2/ within {START_TIMEOUT:.0f} s:\n"
            f"{self._log_tail(log_offset)}"
        )

    def _probe(self) -> int | None:
        """Return the status of ``GET /v2/``, or None when nothing answers yet."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
        try:
            connection.request("GET", f"{self.prefix}v2/")
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            connection.close()

    def _stop_process(self) -> None:
        """Terminate the registry process by its PID (SIGTERM, then SIGKILL) and close the log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop the registry and remove the temporary storage directory (if one was created).

        Calling it again, or on a server that never started, does nothing. Servers still
        running when the interpreter exits are stopped then (``atexit``); if the interpreter is
        killed, the kernel ends the registry too (Linux ``PR_SET_PDEATHSIG``).
        """
        _RUNNING.discard(self)
        self._stop_process()
        if self._own_storage is not None:
            self._own_storage.cleanup()
            self._own_storage = None

    def close(self) -> None:
        """Stop the registry and remove every temporary file, the log included; idempotent.

        From the first :meth:`start` on, a small watcher process does the same if this process
        dies first without running ``atexit`` (a Jupyter kernel killed or restarted while busy):
        it ends the registry and removes the temporary storage, configuration and log.
        """
        self.stop()
        self._work_dir.cleanup()
        self._watcher.done()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        state = "running" if self.running else "stopped"
        return f"<RegistryServer {where} {state} storage={str(self.storage_dir)!r}>"

    # -- inspection --------------------------------------------------------------------------

    def log(self) -> str:
        """Return the registry's log (its standard output and error) so far.

        Returns
        -------
        str
            The whole log text, empty when the registry never started.
        """
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the log written after byte ``offset``."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last lines of the registry's log.

        Parameters
        ----------
        lines : int, default 40
            How many lines.

        Returns
        -------
        str
            The lines, joined by newlines.
        """
        return self._log_tail(0, lines)

    def blob_bytes(self) -> int:
        """Return the total size of the blobs the storage holds.

        Returns
        -------
        int
            Sum of the sizes of every ``data`` file under
            ``STORAGE/docker/registry/v2/blobs`` (0 when there is none).
        """
        root = self.storage_dir / "docker" / "registry" / "v2" / "blobs"
        if not root.is_dir():
            return 0
        return sum(path.stat().st_size for path in root.rglob("data") if path.is_file())

    # -- maintenance -------------------------------------------------------------------------

    def garbage_collect(self, delete_untagged: bool = False) -> str:
        """Run the registry's garbage collection on the storage.

        The registry is stopped, ``docker-registry garbage-collect [--delete-untagged] CONFIG``
        runs, and the registry is started again on the same port (if it was running).

        Parameters
        ----------
        delete_untagged : bool, default False
            Also delete manifests that no tag points to (``--delete-untagged``).

        Returns
        -------
        str
            The output (standard output and error) of the garbage collection.

        Raises
        ------
        RuntimeError
            When the garbage collection fails (the registry is restarted first), or when the
            registry does not come back.
        """
        was_running = self.running
        self._stop_process()
        if self._port is None:
            self._port = _free_port()  # the config needs an address, even if never served
        self._write_config()
        command = [self.binary, "garbage-collect"]
        if delete_untagged:
            command.append("--delete-untagged")
        command.append(str(self.config_path))
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_clean_environment(),
                cwd=self._work_dir.name,
                timeout=300,
                check=False,
            )
        finally:
            if was_running:
                self._launch_same_port()
        output = result.stdout.decode("utf-8", errors="replace")
        if result.returncode != 0:
            raise RuntimeError(
                f"docker-registry garbage-collect exited with status {result.returncode}:\n"
                + "\n".join(output.splitlines()[-LOG_TAIL_LINES:])
            )
        return output

    def _launch_same_port(self) -> None:
        """Start the registry again on the port it had, stopping it if that fails."""
        try:
            self._launch()
        except RuntimeError:
            self._stop_process()
            raise
