"""Benchmark: a full inventory of a token-auth registry behind injected latency.

Run ``python benchmarks/inventory.py --repos 5 --tags 40 --latency-ms 20``.

What it sets up, all on loopback:

- a CNCF Distribution registry in token-auth mode with the tests' token server
  (``tests/support/registries.py``), seeded through the registry's own API with
  ``tests/support/fleet.py``
  (``--repos`` repositories of ``--tags`` builds plus ``latest``; every ``--index-every``-th
  build is a two-platform index);
- two counting proxies (``tests/proxy.py``), one in front of the registry and one in front of
  the token server, each sleeping ``--latency-ms`` before forwarding a request. The registry
  proxy rewrites the challenge's realm to the token proxy, so token requests pay the latency
  too. Both proxies speak TLS (a self-signed certificate made for the run): python-dxf refuses
  token authentication over plain http, and real registries are https anyway. They keep one
  upstream connection per client connection. The proxies and the registry's token server run
  in a child process, so the measured Python clients do not share a GIL with them.

What it measures, in one run, from the proxies' request logs (by kind: ping ``/v2/``, token,
catalog, tags, manifest, blob):

- registry_insights (``fetch_inventory`` then the tags frame) for each ``--workers`` value:
  cold (empty cache directory), warm and fresh (a new client on that cache), warm and expired
  (after sleeping past ``freshness``: the same client, as when a notebook cell runs again, and a
  new client on a copy of the cache, as when a script runs again);
- ``skopeo inspect`` of every tag, one process per tag, sequentially;
- python-dxf: catalog, then per repository a ping, a pull token and the tag list, then per tag
  the manifest (and each platform manifest of an index) and the config blob, sequentially;
- the protocol's lower bound for the fleet.

It prints a Markdown report and writes it, with a JSON of the raw numbers and a log of every
request, to ``benchmarks/results/inventory-<repos>x<tags>-<latency>ms.*``. A peer that is not
installed is skipped with a note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import ipaddress
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT,):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_common import source_version  # noqa: E402

KINDS = ("ping", "token", "catalog", "tags", "manifest", "blob", "other")
RESULTS = Path(__file__).resolve().parent / "results"
SKOPEO = "/usr/bin/skopeo"
PREFIX = "bench"


# -- classification ------------------------------------------------------------------------------

def classify(proxy: str, method: str, path: str) -> str:
    """The kind of one logged request: ``token`` for anything the token proxy saw, else by
    the registry path (``/v2/`` is the ping)."""
    if proxy == "token":
        return "token"
    path = path.split("?", 1)[0]
    if path.rstrip("/") == "/v2":
        return "ping"
    if path == "/v2/_catalog":
        return "catalog"
    if path.endswith("/tags/list"):
        return "tags"
    if "/manifests/" in path:
        return "manifest"
    if "/blobs/" in path:
        return "blob"
    return "other"


def count_kinds(entries: list[tuple]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for proxy, method, path, *_rest in entries:
        counts[classify(proxy, method, path)] += 1
    return counts


def connection_times(entries: list[tuple]) -> tuple[float, float]:
    """``(gap, served)``, mean milliseconds, from the proxies' log: ``gap`` between an answer
    and the next request on the same connection (the client reading the answer, working on
    it and sending again, plus the proxy's own reading and writing), ``served`` from a
    request's arrival to its answer (the latency added, the proxy and the registry). A walk
    at a fixed number of connections takes about (gap + served) x requests per connection."""
    by_connection: dict[tuple, list[tuple]] = {}
    for entry in entries:
        if entry[4] is not None:
            by_connection.setdefault((entry[0], entry[6]), []).append(entry)
    gaps, served = [], []
    for seen in by_connection.values():
        seen.sort(key=lambda e: e[4])
        gaps += [b[4] - a[5] for a, b in zip(seen, seen[1:])]
        served += [e[5] - e[4] for e in seen]
    mean = statistics.fmean
    return (mean(gaps) * 1000 if gaps else math.nan, mean(served) * 1000 if served else math.nan)


# -- the harness: registry, token server and proxies, in a child process -------------------------

def _make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (usable as its own CA bundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


_ARRIVALS = threading.local()
_UPSTREAM = threading.local()  # per handler thread: one proxy's connection to its target


class _TimedLog(list):
    """The proxy's log with, on each entry, when the request arrived and when it was answered
    (``time.monotonic``, comparable across processes on Linux), and which connection it came
    on (the handler thread's ident: the proxy serves each connection on a thread of its own)."""

    def append(self, entry) -> None:
        super().append((*entry, getattr(_ARRIVALS, "at", None), time.monotonic(),
                        threading.get_ident()))


def _latency_proxy(target: str, name: str, latency: float, context: ssl.SSLContext):
    """A RewritingProxy that speaks TLS, sleeps ``latency`` before each request and logs it."""
    from tests.support.proxy import _HOP, Reply, RewritingProxy, _Handler

    class TLSHandler(_Handler):
        def setup(self) -> None:
            self.request.do_handshake()  # in the handler thread, not the accept loop
            super().setup()

        def _joined(self) -> None:
            # RewritingProxy keeps one value per header name; Go clients (skopeo) send one
            # Accept header per media type, so join repeated headers first (RFC 9110 5.3).
            for name in {k.lower() for k in self.headers.keys()}:
                values = self.headers.get_all(name) or []
                if len(values) > 1:
                    del self.headers[name]
                    self.headers[name] = ", ".join(values)
            self._any()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _joined  # noqa: N815

    class KeepAliveProxy(RewritingProxy):
        """Forwards on one upstream connection per handler thread (the stock proxy opens one
        per request, which costs the harness and the registry CPU that the measured clients
        then compete with)."""

        reuse_upstream = True

        def forward(self, request):
            if not self.reuse_upstream:
                return super().forward(request)
            for attempt in (0, 1):
                conn = getattr(_UPSTREAM, "conn", None)
                if conn is None:
                    conn = _UPSTREAM.conn = http.client.HTTPConnection(
                        self.target_host, self.target_port, timeout=30)
                try:
                    headers = {k: v for k, v in request.headers.items()
                               if k.lower() not in _HOP}
                    conn.request(request.method, request.path, body=request.body or None,
                                 headers=headers)
                    upstream = conn.getresponse()
                    body = upstream.read()
                except (http.client.HTTPException, OSError):
                    conn.close()
                    _UPSTREAM.conn = None
                    if attempt:
                        raise
                    continue
                if upstream.will_close:
                    conn.close()
                    _UPSTREAM.conn = None
                return Reply(upstream.status, [(k, v) for k, v in upstream.getheaders()
                                               if k.lower() not in _HOP], body)
            raise AssertionError("unreachable")

    proxy = KeepAliveProxy(target)
    proxy._server.socket = context.wrap_socket(proxy._server.socket, server_side=True,
                                               do_handshake_on_connect=False)
    proxy._server.RequestHandlerClass = TLSHandler
    proxy._server.handle_error = lambda request, address: None  # failed handshakes: quiet
    proxy.name = name
    proxy.latency = latency

    def delay(request):
        _ARRIVALS.at = time.monotonic()
        if proxy.latency:
            time.sleep(proxy.latency)
        return None

    proxy.rules.append(delay)
    proxy.log = _TimedLog()
    port = proxy._server.server_address[1]
    proxy.https_url = f"https://127.0.0.1:{port}"
    return proxy


def _server_cpu(registry_pid: int | None) -> tuple[float, float]:
    """CPU seconds used so far by this process (proxies, token server) and by the registry."""
    times = os.times()
    registry = 0.0
    if registry_pid:
        try:
            fields = Path(f"/proc/{registry_pid}/stat").read_text().rsplit(")", 1)[1].split()
            registry = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return times.user + times.system, registry


def _harness_main(conn, latency: float, workdir: str) -> None:
    """Child process: start everything, answer the parent's commands, stop everything."""
    from tests.support.registries import launch_registry

    handle = proxies = None
    try:
        work = Path(workdir)
        handle = launch_registry("token", work / "registry")
        cert, key = _make_certificate(work)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        token_proxy = _latency_proxy(handle.token_server.url.rsplit("/", 1)[0], "token",
                                     latency, context)
        registry_proxy = _latency_proxy(handle.url, "registry", latency, context)
        upstream_realm = handle.token_server.url
        proxied_realm = token_proxy.https_url + "/token"

        def realm(request, reply):
            value = reply.header("WWW-Authenticate")
            if value and upstream_realm in value:
                reply.set_header("WWW-Authenticate", value.replace(upstream_realm, proxied_realm))
            return reply

        registry_proxy.rewrites.append(realm)
        proxies = [token_proxy.start(), registry_proxy.start()]
        conn.send({
            "direct": handle.url, "registry": registry_proxy.https_url,
            "host": registry_proxy.https_url.split("://", 1)[1], "token": proxied_realm,
            "username": handle.username, "password": handle.password, "cert": str(cert),
            "registry_pid": handle.server.pid, "registry_log": str(handle.server.log_path),
        })
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                break
            if command == "mark":
                conn.send([len(p.log) for p in proxies])
            elif command == "since":
                marks = args[0]
                entries = [(p.name, *entry) for p, mark in zip(proxies, marks)
                           for entry in p.log[mark:]]
                conn.send(sorted(entries, key=lambda e: e[4] or 0))
            elif command == "cpu":
                conn.send(_server_cpu(handle.server.pid))
            elif command == "set":  # ("set", attribute, value) on both proxies
                for p in proxies:
                    setattr(p, args[0], args[1])
                conn.send(True)
            elif command == "stop":
                break
    except BaseException:
        try:
            conn.send({"error": traceback.format_exc()})
        except OSError:
            pass
    finally:
        for p in proxies or []:
            p.stop()
        if handle is not None:
            handle.stop()
        conn.close()


class Harness:
    """The parent's side of the harness process."""

    def __init__(self, latency: float, workdir: Path):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_harness_main, args=(child, latency, str(workdir)),
                                   name="benchmark-harness", daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(60):
            self.stop()
            raise RuntimeError("the harness (registry, token server, proxies) did not start")
        self.info = self.conn.recv()
        if "error" in self.info:
            self.stop()
            raise RuntimeError("the harness failed:\n" + self.info["error"])

    def mark(self) -> list[int]:
        self.conn.send(("mark",))
        return self.conn.recv()

    def since(self, mark: list[int]) -> list[tuple]:
        self.conn.send(("since", mark))
        return [tuple(e) for e in self.conn.recv()]

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of (proxies and token server, registry)."""
        self.conn.send(("cpu",))
        return tuple(self.conn.recv())

    def set_latency(self, seconds: float) -> None:
        self.conn.send(("set", "latency", seconds))
        self.conn.recv()

    def set_upstream_reuse(self, reuse: bool) -> None:
        self.conn.send(("set", "reuse_upstream", reuse))
        self.conn.recv()

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        self.process.join(30)
        if self.process.is_alive():  # our own child, by its handle
            self.process.terminate()
            self.process.join(10)


# -- the fleet and its lower bound ----------------------------------------------------------------

def seed(info: dict, repos: int, tags: int, index_every: int, seed_value: int):
    """Push the fleet straight to the registry (no proxy, no latency)."""
    import registry_insights as ri
    from tests.support.fleet import push_fleet

    with ri.RegistryClient(info["direct"], info["username"], info["password"], cache=None,
                           max_workers=8) as client:
        return push_fleet(client, PREFIX, repositories=repos, tags=tags, seed=seed_value,
                          index_every=index_every)


def lower_bound(seeded, repositories: list[str], scopes_per_token: int = 20,
                catalog_page: int = 1000) -> dict[str, int]:
    """Requests the protocol needs for a cold inventory (token auth, multi-scope tokens)."""
    tops = {(i.repository, i.tag) for i in seeded}
    children = {(i.repository, i.manifest_digest) for i in seeded
                if i.digest != i.manifest_digest}
    configs = {i.config_digest for i in seeded}
    counts = dict.fromkeys(KINDS, 0)
    counts.update({
        "ping": 1,
        "token": 1 + math.ceil(len(repositories) / scopes_per_token),
        "catalog": max(1, math.ceil(len(repositories) / catalog_page)),
        "tags": len(repositories),  # Distribution ignores n: one page per repository
        "manifest": len(tops) + len(children),
        "blob": len(configs),
    })
    return counts


def staged_rounds(bound: dict[str, int], seeded, repositories: list[str], workers: int) -> int:
    """Round trips on the critical path when each stage waits for the previous one:
    ping, catalog token, catalog, pull tokens, tag lists, tag manifests, platform manifests,
    configs (each stage ``ceil(n / workers)`` rounds)."""
    tops = len({(i.repository, i.tag) for i in seeded})
    children = bound["manifest"] - tops
    pull_tokens = bound["token"] - 1
    stages = [1, 1, bound["catalog"], pull_tokens, len(repositories), tops, children,
              bound["blob"]]
    return sum(math.ceil(n / workers) for n in stages if n)


# -- measured runs --------------------------------------------------------------------------------

@dataclass
class Run:
    name: str
    workers: int | None
    seconds: float
    counts: dict[str, int]
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: int | None = None
    client_counts: dict[str, int] | None = None
    cpu_seconds: float = 0.0
    in_flight: float = 0.0
    load: float = 0.0
    server_cpu_seconds: float = 0.0
    proxy_cpu_seconds: float = 0.0
    all_seconds: list[float] = field(default_factory=list)
    all_counts: list[dict] | None = None
    log: list[tuple] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _statuses(entries: list[tuple]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for proxy, method, path, status, *_times in entries:
        kind = classify(proxy, method, path)
        out.setdefault(kind, {})
        out[kind][str(status)] = out[kind].get(str(status), 0) + 1
    return out


def measure(harness: Harness, name: str, workers: int | None, fn) -> Run:
    """Run ``fn`` and collect what the proxies saw meanwhile. ``cpu_seconds``: CPU time of this
    process and of the child processes it waited for (skopeo); ``in_flight``: requests being
    served at the proxies, on average over the wall time."""
    mark = harness.mark()
    server_cpu = harness.cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - cpu + after.ru_utime - children.ru_utime
           + after.ru_stime - children.ru_stime)
    server_cpu = [b - a for a, b in zip(server_cpu, harness.cpu())]
    entries = harness.since(mark)
    rows, client_counts = result if isinstance(result, tuple) else (result, None)
    busy = sum(e[5] - e[4] for e in entries if e[4] is not None)
    return Run(name, workers, seconds, count_kinds(entries), _statuses(entries), rows,
               client_counts, cpu, busy / seconds if seconds else 0.0, os.getloadavg()[0],
               sum(server_cpu), server_cpu[0], [seconds], log=entries)


def _median_run(tries: list[Run]) -> Run:
    """The run of median wall time, with every try's seconds in ``all_seconds``."""
    ordered = sorted(tries, key=lambda r: r.seconds)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.all_seconds = [r.seconds for r in tries]
    if any(r.counts != chosen.counts for r in tries):
        chosen.name += " (request counts differ between tries: see the JSON)"
        chosen.all_counts = [r.counts for r in tries]
    return chosen


def make_client(info: dict, cache_dir: Path, workers: int, freshness: float):
    import registry_insights as ri

    return ri.RegistryClient(info["registry"], info["username"], info["password"],
                             cache=cache_dir, freshness=freshness, max_workers=workers,
                             verify=info["cert"])


def inventory_with(client) -> tuple[int, dict[str, int]]:
    """What a user runs: walk the registry, build the tags frame."""
    from registry_insights.frames.inventory import fetch_inventory

    before = dict(client.request_counts)
    frame = fetch_inventory(client, progress=False).tags()
    after = client.request_counts
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    return len(frame), delta


def copy_cache(source: Path, target: Path) -> None:
    """Copy a cache directory's SQLite stores consistently (the SQLite backup API)."""
    target.mkdir(parents=True, exist_ok=True)
    for db in source.glob("*.sqlite"):
        with sqlite3.connect(db) as src, sqlite3.connect(target / db.name) as dst:
            src.backup(dst)
        os.chmod(target / db.name, 0o600)


def run_skopeo(info: dict, pairs: list[tuple[str, str]]) -> tuple[int, int]:
    """``skopeo inspect`` per tag, sequentially; returns (tags inspected, platforms seen)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_AUTH")}
    creds = f"{info['username']}:{info['password']}"
    done = 0
    for repository, tag in pairs:
        out = subprocess.run(
            [SKOPEO, "inspect", "--tls-verify=false", "--creds", creds,
             f"docker://{info['host']}/{repository}:{tag}"],
            capture_output=True, check=False, env=env, timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"skopeo inspect {repository}:{tag} failed: "
                               f"{out.stderr.decode(errors='replace')[-400:]}")
        json.loads(out.stdout)
        done += 1
    return done, done


def run_dxf(info: dict) -> int:
    """python-dxf, as its README suggests, sequentially: catalog, then per repository
    authenticate for pull and list tags, then per tag the manifest (and the platform manifests
    of an index) and the config blob. Returns the (tag, platform) images read."""
    from dxf import DXF, DXFBase

    user, password, host, cert = (info["username"], info["password"], info["host"],
                                  info["cert"])

    def auth(client, response):
        client.authenticate(user, password, response=response)

    images = 0
    with DXFBase(host, auth=auth, tlsverify=cert) as base:
        repositories = [r for r in base.list_repos() if r.startswith(PREFIX + "/")]
    for repository in repositories:
        with DXF(host, repository, auth=auth, tlsverify=cert) as client:
            client.authenticate(user, password, actions=["pull"])
            for tag in client.list_aliases():
                text, _response = client.get_manifest_and_response(tag)
                manifest = json.loads(text)
                if "manifests" in manifest:
                    platforms = [json.loads(client.get_manifest_and_response(e["digest"])[0])
                                 for e in manifest["manifests"]]
                else:
                    platforms = [manifest]
                for image in platforms:
                    json.loads(b"".join(client.pull_blob(image["config"]["digest"])))
                    images += 1
    return images


def try_order(attempt: int, count: int) -> list[int]:
    """The order the ``count`` variants run in at try ``attempt`` (from 0): a Williams
    design, so that over ``count`` tries (``2 * count`` when ``count`` is odd) each variant
    runs as often at each position, and right after each other variant as often: no variant
    always runs first, or always after the same one (whose leftovers, a process exiting or
    a file being written back, it would inherit)."""
    base, low, high = [0], 1, count - 1
    while len(base) < count:  # 0, 1, n-1, 2, n-2, ...
        if len(base) % 2:
            base.append(low)
            low += 1
        else:
            base.append(high)
            high -= 1
    rows = count if count % 2 == 0 else 2 * count
    row = attempt % rows
    order = [(v + row) % count for v in base]
    return order[::-1] if row >= count else order


def side_by_side(harness: Harness, info: dict, work: Path, compare: list[Path],
                 repeat: int) -> list[dict]:
    """Cold walks at 8 workers, each in a fresh process (``benchmarks/walk_child.py``), the
    variants interleaved try by try so that they share the machine's load: this checkout
    with its cache and with ``cache=None``, the plain ``requests`` reference client, and each
    ``--compare`` checkout with and without cache, in the order :func:`try_order` gives
    each try. Returns one dict per variant (median try by wall time; every try's numbers
    kept, in try order, with the position each ran at)."""
    child = Path(__file__).resolve().parent / "walk_child.py"
    variants = [("registry_insights (this checkout), cache", ROOT, True),
                ("registry_insights (this checkout), cache=None", ROOT, False),
                ("plain requests reference client (8 threads, no cache)", None, False)]
    for other in compare:
        variants += [(f"registry_insights ({other}), cache", other, True),
                     (f"registry_insights ({other}), cache=None", other, False)]
    tries: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    public = {k: info[k] for k in ("registry", "username", "password", "cert")}
    for attempt in range(repeat):
        for position, n in enumerate(try_order(attempt, len(variants))):
            name, checkout, cached = variants[n]
            print(f"side by side {attempt + 1}/{repeat}: {name} ...", file=sys.stderr)
            argv = [sys.executable, str(child), "reference" if checkout is None else "product",
                    json.dumps(public)]
            if cached:
                argv.append(str(work / f"side-{attempt}-{n}"))
            env = dict(os.environ, PYTHONPATH=str(checkout or ROOT))
            mark = harness.mark()
            out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            entries = harness.since(mark)
            if out.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{out.stderr[-2000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["proxy_counts"] = count_kinds(entries)
            result["requests"] = sum(result["proxy_counts"].values())
            result["load"] = os.getloadavg()[0]
            result["position"] = position
            result["gap_ms"], result["served_ms"] = connection_times(entries)
            tries[name].append(result)
    out_rows = []
    for name, _, _ in variants:
        ordered = sorted(tries[name], key=lambda r: r["seconds"])
        chosen = dict(ordered[(len(ordered) - 1) // 2])
        chosen["name"] = name
        chosen["all_seconds"] = [r["seconds"] for r in tries[name]]
        chosen["all_cpu"] = [r["cpu"] for r in tries[name]]
        chosen["all_positions"] = [r["position"] for r in tries[name]]
        chosen["all_gap_ms"] = [r["gap_ms"] for r in tries[name]]
        chosen["all_served_ms"] = [r["served_ms"] for r in tries[name]]
        out_rows.append(chosen)
    return out_rows


def side_by_side_report(rows: list[dict], bound_total: int) -> list[str]:
    if not rows:
        return []
    ref = next(r for r in rows if r["name"].startswith("plain requests"))
    lines = [
        "",
        "## Side by side: cold walks at 8 workers, each in a fresh process, tries interleaved",
        "",
        "`seconds`, `CPU s`: medians over the tries. `x reference`: the median over the "
        "tries of wall seconds / the plain requests client's in the same try (the variants "
        "of a try run one after the other, so they share the machine's load). `CPU ms/req`: "
        "the median CPU time / requests sent. `CPU x no cache`: the median over the tries of "
        "CPU per request with the cache / the same checkout's with `cache=None` in the same "
        "try. `middle half`: the quartiles of those wall ratios (how much they move from try "
        "to try); `tries <= 1`: the tries in which the variant was no slower than the "
        "reference. `gap ms`: the mean time between an answer and the next request on the "
        "same connection (the client's share of each round trip, with the proxy's reading "
        "and writing); `served ms`: from a request's arrival at the proxy to its answer "
        "(the 20 ms, the proxy and the registry); medians over the tries. The variants run "
        "in a different order each try (a Williams design: each as often at each position "
        "and after each other one). The JSON has every try.",
        "",
        "| client | requests | x bound | rows | seconds | x reference | middle half "
        "| tries <= 1 | gap ms | served ms | CPU s | CPU ms/req | CPU x no cache "
        "| peak RSS MiB | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        seconds, cpu = statistics.median(r["all_seconds"]), statistics.median(r["all_cpu"])
        per = cpu / r["requests"] * 1000 if r["requests"] else math.nan
        twin = None
        if r["name"].endswith(", cache"):
            twin = next((t for t in rows if t["name"] == r["name"] + "=None"), None)
        # paired by try: requests are the same for every variant (the protocol bound)
        ratio = statistics.median(a / b for a, b in zip(r["all_cpu"], twin["all_cpu"])) \
            if twin else None
        walls = [a / b for a, b in zip(r["all_seconds"], ref["all_seconds"])]
        x_ref = statistics.median(walls)
        spread = "–"
        if len(walls) > 1 and r is not ref:
            low, _, high = statistics.quantiles(walls, n=4, method="inclusive")
            spread = f"{low:.2f} to {high:.2f}"
        no_slower = "–" if r is ref else f"{sum(w <= 1 for w in walls)} of {len(walls)}"
        lines.append(
            f"| {r['name']} | {r['requests']} | {_fmt(r['requests'] / bound_total)} | "
            f"{r['rows']} | {_fmt(seconds)} | {_fmt(x_ref)} | {spread} | {no_slower} | "
            f"{_fmt(_median(r.get('all_gap_ms')))} | {_fmt(_median(r.get('all_served_ms')))} | "
            f"{_fmt(cpu)} | {_fmt(per)} | {_fmt(ratio) if ratio else '–'} | "
            f"{r['max_rss_kib'] / 1024:.0f} | {r['load']:.2f} |")
    return lines


# -- report ---------------------------------------------------------------------------------------

def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return a / b if b else math.inf


def build_report(args, info: dict, bound: dict[str, int], runs: list[Run], notes: list[str],
                 n_tags: int, n_images: int, repositories: list[str], seeded,
                 freshness: float, started_version: str) -> tuple[str, dict, list[dict]]:
    latency = args.latency_ms / 1000
    bound_total = sum(bound.values())
    by_name = {r.name: r for r in runs}
    version = source_version()
    if version != started_version:
        notes.append(f"registry_insights changed during the run (at the start: {started_version})")
    skopeo = by_name.get("skopeo inspect (per tag)")
    dxf = by_name.get("python-dxf (sequential)")
    checks: list[dict] = []
    lines = [
        f"# Inventory benchmark: {args.repos} repositories x {args.tags} builds, "
        f"{args.latency_ms:g} ms per request",
        "",
        f"- Fleet: {len(repositories)} repositories, {n_tags} tags ({n_images} tag-platform "
        f"images; every {args.index_every}th build a two-platform index), "
        f"{bound['blob']} distinct configs.",
        f"- Latency: {args.latency_ms:g} ms added by each proxy before forwarding (registry "
        "and token server, both behind TLS proxies on loopback).",
        f"- Warm-expired runs: `freshness={freshness:.0f}` s, then slept past it.",
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1 min) "
        f"{min(r.load for r in runs):.2f} to {max(r.load for r in runs):.2f} after the runs"
        + (" (other processes competed for the CPU: times are pessimistic)."
           if max(r.load for r in runs) > 1.5 else "."),
        f"- Cold runs: the median of {args.repeat} (each with its own empty cache); the JSON "
        "has every try's seconds.",
        f"- registry_insights measured: {version}"
        + (f" ({args.label})." if args.label else "."),
        "",
        "Requests are counted at the proxies. `304` counts conditional manifest requests the "
        "registry answered Not Modified. Ratios: requests / lower bound; speed = that peer's "
        "seconds / this row's seconds. `CPU s`: CPU time of the measured client (skopeo: its "
        "processes); `server CPU s`: of the registry, token server and proxies meanwhile. "
        "`in flight`: requests being served at the proxies, averaged over the run's wall time "
        "(at most `workers` for our client).",
        "",
        "| run | workers | " + " | ".join(KINDS) + " | total | per tag | 304 | seconds | "
        "x bound (req) | vs skopeo | vs dxf | CPU s | server CPU s | in flight |",
        "|---|---:|" + "---:|" * len(KINDS) + "---:|" * 10,
    ]
    for run in runs:
        not_modified = run.statuses.get("manifest", {}).get("304", 0)
        lines.append(
            f"| {run.name} | {run.workers or '–'} | "
            + " | ".join(str(run.counts[k]) for k in KINDS)
            + f" | {run.total} | {_fmt(run.total / n_tags)} | {not_modified} | "
            f"{_fmt(run.seconds)} | {_fmt(run.total / bound_total)} | "
            f"{_fmt(_ratio(skopeo.seconds if skopeo else None, run.seconds), 1)} | "
            f"{_fmt(_ratio(dxf.seconds if dxf else None, run.seconds), 1)} | "
            f"{_fmt(run.cpu_seconds)} | {_fmt(run.server_cpu_seconds)} | "
            f"{_fmt(run.in_flight, 1)} |"
        )
    top = max(args.workers)
    lines.append(
        f"| protocol lower bound (time: requests / {top} x latency) | {top} | "
        + " | ".join(str(bound[k]) for k in KINDS)
        + f" | {bound_total} | {_fmt(bound_total / n_tags)} | – | "
        f"{_fmt(bound_total / top * latency)} | 1.00 | – | – | – | – | {top} |"
    )
    lines += ["", "## Time against (requests / workers) x latency", "",
              "| run | workers | requests | bound s | staged bound s | served bound s | seconds "
              "| x bound | x served bound |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        if run.workers is None or not run.total or "no added latency" in run.name:
            continue
        ideal = run.total / run.workers * latency
        staged = (staged_rounds(bound, seeded, repositories, run.workers) * latency
                  if run.name.startswith("cold") else None)
        served = sum(e[5] - e[4] for e in run.log if e[4] is not None) / run.workers
        lines.append(f"| {run.name} | {run.workers} | {run.total} | {_fmt(ideal)} | "
                     f"{_fmt(staged)} | {_fmt(served)} | {_fmt(run.seconds)} | "
                     f"{_fmt(run.seconds / ideal)} | {_fmt(run.seconds / served)} |")
    lines += ["", "`staged bound`: the same requests when each stage (ping, tokens, catalog, "
              "tag lists, tag manifests, platform manifests, configs) waits for the previous "
              "one to finish, ceil(n / workers) round trips per stage. `served bound`: the "
              "time the requests really spent at the proxies (the latency plus the registry's, "
              "token server's and proxies' own time), summed, / workers: what is left above it "
              "is the client's own time (CPU, GIL, fewer than `workers` requests in flight).",
              ""]

    # targets
    tops = len({(i.repository, i.tag) for i in seeded})
    catalog_pages = bound["catalog"]
    for w in args.workers:
        cold = by_name.get(f"cold, {w} workers")
        if cold:
            checks.append({"target": f"cold ({w} workers): requests = lower bound",
                           "met": cold.counts == bound,
                           "detail": _diff(cold.counts, bound)})
        warm = by_name.get(f"warm fresh, {w} workers")
        if warm:
            checks.append({"target": f"warm fresh ({w} workers): 0 requests",
                           "met": warm.total == 0, "detail": f"{warm.total} requests"})
        expired = by_name.get(f"warm expired, same client, {w} workers")
        if expired:
            want = dict.fromkeys(KINDS, 0)
            want.update({"catalog": catalog_pages, "tags": len(repositories),
                         "manifest": tops})
            not_modified = expired.statuses.get("manifest", {}).get("304", 0)
            checks.append({
                "target": f"warm expired, same client ({w} workers): catalog + tag lists + "
                          "one conditional manifest per tag, all 304, no blob",
                "met": expired.counts == want and not_modified == tops,
                "detail": _diff(expired.counts, want) + f"; 304: {not_modified}/{tops}"})
        fresh_client = by_name.get(f"warm expired, new client, {w} workers")
        if fresh_client:
            want = dict.fromkeys(KINDS, 0)
            want.update({"ping": 1, "token": bound["token"], "catalog": catalog_pages,
                         "tags": len(repositories), "manifest": tops})
            not_modified = fresh_client.statuses.get("manifest", {}).get("304", 0)
            checks.append({
                "target": f"warm expired, new client ({w} workers): the same plus the "
                          "unavoidable probe and tokens",
                "met": fresh_client.counts == want and not_modified == tops,
                "detail": _diff(fresh_client.counts, want) + f"; 304: {not_modified}/{tops}"})
    cold_top = by_name.get(f"cold, {top} workers")
    if cold_top:
        if skopeo:
            speed = skopeo.seconds / cold_top.seconds
            checks.append({"target": f"cold, {top} workers: >= 15x faster than skopeo",
                           "met": speed >= 15, "detail": f"{speed:.1f}x"})
        if dxf:
            speed = dxf.seconds / cold_top.seconds
            checks.append({"target": f"cold, {top} workers: >= 6x faster than python-dxf",
                           "met": speed >= 6, "detail": f"{speed:.1f}x"})
        ideal = cold_top.total / top * latency
        checks.append({"target": f"cold, {top} workers: within 1.5x of (requests / workers) x "
                                 "latency",
                       "met": cold_top.seconds <= 1.5 * ideal,
                       "detail": f"{cold_top.seconds:.2f} s vs {ideal:.2f} s: "
                                 f"{cold_top.seconds / ideal:.2f}x"})
    lines += ["## Targets (issue 6)", "", "| target | met | detail |", "|---|---|---|"]
    for check in checks:
        lines.append(f"| {check['target']} | {'yes' if check['met'] else '**no**'} | "
                     f"{check['detail']} |")
    mismatches = [r for r in runs if r.client_counts is not None
                  and {k: v for k, v in r.counts.items() if v} != r.client_counts]
    if mismatches:
        notes.append("client.request_counts differs from the proxies' counts in: " + "; ".join(
            f"{r.name} (client {r.client_counts})" for r in mismatches))
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    report = "\n".join(lines) + "\n"
    raw = {
        "arguments": {k: v for k, v in vars(args).items()},
        "fleet": {"repositories": repositories, "tags": n_tags, "images": n_images},
        "freshness": freshness,
        "registry_insights": version,
        "lower_bound": bound,
        "runs": [{k: v for k, v in asdict(r).items() if k != "log"} | {"total": r.total}
                 for r in runs],
        "targets": checks,
        "notes": notes,
    }
    return report, raw, checks


def _diff(got: dict[str, int], want: dict[str, int]) -> str:
    extra = {k: got.get(k, 0) - want.get(k, 0) for k in KINDS
             if got.get(k, 0) != want.get(k, 0)}
    if not extra:
        return f"{sum(got.values())} requests, as expected"
    return f"{sum(got.values())} vs {sum(want.values())}; off by " + ", ".join(
        f"{k} {v:+d}" for k, v in extra.items())


# -- main -----------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=5)
    parser.add_argument("--tags", type=int, default=40, help="builds per repository "
                        "(each repository also gets a 'latest' tag)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 8], help="comma separated max_workers values")
    parser.add_argument("--index-every", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--freshness", type=float, default=None,
                        help="seconds (default: long enough for the slowest cold run)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="cold runs per workers value (the median is reported)")
    parser.add_argument("--skip-floor", action="store_true",
                        help="skip the cold run without added latency")
    parser.add_argument("--skip-skopeo", action="store_true")
    parser.add_argument("--skip-dxf", action="store_true")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another checkout (e.g. an unchanged main) whose cold walk runs "
                        "side by side with this one's (repeatable)")
    parser.add_argument("--skip-side-by-side", action="store_true",
                        help="skip the side-by-side cold walks (product with and without "
                        "cache, the plain requests reference client, --compare checkouts)")
    parser.add_argument("--only-side-by-side", action="store_true",
                        help="run only the side-by-side cold walks")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="",
                        help="recorded in the report, e.g. the commit of an exported tree")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    latency = args.latency_ms / 1000
    import registry_insights.frames.inventory  # noqa: F401  (import pandas & co. outside the timings)

    started_version = source_version()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"inventory-{args.repos}x{args.tags}-{args.latency_ms:g}ms"
    notes: list[str] = []
    runs: list[Run] = []
    work = Path(tempfile.mkdtemp(prefix="ri-bench-"))
    harness = None
    clients = {}
    try:
        print(f"starting registry, token server and proxies in {work} ...", file=sys.stderr)
        harness = Harness(latency, work)
        info = harness.info
        print(f"seeding {args.repos} x {args.tags} ...", file=sys.stderr)
        seeded = seed(info, args.repos, args.tags, args.index_every, args.seed)
        repositories = sorted({i.repository for i in seeded})
        pairs = sorted({(i.repository, i.tag) for i in seeded})
        bound = lower_bound(seeded, repositories)
        bound_total = sum(bound.values())
        freshness = args.freshness or math.ceil(
            2 * bound_total * (latency + 0.012) / min(args.workers) + 10)
        side = [] if args.skip_side_by_side else side_by_side(
            harness, info, work, args.compare, args.repeat)
        if args.only_side_by_side:
            report = "\n".join(
                [f"# Side by side: {args.repos} repositories x {args.tags} builds, "
                 f"{args.latency_ms:g} ms per request",
                 "", f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
                 f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
                 f"- Protocol lower bound: {bound_total} requests.",
                 f"- registry_insights (this checkout): {started_version}"]
                + side_by_side_report(side, bound_total)) + "\n"
            print(report)
            (args.out / f"{stem}-side-by-side.md").write_text(report, encoding="utf-8")
            (args.out / f"{stem}-side-by-side.json").write_text(
                json.dumps(side, indent=2) + "\n", encoding="utf-8")
            return 0

        # cold and warm-fresh, each workers value with its own cache directory
        cold_end = {}
        for w in args.workers:
            print(f"registry_insights, {w} workers: cold x {args.repeat} ...", file=sys.stderr)
            tries = []
            for attempt in range(args.repeat):  # the last one's cache serves the warm runs
                cache = work / f"cache-{w}" if attempt == args.repeat - 1 else \
                    work / f"cache-{w}-try{attempt}"
                holder = {}

                def cold(w=w, cache=cache, holder=holder):
                    holder["client"] = make_client(info, cache, w, freshness)
                    return inventory_with(holder["client"])

                tries.append(measure(harness, f"cold, {w} workers", w, cold))
                if attempt < args.repeat - 1:
                    holder["client"].close()
            runs.append(_median_run(tries))
            clients[w] = holder["client"]
            cold_end[w] = time.monotonic()

            def warm(w=w, cache=cache):
                with make_client(info, cache, w, freshness) as client:
                    return inventory_with(client)

            runs.append(measure(harness, f"warm fresh, {w} workers", w, warm))
            if time.monotonic() - cold_end[w] + runs[-2].seconds > freshness:
                notes.append(f"{w} workers: the cold and warm runs took longer than "
                             f"freshness={freshness} s; pass a larger --freshness")

        if args.latency_ms and not args.skip_floor:
            # what the same walk costs with no added latency: the client's and servers' overhead
            top = max(args.workers)
            harness.set_latency(0)
            print(f"registry_insights, {top} workers: cold, no added latency ...",
                  file=sys.stderr)
            tries = []
            for attempt in range(args.repeat):
                def floor(attempt=attempt):
                    with make_client(info, work / f"cache-floor-{attempt}", top,
                                     freshness) as client:
                        return inventory_with(client)

                tries.append(measure(harness, f"cold, {top} workers, no added latency", top,
                                     floor))
            runs.append(_median_run(tries))
            harness.set_latency(latency)

        # the peers run while the caches age
        if args.skip_skopeo:
            notes.append("skopeo skipped (--skip-skopeo)")
        elif not Path(SKOPEO).exists() and not shutil.which("skopeo"):
            notes.append("skopeo is not installed (apt-get install skopeo): skipped")
        else:
            print(f"skopeo inspect x {len(pairs)} ...", file=sys.stderr)
            run = measure(harness, "skopeo inspect (per tag)", None,
                          lambda: run_skopeo(info, pairs)[0])
            notes.append("skopeo: one process per tag; of an index, `inspect` reads only the "
                         "platform of this machine (linux/amd64), and each call also lists the "
                         "repository's tags")
            runs.append(run)
        if args.skip_dxf:
            notes.append("python-dxf skipped (--skip-dxf)")
        else:
            try:
                import dxf  # noqa: F401
            except ImportError:
                notes.append("python-dxf is not installed (pip install python-dxf): skipped")
            else:
                print("python-dxf ...", file=sys.stderr)
                runs.append(measure(harness, "python-dxf (sequential)", None,
                                    lambda: run_dxf(info)))

        # warm and expired: the same client (a notebook re-run) and a new one (a script re-run)
        wait = max(cold_end.values()) + freshness + 1 - time.monotonic()
        if wait > 0:
            print(f"sleeping {wait:.0f} s past freshness ...", file=sys.stderr)
            time.sleep(wait)
        for w in args.workers:
            copy_cache(work / f"cache-{w}", work / f"cache-{w}-copy")
        for w in args.workers:
            print(f"registry_insights, {w} workers: expired ...", file=sys.stderr)
            client = clients.pop(w)
            runs.append(measure(harness, f"warm expired, same client, {w} workers", w,
                                lambda client=client: inventory_with(client)))
            client.close()

            def expired_new(w=w):
                with make_client(info, work / f"cache-{w}-copy", w, freshness) as client:
                    return inventory_with(client)

            runs.append(measure(harness, f"warm expired, new client, {w} workers", w,
                                expired_new))
        n_images = len(seeded)
        for run in runs:
            if run.rows is not None and run.rows != n_images and run.workers is not None:
                notes.append(f"{run.name}: {run.rows} rows, expected {n_images}")
        report, raw, _checks = build_report(args, info, bound, runs, notes, len(pairs),
                                            n_images, repositories, seeded, freshness,
                                            started_version)
        report = report.rstrip("\n") + "\n" + "\n".join(
            side_by_side_report(side, bound_total)) + "\n"
        raw["side_by_side"] = side
    finally:
        for client in clients.values():
            client.close()
        if harness is not None:
            harness.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(report)
    (args.out / f"{stem}.md").write_text(report, encoding="utf-8")
    (args.out / f"{stem}.json").write_text(json.dumps(raw, indent=2, default=str) + "\n",
                                           encoding="utf-8")
    with open(args.out / f"{stem}-requests.log", "w", encoding="utf-8") as log:
        for run in runs:
            log.write(f"## {run.name} ({run.total} requests, {run.seconds:.2f} s)\n")
            start = run.log[0][4] if run.log else 0
            for proxy, method, path, status, arrived, answered in run.log:
                log.write(f"{(arrived - start) * 1000:9.1f} {(answered - arrived) * 1000:6.1f} "
                          f"{proxy:8} {method:4} {status} {path}\n")
    print(f"written: {args.out / stem}.md, .json, -requests.log", file=sys.stderr)
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
