"""One cold walk in a process of its own, for side-by-side comparisons in one benchmark run.

``python benchmarks/walk_child.py MODE INFO_JSON [CACHE_DIR]`` prints one JSON line:
``seconds`` (wall time of the walk), ``cpu`` (this process's CPU seconds during it), ``rows``,
``counts`` (requests by kind, as the client counted them; the reference client counts its own),
``max_rss_kib`` and ``started`` (``time.monotonic()`` when the walk began, to place the
proxies' request log on the walk's timeline).

MODE:

- ``product``: ``fetch_inventory(client).tags()`` with ``RegistryClient(max_workers=8)``, the
  HTTP cache in ``CACHE_DIR`` (an empty directory: a cold walk) or, without ``CACHE_DIR``,
  ``cache=None``. Which registry_insights is imported is the caller's ``PYTHONPATH``: the
  benchmark runs the checkout under test and, with ``--compare``, an unchanged one.
- ``reference``: the same requests sent by a plain hand-written ``requests`` client, 8 threads,
  no cache, nothing parsed beyond what the next request needs, pipelined like the product
  (a tag's platform manifests and config are asked as soon as its manifest arrives): the
  ceiling of what Python + ``requests`` can do on this machine.

Both modes import what they use and collect the garbage of importing before the timing starts
(``gc.collect()``): the walks are compared, not the imports.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
SCOPES_PER_TOKEN = 20


def _challenge(header: str) -> dict:
    _scheme, _, params = header.partition(" ")
    out = {}
    for part in params.split(","):
        key, _, value = part.strip().partition("=")
        out[key] = value.strip('"')
    return out


def reference_walk(info: dict, workers: int = 8) -> tuple[int, dict]:
    """The plain client: returns (tag-platform images read, requests by kind)."""
    import requests

    base = info["registry"].rstrip("/")
    user, password, verify = info["username"], info["password"], info["cert"]
    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=workers)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def get(kind, url, **kw):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
        response = session.get(url, verify=verify, timeout=60, **kw)
        response.raise_for_status()
        return response

    probe = session.get(base + "/v2/", verify=verify, timeout=60)
    counts["ping"] = 1
    realm = _challenge(probe.headers["WWW-Authenticate"])

    def token(scopes):
        query = urlencode([("service", realm.get("service", ""))]
                          + [("scope", s) for s in scopes])
        return get("token", f"{realm['realm']}?{query}", auth=(user, password)).json()["token"]

    catalog_auth = {"Authorization": "Bearer " + token(["registry:catalog:*"])}
    repositories = get("catalog", base + "/v2/_catalog?n=1000",
                       headers=catalog_auth).json()["repositories"]
    auth = {}
    for i in range(0, len(repositories), SCOPES_PER_TOKEN):
        group = repositories[i:i + SCOPES_PER_TOKEN]
        bearer = "Bearer " + token([f"repository:{r}:pull" for r in group])
        auth.update(dict.fromkeys(group, bearer))

    images = []
    seen: set = set()
    pending = [0]
    done = threading.Event()
    errors: list = []
    pool = ThreadPoolExecutor(workers)

    def submit(fn, *args):
        with lock:
            pending[0] += 1
        pool.submit(run, fn, args)

    def run(fn, args):
        try:
            fn(*args)
        except Exception as exc:  # reported after the walk
            errors.append(exc)
        finally:
            with lock:
                pending[0] -= 1
                if pending[0] == 0:
                    done.set()

    def first(key) -> bool:
        with lock:
            if key in seen:
                return False
            seen.add(key)
            return True

    def config(repository, digest):
        get("blob", f"{base}/v2/{repository}/blobs/{digest}",
            headers={"Authorization": auth[repository]}).json()

    def image(repository, manifest):
        images.append(manifest["config"]["digest"])
        if first(("config", manifest["config"]["digest"])):
            submit(config, repository, manifest["config"]["digest"])

    def child(repository, digest):
        image(repository, get("manifest", f"{base}/v2/{repository}/manifests/{digest}",
                              headers={"Accept": ACCEPT,
                                       "Authorization": auth[repository]}).json())

    def top(repository, tag):
        manifest = get("manifest", f"{base}/v2/{repository}/manifests/{tag}",
                       headers={"Accept": ACCEPT, "Authorization": auth[repository]}).json()
        if "manifests" in manifest:
            for entry in manifest["manifests"]:
                if first(("child", repository, entry["digest"])):
                    submit(child, repository, entry["digest"])
        else:
            image(repository, manifest)

    def tags(repository):
        listed = get("tags", f"{base}/v2/{repository}/tags/list",
                     headers={"Authorization": auth[repository]}).json()["tags"] or []
        for tag in listed:
            submit(top, repository, tag)

    for repository in repositories:
        submit(tags, repository)
    done.wait()
    pool.shutdown()
    session.close()
    if errors:
        raise errors[0]
    return len(images), counts


def product_walk(info: dict, cache) -> tuple[int, dict]:
    import registry_insights as ri
    from registry_insights.frames.inventory import fetch_inventory

    with ri.RegistryClient(info["registry"], info["username"], info["password"], cache=cache,
                           max_workers=8, verify=info["cert"], freshness=3600) as client:
        rows = len(fetch_inventory(client, progress=False).tags())
        return rows, dict(client.request_counts)


def main(argv: list[str]) -> int:
    mode, info = argv[0], json.loads(argv[1])
    if mode == "product":
        import registry_insights.frames.inventory  # noqa: F401  (imports outside the timing)
    import requests  # noqa: F401
    # ... and so is the garbage of importing: pandas and pyarrow leave about 90,000 objects
    # that the interpreter has not yet scanned in a full collection; without this, the first
    # full collection (60 to 80 ms of CPU here) falls inside whichever walk allocates enough
    # to set it off, which is the product's (it keeps what it reads), never the reference's
    gc.collect()
    cpu, started, mono = time.process_time(), time.perf_counter(), time.monotonic()
    if mode == "reference":
        rows, counts = reference_walk(info)
    else:
        rows, counts = product_walk(info, argv[2] if len(argv) > 2 else None)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows, "counts": counts,
                      "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "started": mono}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
