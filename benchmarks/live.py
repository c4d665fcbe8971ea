"""Benchmark: a walk of a large live registry: cold, warm and fresh, warm and expired.

Run ``python benchmarks/live.py --tags 20000`` (``--repos 200``).

The registry is Debian's ``docker-registry`` (CNCF Distribution 2.8) on loopback, no added
latency, anonymous. Its storage is written straight in Distribution's filesystem layout
(blobs under ``blobs/sha256/``, the repository's ``_layers``, ``_manifests/revisions`` and
``_manifests/tags`` links), which the registry then serves exactly as if the images had been
pushed: seeding 20,000 tags through the API would take longer than the benchmark. Every tag is
an image (Docker schema 2 or OCI, alternately) with its own config blob and three layers, two
shared by the repository's tags.

Each run is a fresh process (``--child``), timing ``fetch_inventory(client).tags()`` with
``max_workers=8``:

- cold: an empty cache directory;
- warm fresh: a new client on that cache right after (no request expected);
- with ``--processes``: cold walks without cache spread over N local processes
  (``fetch_inventory(client, max_processes=N)``; CPU includes the worker processes);
- warm expired: a new client with ``freshness=2``, 3 s after the warm run:
  the catalog, the tag lists and one conditional manifest request per tag, answered 304
  (no config is asked again: configs are content addressed).

Reported per run: wall and CPU seconds, CPU per tag, requests by kind (the client's counts),
the process's peak RSS, the cache directory's size, and the machine's load average. With
``--warm-repeat N``, N more warm and fresh walks per checkout follow, the checkouts of a try
walking at the same time (:func:`warm_tries`): their median CPU per tag, its quartiles, and the
paired ratio to this checkout. Results go to ``benchmarks/results/live-<tags>.md`` and
``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a child imports the registry_insights its PYTHONPATH names (this checkout or --compare's)
if "--child" not in sys.argv and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_common import source_version  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Storage:
    """Writes blobs and links in Distribution's filesystem layout."""

    def __init__(self, root: Path):
        self.v2 = root / "docker" / "registry" / "v2"

    def blob(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        path = self.v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return "sha256:" + hexdigest

    def link(self, repository: str, *parts: str, digest: str) -> None:
        path = self.v2 / "repositories" / repository / Path(*parts) / "link"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest)

    def layer_link(self, repository: str, digest: str) -> None:
        self.link(repository, "_layers", "sha256", digest.split(":", 1)[1], digest=digest)

    def image(self, repository: str, tag: str, layers: list[tuple[str, int]], oci: bool,
              created: str) -> None:
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": created,
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/app/run"],
                       "Labels": {"org.opencontainers.image.source":
                                  f"https://git.example.com/{repository}",
                                  "org.opencontainers.image.version": tag}},
            "rootfs": {"type": "layers", "diff_ids": [d for d, _s in layers]},
            "history": [{"created": created, "created_by": f"step {i}"}
                        for i in range(len(layers))],
        }, separators=(",", ":")).encode()
        config_digest = self.blob(config)
        self.layer_link(repository, config_digest)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
                       "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "digest": d,
                        "size": s} for d, s in layers],
        }, indent=3).encode()
        digest = self.blob(manifest)
        hexdigest = digest.split(":", 1)[1]
        self.link(repository, "_manifests", "revisions", "sha256", hexdigest, digest=digest)
        self.link(repository, "_manifests", "tags", tag, "current", digest=digest)
        self.link(repository, "_manifests", "tags", tag, "index", "sha256", hexdigest,
                  digest=digest)


def seed(root: Path, tags: int, repositories: int) -> list[tuple[str, str]]:
    storage = Storage(root)
    pairs = []
    for r in range(repositories):
        repository = f"live/service-{r:04d}"
        shared = []
        for k in range(2):
            data = f"{repository} shared layer {k}".encode() * 64
            digest = storage.blob(data)
            storage.layer_link(repository, digest)
            shared.append((digest, len(data)))
        n = tags // repositories + (1 if r < tags % repositories else 0)
        for t in range(n):
            data = f"{repository} build {t}".encode() * 16
            digest = storage.blob(data)
            storage.layer_link(repository, digest)
            created = (dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
                       + dt.timedelta(hours=t, seconds=r)).strftime("%Y-%m-%dT%H:%M:%SZ")
            storage.image(repository, f"1.{t}.0", shared + [(digest, len(data))], t % 2 == 0,
                          created)
            pairs.append((repository, f"1.{t}.0"))
    return pairs


def child(url: str, cache: str, freshness: float, processes: int = 1) -> dict:
    import registry_insights as ri
    from registry_insights.frames.inventory import fetch_inventory

    print(f"measuring {Path(ri.__file__).parent}", file=sys.stderr)
    cpu, started = time.process_time(), time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ri.RegistryClient(url, cache=None if cache == "-" else cache, freshness=freshness,
                           max_workers=8) as client:
        extra = {"max_processes": processes} if processes > 1 else {}
        rows = len(fetch_inventory(client, progress=False, **extra).tags())
        counts = dict(client.request_counts)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + (after.ru_utime - before.ru_utime
                                       + after.ru_stime - before.ru_stime)
    return {"seconds": time.perf_counter() - started, "cpu": cpu,
            "rows": rows, "counts": counts,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def start_child(url: str, cache: Path | str, freshness: float, checkout: Path,
                processes: int = 1):
    """One measured walk (``--child``) begun in a fresh process importing ``checkout``'s
    package: the process, for :func:`finish_child`."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return subprocess.Popen([sys.executable, __file__, "--child", url, str(cache),
                             str(freshness), str(processes)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish_child(process, checkout: Path) -> dict:
    """What the child measured; raises when it failed or imported another package."""
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(err[-3000:])
    measured = next((line.removeprefix("measuring ") for line in err.splitlines()
                     if line.startswith("measuring ")), "?")
    if Path(measured).resolve() != (checkout / "registry_insights").resolve():
        raise RuntimeError(f"the child measured {measured}, not {checkout}")
    return json.loads(out.strip().splitlines()[-1])


def run_child(url: str, cache: Path | str, freshness: float, checkout: Path,
              processes: int = 1) -> dict:
    """One measured walk, with the cache directory's size and the load average after it."""
    result = finish_child(start_child(url, cache, freshness, checkout, processes), checkout)
    result["cache_mib"] = sum(p.stat().st_size for p in Path(cache).glob("*.sqlite*")) / 2**20
    result["load"] = os.getloadavg()[0]
    return result


def warm_tries(url: str, caches: dict[str, Path], checkouts: dict[str, Path],
               repeat: int) -> list[dict[str, dict]]:
    """``repeat`` more warm and fresh walks of each checkout, on its own cache. When there
    are no more checkouts than cores, the checkouts of a try walk at the same time, one
    process each (a warm and fresh walk runs on one thread and asks the registry nothing),
    so that both see the same machine: on a virtual machine whose speed drifts by a
    quarter within minutes, the CPU ratio of two walks side by side moves far less than
    that of two walks one after the other. Otherwise they run one after the other, the
    first of each try taking turns."""
    labels = list(checkouts)
    together = len(labels) <= (os.cpu_count() or 1)
    tries = []
    for attempt in range(repeat):
        order = labels[attempt % len(labels):] + labels[:attempt % len(labels)]
        if together:
            running = {label: start_child(url, caches[label], 3600.0, checkouts[label])
                       for label in order}
            try:
                tries.append({label: finish_child(p, checkouts[label])
                              for label, p in running.items()})
            finally:  # one failed: the others are not left running
                for p in running.values():
                    if p.poll() is None:
                        p.kill()
                        p.wait()
        else:
            tries.append({label: finish_child(start_child(url, caches[label], 3600.0,
                                                          checkouts[label]), checkouts[label])
                          for label in order})
        asked = {label: run["counts"] for label, run in tries[-1].items()
                 if sum(run["counts"].values())}
        if asked:  # not warm and fresh: the figures would include revalidations
            raise RuntimeError(f"warm try {attempt + 1} sent requests: {asked}")
        print(f"warm try {attempt + 1}/{repeat}: " + ", ".join(
            f"{label} {run['cpu']:.2f} s" for label, run in tries[-1].items()), file=sys.stderr)
    return tries


def summarise_warm(tries: list[dict[str, dict]], tags: int) -> list[dict]:
    """Per checkout (in the first try's order): the median CPU per tag of its warm and fresh
    tries and their quartiles (ms), and the median over the tries of its CPU / the first
    checkout's in the same try, with how many tries it was no slower."""
    import statistics

    def quartiles(values):
        if len(values) < 2:
            return values[0], values[0]
        q = statistics.quantiles(values, n=4, method="inclusive")
        return q[0], q[2]

    labels = list(tries[0])
    first = labels[0]
    rows = []
    for label in labels:
        per_tag = [t[label]["cpu"] / tags * 1000 for t in tries]
        ratios = [t[label]["cpu"] / t[first]["cpu"] for t in tries]
        low, high = quartiles(per_tag)
        rows.append({"checkout": label, "tries": len(tries),
                     "cpu_ms_per_tag": statistics.median(per_tag),
                     "quartiles": (low, high),
                     "ratio": statistics.median(ratios),
                     "no_slower": sum(r <= 1 for r in ratios)})
    return rows


def _at_least_zero(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=20_000)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another checkout measured the same way in the same run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--processes", type=lambda v: [int(x) for x in v.split(",")],
                        default=[], help="also cold walks without cache with "
                        "max_processes=N for each N (e.g. 1,2,4): throughput by processes")
    parser.add_argument("--warm-repeat", type=_at_least_zero, default=0, metavar="N",
                        help="then N more warm and fresh walks per checkout, the checkouts "
                        "of a try side by side (the median and the paired CPU ratio)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], float(args.child[2]),
                               int(args.child[3]) if len(args.child) > 3 else 1)))
        return 0
    from registry_insights.testing.server import RegistryServer

    work = Path(tempfile.mkdtemp(prefix="ri-live-"))
    started = time.perf_counter()
    pairs = seed(work / "storage", args.tags, args.repos)
    seed_seconds = time.perf_counter() - started
    print(f"seeded {len(pairs):,} tags in {seed_seconds:.0f} s", file=sys.stderr)
    results: list[dict] = []
    caches: dict[str, Path] = {}
    checkouts: dict[str, Path] = {}
    warm: list[dict] = []
    with RegistryServer(work / "storage") as server:
        for checkout in [ROOT, *args.compare]:
            cache = work / f"cache-{len(results)}"
            label = "this checkout" if checkout == ROOT else str(checkout)
            caches[label], checkouts[label] = cache, checkout
            for name, freshness in (("cold", 3600.0), ("warm fresh", 3600.0)):
                print(f"{label}: {name} ...", file=sys.stderr)
                run = run_child(server.url, cache, freshness, checkout)
                results.append({"checkout": label, "run": name, **run})
            print(f"{label}: warm expired ...", file=sys.stderr)
            time.sleep(3)  # every stored answer is now older than freshness=2
            run = run_child(server.url, cache, 2.0, checkout)
            results.append({"checkout": label, "run": "warm expired", **run})
        for n in args.processes:
            print(f"cold, no cache, max_processes={n} ...", file=sys.stderr)
            run = run_child(server.url, "-", 60.0, ROOT, n)
            results.append({"checkout": "this checkout", "run":
                            f"cold, cache=None, max_processes={n}", **run})
        if args.warm_repeat > 0:
            # every answer was renewed by the expired run: fresh again for an hour
            tries = warm_tries(server.url, caches, checkouts, args.warm_repeat)
            warm = summarise_warm(tries, len(pairs))
    lines = [
        f"# Live walk: {len(pairs):,} tags in {args.repos} repositories, loopback, no added "
        "latency",
        "",
        f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Other processes shared the "
        "machine: the load average (1 min) is given per run.",
        f"- registry_insights (this checkout): {source_version()}",
        "- Each run a fresh process, `max_workers=8`, `fetch_inventory(client).tags()`; "
        "requests as the client counted them; `304`: manifests revalidated.",
        "",
        "| checkout | run | seconds | CPU s | CPU ms per tag | requests | by kind | rows | "
        "peak RSS MiB | cache MiB | load |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        total = sum(v for k, v in r["counts"].items() if k != "retry")
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))
        lines.append(
            f"| {r['checkout']} | {r['run']} | {r['seconds']:.2f} | {r['cpu']:.2f} | "
            f"{r['cpu'] / len(pairs) * 1000:.3f} | {total} | {kinds or '–'} | {r['rows']} | "
            f"{r['max_rss_mib']:.0f} | {r['cache_mib']:.1f} | {r['load']:.2f} |")
    if warm:
        together = len(warm) <= (os.cpu_count() or 1)
        lines += [
            "",
            f"## Warm and fresh, {warm[0]['tries']} more tries"
            + (", the checkouts of a try side by side" if together and len(warm) > 1 else ""),
            "",
            "`x this checkout`: the median over the tries of CPU / this checkout's CPU in the "
            "same try" + (" (run at the same time, one process each: they share the machine's "
                          "speed of the moment)" if together and len(warm) > 1 else "") + ".",
            "",
            "| checkout | tries | CPU ms per tag (median) | middle half | x this checkout "
            "| tries no slower |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for w in warm:
            lines.append(f"| {w['checkout']} | {w['tries']} | {w['cpu_ms_per_tag']:.3f} | "
                         f"{w['quartiles'][0]:.3f} to {w['quartiles'][1]:.3f} | "
                         f"{w['ratio']:.3f} | {w['no_slower']} of {w['tries']} |")
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"live-{len(pairs)}.md").write_text(report, encoding="utf-8")
    (args.out / f"live-{len(pairs)}.json").write_text(
        json.dumps({"tags": len(pairs), "repositories": args.repos, "results": results,
                    "warm_fresh_tries": warm}, indent=2) + "\n", encoding="utf-8")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
