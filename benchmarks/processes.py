"""Benchmark: how the walk's CPU-bound throughput grows with local processes (issue 14, item 4).

Run ``python benchmarks/processes.py`` (``--repos 200 --tags 50 --processes 1,2,3,4
--tries 3``).

The registry is :mod:`registry_stub`: an in-memory Distribution fleet answered inside each
walking process (``requests``' ``HTTPAdapter.send`` replaced), so no socket, no latency and no
registry process competes for the cores: the only cost is the client's own CPU (requests,
the transport, digest verification, the HTTP cache, parsing, the frames).

Each try, in this process (the stub installed here for the catalog and tag lists):

- 1 process: ``fetch_inventory(client)`` on the client's threads (``--workers``, default 8),
  then ``.tags()`` and ``.layers()``;
- N processes: a ``ProcessPoolExecutor(N, mp_context=spawn, initializer=install_stub)``
  started and warmed first (each worker has imported registry_insights and built the fleet),
  then the same with ``fetch_inventory(client, executor=pool, shards=N)``.

Each with ``cache=None``, with a cold HTTP cache (a new temporary directory, shared by the
workers as ``fetch_inventory`` does on one machine) and, to tell what that sharing costs, a
cold cache directory per worker (``--cache none,cold,cold-split``). Tries are interleaved
(try 1 of every variant, then try 2, ...); the medians are reported. Measured: the walk's
wall seconds (catalog to frames, pool already warm), the pool's start and both together (the
time the workers spent building the stub's fleet taken out); the walk's CPU seconds (this
process plus each worker's CPU between warm-up and exit, as the workers report it) and the
whole try's CPU (this process plus ``RUSAGE_CHILDREN``: spawn, imports, fleets included); tags
per second of walk; speed-up against 1 process; requests. Every try is checked: the client's
request counts equal the protocol's minimum (one probe more per shard), the stub served exactly
those requests, every worker served some, and the frames equal a reference walk's.

Results: ``benchmarks/results/processes.md`` and ``.json``, with the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import pandas as pd  # noqa: E402
import registry_stub as stub  # noqa: E402
from bench_common import source_version  # noqa: E402

import registry_insights as ri  # noqa: E402

RESULTS = HERE / "results"


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start_pool(processes: int, fleet_args: tuple, report_dir: Path) -> ProcessPoolExecutor:
    """A spawn pool whose every worker has the stub installed and has run :func:`stub.ready`."""
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=stub.install,
                               initargs=(*fleet_args, str(report_dir)))
    pids: set[int] = set()
    for _round in range(20):
        pids.update(f.result() for f in [pool.submit(stub.ready) for _ in range(processes)])
        if len(pids) == processes:
            return pool
    pool.shutdown()
    raise RuntimeError(f"only {len(pids)} of {processes} workers took a warm-up task")


class CachePerShard:
    """An executor for ``fetch_inventory`` that gives each shard's client a cache directory
    of its own (``<directory>/shard-<i>``) instead of this client's: the variant
    ``cold-split``, to tell what sharing one SQLite file between processes costs."""

    def __init__(self, pool: ProcessPoolExecutor, directory: Path):
        self.pool, self.directory, self.shards = pool, directory, 0

    def submit(self, fn, settings, *args):
        options = {**settings.options, "cache": str(self.directory / f"shard-{self.shards}")}
        self.shards += 1
        return self.pool.submit(fn, dataclasses.replace(settings, options=options), *args)


def run_try(fleet: stub.Fleet, processes: int, mode: str, workers: int,
            reference: tuple[pd.DataFrame, pd.DataFrame], work: Path) -> dict:
    """One measured walk (``mode``: none, cold or cold-split); raises when a check fails."""
    report_dir = Path(tempfile.mkdtemp(prefix="reports-", dir=work))
    cache = None if mode == "none" else Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    stub.reset_served()
    cpu0, children0, started = time.process_time(), _cpu_children(), time.perf_counter()
    pool = _start_pool(processes, fleet.args, report_dir) if processes > 1 else None
    pool_start = time.perf_counter() - started
    try:
        walk_cpu0, walk0 = time.process_time(), time.perf_counter()
        with ri.RegistryClient(stub.STUB_URL, cache=cache, max_workers=workers) as client:
            if pool is None:
                inventory = ri.fetch_inventory(client, progress=False)
            else:
                executor = CachePerShard(pool, cache) if mode == "cold-split" else pool
                inventory = ri.fetch_inventory(client, progress=False, executor=executor,
                                               shards=processes)
            tags, layers = inventory.tags(), inventory.layers()
            counts = Counter(client.request_counts)
        walk_wall, walk_parent_cpu = time.perf_counter() - walk0, time.process_time() - walk_cpu0
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0 + _cpu_children() - children0
    reports = [json.loads(p.read_text()) for p in sorted(report_dir.glob("*.json"))]
    served = stub.served()
    for report in reports:
        served.update(report["served"])
    walk_cpu = walk_parent_cpu + sum(r["exit_cpu"] - r["ready_cpu"] for r in reports)
    _check(fleet, processes, counts, served, reports, inventory, tags, layers, reference)
    fleet_seconds = max((r["fleet_seconds"] for r in reports), default=0.0)
    stores = sorted(cache.rglob("*.sqlite")) if cache is not None else []
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    return {"processes": processes, "cache": mode,
            "walk_seconds": walk_wall, "seconds": wall - fleet_seconds,
            "pool_start": pool_start - fleet_seconds, "fleet_seconds": fleet_seconds,
            "walk_cpu": walk_cpu, "cpu": cpu,
            "tags_per_second": fleet.tag_count / walk_wall,
            "requests": sum(counts.values()), "counts": dict(counts),
            "served_by_worker": [sum(r["served"].values()) for r in reports],
            "worker_walk_cpu": [round(r["exit_cpu"] - r["ready_cpu"], 3) for r in reports],
            "cache_files": [str(p.relative_to(cache)) for p in stores],
            "rows": len(tags), "layer_rows": len(layers), "load": os.getloadavg()[0]}


def _check(fleet, processes, counts, served, reports, inventory, tags, layers,
           reference) -> None:
    """The walk went through the stub in every process, sent the protocol's minimum and
    gave the reference frames."""
    expected = fleet.minimum_requests(processes)
    if dict(counts) != expected:
        raise AssertionError(f"{processes} process(es): requests {dict(counts)}, the "
                             f"protocol's minimum is {expected}")
    by_kind = Counter()
    for key, n in served.items():
        by_kind[key.split(" ", 1)[1]] += n
    if dict(by_kind) != expected:
        raise AssertionError(f"{processes} process(es): the stub served {dict(by_kind)}, "
                             f"the client counted {expected}")
    if processes > 1 and (len(reports) != processes
                          or not all(sum(r["served"].values()) for r in reports)):
        raise AssertionError(f"{processes} processes: only {len(reports)} workers reported, "
                             f"serving {[sum(r['served'].values()) for r in reports]}")
    if len(inventory.errors):
        raise AssertionError(f"unread tags: {inventory.errors.head()}")
    pd.testing.assert_frame_equal(tags, reference[0])
    pd.testing.assert_frame_equal(layers, reference[1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def derive(run: dict, cpus: int) -> dict:
    """What a run's CPU accounting says beyond its wall time: ``serial_cpu`` (this process's
    share of the walk: catalog, tag lists, taking the shards' results in, the frames),
    ``busiest_worker_cpu``, ``cores_used`` (walk CPU / walk wall: what the machine lent the
    walk), and ``idle_estimate``: the walk's wall time on ``cpus`` idle cores, at least the
    serial part plus the busiest worker and at least all the walk's CPU spread over the
    cores (1 process: its CPU; its threads share one GIL)."""
    workers = run["worker_walk_cpu"]
    serial = run["walk_cpu"] - sum(workers)
    busiest = max(workers, default=0.0)
    estimate = run["walk_cpu"] if run["processes"] == 1 else max(
        serial + busiest, run["walk_cpu"] / cpus)
    return {**run, "serial_cpu": serial, "busiest_worker_cpu": busiest,
            "cores_used": run["walk_cpu"] / run["walk_seconds"], "idle_estimate": estimate}


def summarize(results: list[dict], cpus: int) -> list[dict]:
    results = [derive(r, cpus) for r in results]
    rows = []
    for cache in dict.fromkeys(r["cache"] for r in results):
        base = None
        for n in sorted({r["processes"] for r in results if r["cache"] == cache}):
            runs = [r for r in results if r["cache"] == cache and r["processes"] == n]
            row = {"cache": cache, "processes": n, "tries": len(runs),
                   **{k: _median(runs, k) for k in (
                       "walk_seconds", "seconds", "pool_start", "walk_cpu", "cpu",
                       "tags_per_second", "serial_cpu", "busiest_worker_cpu", "cores_used",
                       "idle_estimate")},
                   "requests": runs[0]["requests"],
                   "load": [min(r["load"] for r in runs), max(r["load"] for r in runs)]}
            base = base or row
            row["speedup"] = base["walk_seconds"] / row["walk_seconds"]
            row["speedup_end_to_end"] = base["seconds"] / row["seconds"]
            row["cpu_ratio"] = row["walk_cpu"] / base["walk_cpu"]
            row["estimated_speedup"] = base["idle_estimate"] / row["idle_estimate"]
            rows.append(row)
    return rows


def report(args, fleet: stub.Fleet, rows: list[dict], loads: list[float],
           fleet_seconds: float, cpus: int, source: str, when: str) -> str:
    labels = {"none": "cache=None", "cold": "cold HTTP cache (one temp dir)",
              "cold-split": "cold HTTP cache, a dir per worker"}
    lines = [
        f"# Walk over local processes, in-memory registry stub: {fleet.tag_count:,} tags in "
        f"{len(fleet.repositories)} repositories",
        "",
        f"- Machine: {cpus} cores, Python {platform.python_version()}, "
        f"pandas {pd.__version__}, {when} UTC; "
        f"load average (1 min) {min(loads):.2f} to {max(loads):.2f} during the runs.",
        f"- registry_insights: {source}",
        f"- Fleet (seed {args.seed}): every {args.index_every}th build a two-platform "
        f"index; requests of one walk: {fleet.minimum_requests()} (one probe more per "
        "worker process).",
        f"- Each process: `max_workers={args.workers}` threads. Medians of {args.tries} "
        "interleaved tries. `walk s`: catalog to frames (`fetch_inventory` + `.tags()` + "
        "`.layers()`), the pool already started; `pool start s`: starting the spawn pool "
        "(new interpreters, imports; the time the workers took to build the stub's fleet, "
        f"{fleet_seconds:.1f} s here, taken out); `end-to-end s`: both. `walk CPU s`: this "
        "process plus the workers' CPU after warm-up; `total CPU s`: this process plus "
        "`RUSAGE_CHILDREN` (the fleet builds included). `speed-up`: 1 process's walk "
        "seconds / this row's. `cores used`: walk CPU / walk wall, what the machine lent "
        "the walk.",
        "- From the CPU accounting, independent of the load: `serial CPU s` (this process: "
        "catalog, tag lists, the shards' results taken in, frames), `busiest worker CPU s`, "
        f"and `idle {cpus} cores s`, the walk's wall time estimated for {cpus} idle cores: "
        f"the larger of serial + busiest worker and walk CPU / {cpus} (1 process: its "
        "CPU, its threads share one GIL); `est. speed-up` from it.",
        "- Cache variants: `cache=None`; a cold HTTP cache in one new directory, which the "
        "workers share (what `fetch_inventory` does on one machine: one SQLite file); and, "
        "to tell what that sharing costs, a new directory per worker (a benchmark-only "
        "executor wrapper that changes each shard's `cache=`).",
        "- Checked in every try: requests = the protocol's minimum, all served by the stub "
        "(every worker served some), frames equal to a reference walk's.",
        "",
        "| cache | processes | walk s | tags/s | speed-up | cores used | walk CPU s | walk "
        f"CPU vs 1 | serial CPU s | busiest worker CPU s | idle {cpus} cores s | est. speed-up "
        "| pool start s | end-to-end s | total CPU s | requests | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {labels[r['cache']]} | {r['processes']} | {r['walk_seconds']:.2f} | "
            f"{r['tags_per_second']:,.0f} | {r['speedup']:.2f}x | {r['cores_used']:.2f} | "
            f"{r['walk_cpu']:.2f} | {r['cpu_ratio']:.2f}x | {r['serial_cpu']:.2f} | "
            f"{r['busiest_worker_cpu']:.2f} | {r['idle_estimate']:.2f} | "
            f"{r['estimated_speedup']:.2f}x | {r['pool_start']:.2f} | {r['seconds']:.2f} | "
            f"{r['cpu']:.2f} | {r['requests']:,} | {r['load'][0]:.1f}–{r['load'][1]:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=50, help="tags per repository")
    parser.add_argument("--processes", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 2, 3, 4])
    parser.add_argument("--cache", type=lambda v: v.split(","),
                        default=["none", "cold", "cold-split"],
                        help="variants, comma-separated: none (cache=None), cold (a new cache "
                        "directory, shared by the workers), cold-split (one per worker)")
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8, help="threads per process")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--index-every", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--from-json", type=Path,
                        help="write the report again from a saved processes.json, no run")
    args = parser.parse_args(argv)
    if args.from_json:
        rewrite(args.from_json, args.out)
        return 0
    if 1 not in args.processes:
        parser.error("--processes must include 1 (the speed-up's base)")
    if not args.cache or set(args.cache) - {"none", "cold", "cold-split"}:
        parser.error(f"--cache takes none, cold, cold-split, not {args.cache}")
    fleet = stub.install(args.repos, args.tags, args.seed, args.index_every)
    work = Path(tempfile.mkdtemp(prefix="ri-processes-"))
    results: list[dict] = []
    loads: list[float] = [os.getloadavg()[0]]
    try:
        with ri.RegistryClient(stub.STUB_URL, cache=None, max_workers=args.workers) as client:
            inventory = ri.fetch_inventory(client, progress=False)
            reference = (inventory.tags(), inventory.layers())
        del inventory
        for attempt in range(args.tries):
            for cache in args.cache:
                for n in args.processes:
                    run = run_try(fleet, n, cache, args.workers, reference, work)
                    run["try"] = attempt + 1
                    results.append(run)
                    loads.append(run["load"])
                    print(f"try {attempt + 1}, cache={cache}, {n} process(es): walk "
                          f"{run['walk_seconds']:.2f} s, CPU {run['walk_cpu']:.2f} s, "
                          f"load {run['load']:.1f}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write(args, fleet, results, loads, os.cpu_count() or 1, source_version(),
          dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"))
    return 0


def write(args, fleet: stub.Fleet, results: list[dict], loads: list[float], cpus: int,
          source: str, when: str) -> None:
    """The report (``processes.md``) and every number (``processes.json``) in ``args.out``."""
    rows = summarize(results, cpus)
    fleet_seconds = statistics.median(r["fleet_seconds"] for r in results
                                      if r["processes"] > 1) if max(args.processes) > 1 else 0
    text = report(args, fleet, rows, loads, fleet_seconds, cpus, source, when)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "processes.md").write_text(text, encoding="utf-8")
    (args.out / "processes.json").write_text(json.dumps({
        "repositories": args.repos, "tags_per_repository": args.tags,
        "tags": fleet.tag_count, "seed": args.seed, "index_every": args.index_every,
        "workers": args.workers, "tries": args.tries, "processes": args.processes,
        "cache": args.cache, "cpus": cpus, "source": source, "when": when,
        "minimum_requests": fleet.minimum_requests(), "summary": rows, "runs": results,
        "load": loads}, indent=2) + "\n", encoding="utf-8")


def rewrite(path: Path, out: Path) -> None:
    """The report again from a ``processes.json`` (``--from-json``), e.g. after a change of
    its layout, without measuring again."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    args = argparse.Namespace(
        repos=saved["repositories"], tags=saved.get("tags_per_repository", 50),
        seed=saved["seed"], index_every=saved["index_every"], workers=saved["workers"],
        tries=saved.get("tries", max(r["try"] for r in saved["runs"])),
        processes=saved.get("processes", sorted({r["processes"] for r in saved["runs"]})),
        cache=saved.get("cache", list(dict.fromkeys(r["cache"] for r in saved["runs"]))),
        out=out)
    fleet = stub.Fleet(args.repos, args.tags, args.seed, args.index_every)
    write(args, fleet, saved["runs"], saved["load"], saved["cpus"],
          saved.get("source", "(not recorded)"), saved.get("when", "(not recorded)"))


if __name__ == "__main__":
    sys.exit(main())
