"""An in-memory OCI Distribution registry for benchmarks: no sockets, no latency.

:class:`Fleet` builds a deterministic fleet from a seed: ``repositories`` x ``tags`` tags, the
last tag of each repository ``latest`` (the same digest as the newest build), image manifests
alternately Docker schema 2 and OCI, every ``index_every``-th build a two-platform index (OCI
image index or Docker manifest list, alternately) whose platform manifests have configs of
their own; every image a config blob of its own and three layers (two shared within the
repository). Only manifests and configs are stored: layers are never read by a walk.

:func:`install` replaces ``requests.adapters.HTTPAdapter.send`` in the calling process: a
request to :data:`STUB_URL`'s host is answered from the fleet's bytes the way Distribution 2.8
answers (anonymous ``/v2/`` 200; catalog and tag lists paged with ``Link: <...>;
rel="next"``; manifests with ``Content-Type``, ``Docker-Content-Digest``, ``ETag`` and a 304
to a matching ``If-None-Match``; config blobs; ``NAME_UNKNOWN`` / ``MANIFEST_UNKNOWN`` /
``BLOB_UNKNOWN`` errors), built into a ``requests.Response`` by the adapter's own
``build_response`` from a ``urllib3.HTTPResponse`` over the bytes. Everything above the
adapter (the client's transport, counting adapter, urllib3 ``Retry`` bookkeeping aside, HTTP
cache, digest checks, parsing, frames) runs unchanged. Any other host goes to the real
``send``. Benchmark-only: nothing in ``registry_insights`` knows about it.

Install it in every process that walks: ``install(...)`` in this process and
``ProcessPoolExecutor(..., initializer=install, initargs=(...))`` for worker processes.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import requests.adapters
import urllib3

#: The registry the stub answers for. ``.invalid`` never resolves: a process the stub is not
#: installed in fails at once instead of reaching anything.
STUB_URL = "https://registry.stub.invalid"
STUB_HOST = urlsplit(STUB_URL).netloc

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
JSON = "application/json; charset=utf-8"

_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<what>manifests|blobs|tags)/(?P<ref>[^/]+)$")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Fleet:
    """A registry's content in memory, the same for the same arguments (``seed``).

    Attributes: ``repositories`` (sorted names), ``tags[name]`` (tag -> manifest digest),
    ``manifests[name]`` (digest -> (media type, bytes)), ``blobs[name]`` (digest -> bytes,
    configs only), ``catalog_page`` / ``tags_page`` (the most entries a page holds, as
    Distribution's default of 100 when the client asks no ``n``).
    """

    def __init__(self, repositories: int, tags: int, seed: int = 14, index_every: int = 5,
                 catalog_page: int = 100, tags_page: int = 100):
        if repositories < 1 or tags < 1:
            raise ValueError(f"a fleet needs at least 1 repository and 1 tag, not "
                             f"{repositories} x {tags}")
        self.args = (repositories, tags, seed, index_every, catalog_page, tags_page)
        self.catalog_page, self.tags_page = catalog_page, tags_page
        self.index_every = index_every
        rng = random.Random(seed)
        self.repositories = [f"bench/team-{r % 7}/service-{r:04d}" for r in range(repositories)]
        self.tags: dict[str, dict[str, str]] = {}
        self.manifests: dict[str, dict[str, tuple[str, bytes]]] = {}
        self.blobs: dict[str, dict[str, bytes]] = {}
        for name in self.repositories:
            self._repository(rng, name, tags)
        self.repositories.sort()

    # -- content -----------------------------------------------------------------------------
    def _repository(self, rng: random.Random, name: str, tags: int) -> None:
        self.tags[name], self.manifests[name], self.blobs[name] = {}, {}, {}
        shared = [(_digest(f"{name} base {k}".encode()), rng.randrange(2 << 20, 80 << 20))
                  for k in range(2)]
        builds = max(tags - 1, 1)
        digest = ""
        for t in range(builds):
            created = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
                hours=6 * t, seconds=rng.randrange(3600))
            oci = t % 2 == 0
            if self.index_every and t % self.index_every == self.index_every - 1:
                entries = []
                for arch in ("amd64", "arm64"):
                    child = self._image(rng, name, t, arch, oci, shared, created)
                    media_type, body = self.manifests[name][child]
                    entries.append({"mediaType": media_type, "digest": child,
                                    "size": len(body),
                                    "platform": {"architecture": arch, "os": "linux"}})
                digest = self._store(name, OCI_INDEX if oci else DOCKER_LIST, {
                    "schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST,
                    "manifests": entries})
            else:
                digest = self._image(rng, name, t, "amd64", oci, shared, created)
            self.tags[name][f"1.{t}.{rng.randrange(10)}"] = digest
        if tags > 1:
            self.tags[name]["latest"] = digest

    def _image(self, rng, name, build, arch, oci, shared, created) -> str:
        layers = shared + [(_digest(f"{name} {build} {arch} {k}".encode()),
                            rng.randrange(1 << 10, 30 << 20)) for k in range(1)]
        config = json.dumps({
            "architecture": arch, "os": "linux", "created": created.strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin"],
                       "Cmd": ["/app/run"], "WorkingDir": "/app",
                       "Labels": {"org.opencontainers.image.source":
                                  f"https://git.example.com/{name}",
                                  "org.opencontainers.image.revision":
                                  hashlib.sha1(f"{name}{build}".encode()).hexdigest(),
                                  "org.opencontainers.image.version": f"1.{build}"}},
            "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
            "history": [{"created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "created_by": f"/bin/sh -c step {k}"} for k in range(len(layers))],
        }, separators=(",", ":")).encode()
        config_digest = _digest(config)
        self.blobs[name][config_digest] = config
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        return self._store(name, media_type, {
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "digest": d,
                        "size": s} for d, s in layers]})

    def _store(self, name: str, media_type: str, manifest: dict) -> str:
        body = json.dumps(manifest, indent=3).encode()  # as pushed by docker: pretty-printed
        digest = _digest(body)
        self.manifests[name][digest] = (media_type, body)
        return digest

    @property
    def tag_count(self) -> int:
        return sum(len(t) for t in self.tags.values())

    def minimum_requests(self, shards: int = 1) -> dict[str, int]:
        """The protocol's least requests for a walk of the whole fleet (anonymous): one probe
        (and one more per shard walked elsewhere), the catalog pages (the client asks 1000
        per page; the stub serves at most ``catalog_page``), the tag-list pages, one
        manifest per tag and per distinct platform manifest of a repository, one config per
        distinct config digest."""
        manifests, configs = 0, set()
        for name, tags in self.tags.items():
            seen: set[str] = set()
            for digest in tags.values():
                manifests += 1
                media_type, body = self.manifests[name][digest]
                data = json.loads(body)
                for entry in data.get("manifests", []):
                    if entry["digest"] not in seen:
                        seen.add(entry["digest"])
                        manifests += 1
                        configs.add(json.loads(self.manifests[name][entry["digest"]][1])[
                            "config"]["digest"])
                if "config" in data:
                    configs.add(data["config"]["digest"])
        catalog = -(-len(self.repositories) // min(1000, self.catalog_page))
        tag_pages = sum(max(-(-len(t) // self.tags_page), 1) for t in self.tags.values())
        return {"ping": 1 + (shards if shards > 1 else 0), "catalog": catalog,
                "tags": tag_pages, "manifest": manifests, "blob": len(configs)}

    # -- the API -----------------------------------------------------------------------------
    def answer(self, method: str, url: str, headers) -> tuple[int, dict, bytes]:
        """``(status, headers, body)`` for one request, as Distribution 2.8 would answer."""
        parts = urlsplit(url)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/v2/":
            return 200, {"Content-Type": JSON}, b"{}"
        if path == "/v2/_catalog":
            return self._page(path, query, self.repositories, self.catalog_page,
                              lambda names: {"repositories": names})
        match = _PATH.match(path)
        if not match or match["name"] not in self.tags:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
        name, what, ref = match["name"], match["what"], match["ref"]
        if what == "tags" and ref == "list":
            return self._page(path, query, sorted(self.tags[name]), self.tags_page,
                              lambda tags: {"name": name, "tags": tags})
        if what == "manifests":
            digest = self.tags[name].get(ref, ref)
            if digest not in self.manifests[name]:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            media_type, body = self.manifests[name][digest]
            etag = f'"{digest}"'
            out = {"Content-Type": media_type, "Docker-Content-Digest": digest, "ETag": etag,
                   "Content-Length": str(len(body))}
            if headers.get("If-None-Match") == etag:
                return 304, out, b""
            return 200, out, b"" if method == "HEAD" else body
        if what == "blobs" and ref in self.blobs[name]:
            body = self.blobs[name][ref]
            return 200, {"Content-Type": "application/octet-stream",
                         "Docker-Content-Digest": ref, "ETag": f'"{ref}"',
                         "Cache-Control": "max-age=31536000",
                         "Content-Length": str(len(body))}, b"" if method == "HEAD" else body
        return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")

    @staticmethod
    def _page(path: str, query: dict, items: list[str], most: int, wrap):
        n = min(int(query.get("n", [most])[0] or most), most)
        last = query.get("last", [None])[0]
        start = 0
        if last is not None:
            start = next((i for i, item in enumerate(items) if item > last), len(items))
        page = items[start:start + n]
        headers = {"Content-Type": JSON}
        if start + n < len(items):
            headers["Link"] = f'<{path}?last={quote(page[-1], safe="")}&n={n}>; rel="next"'
        return 200, headers, json.dumps(wrap(page)).encode()


def _error(status: int, code: str, message: str) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": JSON}, json.dumps(
        {"errors": [{"code": code, "message": message, "detail": None}]}).encode()


_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found"}
_installed: dict = {}
_served: Counter = Counter()
_lock = threading.Lock()


def install(repositories: int, tags: int, seed: int = 14, index_every: int = 5,
            catalog_page: int = 100, tags_page: int = 100, report_dir: str | None = None
            ) -> Fleet:
    """Answer requests to :data:`STUB_URL` from a :class:`Fleet` in this process (again: the
    fleet is replaced). With ``report_dir``, the process writes ``<pid>.json`` there at exit:
    the requests the stub served by method and path kind, the CPU seconds spent before
    (``ready_cpu``, see :func:`ready`) and by the end (``exit_cpu``), and the wall seconds
    building the fleet took (``fleet_seconds``: a cost of the stub, not of a walk).
    Usable as a process pool's initializer."""
    started = time.perf_counter()
    fleet = Fleet(repositories, tags, seed, index_every, catalog_page, tags_page)
    _installed["fleet_seconds"] = time.perf_counter() - started
    if "send" not in _installed:
        _installed["send"] = requests.adapters.HTTPAdapter.send
        requests.adapters.HTTPAdapter.send = _send
    _installed["fleet"] = fleet
    _served.clear()
    if report_dir is not None and "report" not in _installed:
        _installed["report"] = Path(report_dir)
        _installed["ready_cpu"] = time.process_time()
        atexit.register(_report)
    return fleet


def uninstall() -> None:
    """Put the real ``HTTPAdapter.send`` back."""
    send = _installed.pop("send", None)
    if send is not None:
        requests.adapters.HTTPAdapter.send = send
    _installed.pop("fleet", None)


def ready(seconds: float = 0.3) -> int:
    """A process pool's warm-up task: import what a walk needs, wait ``seconds`` (so that
    each worker of the pool takes one such task), note the CPU spent so far (the report's
    ``ready_cpu``); returns the process id."""
    import registry_insights.frames.inventory  # noqa: F401
    import registry_insights.registry.walk  # noqa: F401

    time.sleep(seconds)
    _installed["ready_cpu"] = time.process_time()
    return os.getpid()


def reset_served() -> None:
    with _lock:
        _served.clear()


def served() -> Counter:
    """Requests the stub answered in this process, by ``"<METHOD> <kind>"``."""
    with _lock:
        return Counter(_served)


def _kind(path: str) -> str:
    if path == "/v2/":
        return "ping"
    if path == "/v2/_catalog":
        return "catalog"
    match = _PATH.match(path)
    return {"tags": "tags", "manifests": "manifest", "blobs": "blob"}[match["what"]] \
        if match else "other"


def _send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
    fleet = _installed.get("fleet")
    if fleet is None or urlsplit(request.url).netloc != STUB_HOST:
        return _installed["send"](self, request, stream=stream, timeout=timeout,
                                  verify=verify, cert=cert, proxies=proxies)
    status, headers, body = fleet.answer(request.method, request.url, request.headers)
    with _lock:
        _served[f"{request.method} {_kind(urlsplit(request.url).path)}"] += 1
    headers = {"Docker-Distribution-Api-Version": "registry/2.0",
               "Content-Length": str(len(body)), **headers}
    raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=status, reason=_REASONS.get(status),
        preload_content=False, decode_content=False, request_method=request.method,
        request_url=request.url)
    return self.build_response(request, raw)


def _report() -> None:
    path = _installed["report"] / f"{os.getpid()}.json"
    path.write_text(json.dumps({"pid": os.getpid(), "served": dict(served()),
                                "ready_cpu": _installed["ready_cpu"],
                                "fleet_seconds": _installed["fleet_seconds"],
                                "exit_cpu": time.process_time()}), encoding="utf-8")
