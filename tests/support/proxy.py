"""A small rewriting HTTP proxy in front of a real registry (test support).

It reproduces wire behaviours CNCF Distribution does not produce itself (other registries'
challenge forms, missing digest headers, 429 with Retry-After, HEAD refused, redirects to a
storage host, HTML error pages, page-size caps, bodies cut mid-stream: a reply header
``Content-Length-Override`` announces more bytes than sent, and the connection is closed).
Rules see each request and may answer it themselves; rewrites see each upstream answer and may
change it.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


@dataclass
class Request:
    n: int
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class Reply:
    status: int
    headers: list = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.owner._serve(self, body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RewritingProxy


class _Server6(_Server):
    address_family = socket.AF_INET6


class RewritingProxy:
    """``RewritingProxy(target).start()``; ``.url``; ``.rules``/``.rewrites``; ``.log``.

    ``host="::1"`` listens on IPv6 loopback (``.url`` is then ``http://[::1]:PORT``)."""

    def __init__(self, target: str, host: str = "127.0.0.1"):
        parts = urlsplit(target)
        self.target_host, self.target_port = parts.hostname, parts.port
        self.rules: list[Callable[[Request], Reply | None]] = []
        self.rewrites: list[Callable[[Request, Reply], Reply]] = []
        self.log: list[tuple[str, str, int]] = []
        #: body bytes written to the client per request number (less than the body when the
        #: client hung up before reading it all)
        self.sent: dict[int, int] = {}
        self._n = 0
        self._lock = threading.Lock()
        self._server = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> RewritingProxy:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RewritingProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def forward(self, request: Request) -> Reply:
        conn = http.client.HTTPConnection(self.target_host, self.target_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            conn.request(request.method, request.path, body=request.body or None,
                         headers=headers)
            upstream = conn.getresponse()
            body = upstream.read()
            return Reply(upstream.status, [(k, v) for k, v in upstream.getheaders()
                                           if k.lower() not in _HOP], body)
        finally:
            conn.close()

    def _serve(self, handler: _Handler, body: bytes) -> None:
        with self._lock:
            self._n += 1
            n = self._n
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():  # repeated headers (Accept) joined
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Request(n, handler.command, handler.path, headers, body)
        reply = None
        for rule in self.rules:
            reply = rule(request)
            if reply is not None:
                break
        if reply is None:
            reply = self.forward(request)
            for rewrite in self.rewrites:
                reply = rewrite(request, reply)
        self.log.append((request.method, request.path, reply.status))
        handler.send_response(reply.status)
        length = reply.header("Content-Length-Override")
        for k, v in reply.headers:
            if k.lower() != "content-length-override":
                handler.send_header(k, v)
        handler.send_header("Content-Length", length or str(len(reply.body)))
        if length is not None and int(length) != len(reply.body):
            handler.send_header("Connection", "close")  # the body is cut: close after it
            handler.close_connection = True
        handler.end_headers()
        self.sent[n] = 0
        if request.method != "HEAD":
            try:
                for start in range(0, len(reply.body), 1 << 16):  # the client may hang up
                    handler.wfile.write(reply.body[start:start + (1 << 16)])
                    self.sent[n] += len(reply.body[start:start + (1 << 16)])
                handler.wfile.flush()
            except OSError:  # BrokenPipe, ConnectionReset: the client stopped reading
                handler.close_connection = True


def oci_error(status: int, code: str, message: str, headers=None) -> Reply:
    import json

    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    return Reply(status, [("Content-Type", "application/json")] + list(headers or []), body)


def slow(prefix: str, seconds: float):
    """A rule: requests whose path starts with ``prefix`` are answered ``seconds`` late (and
    then as the registry answers them)."""
    import time

    def rule(request):
        if request.path.startswith(prefix):
            time.sleep(seconds)
        return None
    return rule


def refuse_first(part: str, status: int, headers: list[tuple[str, str]], body: bytes = b""):
    """A rule: the first request whose path contains ``part`` is answered ``status`` with
    ``headers`` and ``body`` (a 429 with ``Retry-After`` ...), the rest as the registry answers
    them. The rule's ``refused`` lists the path it refused."""
    def rule(request):
        if part in request.path and not rule.refused:
            rule.refused.append(request.path)
            return Reply(status, list(headers), body)
        return None
    rule.refused = []
    return rule


def client_for(url, handle, **kwargs):
    """A client of ``url`` with the credentials of the registry ``handle`` (no cache unless
    asked)."""
    import registry_insights as ri

    kwargs.setdefault("cache", None)
    return ri.RegistryClient(url, username=handle.username, password=handle.password, **kwargs)
