"""Benchmark: writing and reading a review-history snapshot of a large inventory, no network.

Run ``python benchmarks/history.py`` (10 000 and 100 000 tags across 200 and 2 000
repositories: the synthetic fleet of ``scale.py``, one config dict per config digest).

For each size, on one core (CPU affinity), in a fresh temporary store:

- ``frames``: ``Inventory.tags(attestations=True)`` and ``.layers(attestations=True)``, what any
  report computes anyway (the reference the other times are compared with);
- ``write``: :func:`registry_insights.snapshot` end to end (frames, totals through
  ``storage_summary``, Parquet files, JSON manifest, fsync, atomic rename), and its
  ``write_snapshot`` part alone (files only, frames given);
- ``history``: :func:`registry_insights.history` over the store (manifests only);
- ``read``: :func:`registry_insights.load_snapshot` (Parquet files back to frames, configs
  parsed once per digest);
- ``diff``: :func:`registry_insights.diff` of the written and the loaded snapshot (nothing
  changed: the cost of comparing every tag and blob);
- the size of each file on disk.

Results go to ``benchmarks/results/history.md`` and ``history.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_common import source_version  # noqa: E402
from scale import SyntheticFleet  # noqa: E402

import registry_insights as ri  # noqa: E402
from registry_insights.frames.history import write_snapshot  # noqa: E402
from registry_insights.report.history import totals_of  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


CPU: dict[str, float] = {}


def _timed(function, *args, **kwargs):
    """(value, wall seconds); the CPU seconds of the call go to ``CPU[function name]``."""
    started, cpu = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    CPU[getattr(function, "__name__", "call")] = time.process_time() - cpu
    return value, time.perf_counter() - started


def run_one(tags: int, repositories: int, seed: int) -> dict:
    inv = SyntheticFleet(tags, repositories, seed).inventory()
    with tempfile.TemporaryDirectory(prefix="ri-history-bench-") as directory:
        store = Path(directory) / "store"
        (frames, seconds_frames) = _timed(
            lambda: (inv.tags(attestations=True), inv.layers(attestations=True)))
        tag_frame, layer_frame = frames
        written, seconds_write = _timed(ri.snapshot, inv, store,
                                        taken_at="2026-11-01T00:00:00Z")
        totals, seconds_totals = _timed(totals_of, tag_frame, layer_frame, inv.repositories)
        _, seconds_files = _timed(write_snapshot, Path(directory) / "files-only",
                                  registry=inv.registry,
                                  tags=tag_frame, layers=layer_frame,
                                  repositories=inv.repositories, totals=totals,
                                  tool_version="bench", taken_at="2026-11-02T00:00:00Z")
        frame, seconds_history = _timed(ri.history, store)
        loaded, seconds_read = _timed(ri.load_snapshot, store, written.snapshot_id)
        changes, seconds_diff = _timed(ri.diff, written, loaded)
        assert changes.tags.empty and changes.blobs.empty and len(frame) == 1
        assert loaded.tags.drop(columns="config").equals(written.tags.drop(columns="config"))
        files = {p.name: p.stat().st_size for p in sorted(written.path.iterdir())}
    cpu = {"frames": CPU["<lambda>"], "snapshot": CPU["snapshot"], "totals": CPU["totals_of"],
           "write_files": CPU["write_snapshot"], "history": CPU["history"],
           "load_snapshot": CPU["load_snapshot"], "diff": CPU["diff"]}
    return {
        "tags": len(inv.details), "repositories": len(inv.repositories),
        "tag_rows": len(tag_frame), "layer_rows": len(layer_frame),
        "configs": int(tag_frame["config_digest"].nunique()),
        "stored_bytes": written.totals["stored_bytes"],
        "seconds": {"frames": seconds_frames, "snapshot": seconds_write,
                    "totals": seconds_totals, "write_files": seconds_files,
                    "history": seconds_history, "load_snapshot": seconds_read,
                    "diff": seconds_diff},
        "cpu_seconds": cpu,
        "file_bytes": files, "total_file_bytes": sum(files.values()),
    }


def report(results: list[dict], args) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    import pandas as pd
    import pyarrow

    lines = [
        "# History benchmark: snapshot write and read",
        "",
        f"- Synthetic fleet of `scale.py` (seed {args.seed}), one core (CPU affinity), "
        f"Python {platform.python_version()}, pandas {pd.__version__}, pyarrow "
        f"{pyarrow.__version__}, {when}; load average {os.getloadavg()[0]:.2f} at the end.",
        f"- registry_insights: {source_version()}.",
        "- `snapshot` = `ri.snapshot(inventory, store)` end to end (frames, totals, Parquet, "
        "manifest, fsync, rename); `write files` = `write_snapshot` with the frames given; "
        "`frames` = `Inventory.tags()` + `.layers()` (what a report computes anyway); "
        "`load` = `ri.load_snapshot`; `diff` = `ri.diff` of the snapshot and its read-back.",
        "- Wall seconds, then CPU seconds of this process in parentheses (on a busy machine the "
        "CPU time is the steadier figure; fsync waits show as wall time only).",
        "",
        "| tags | tag rows | layer rows | frames s | snapshot s | totals s | write files s "
        "| history s | load s | diff s | files MiB | bytes per tag |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s, c = r["seconds"], r["cpu_seconds"]

        def both(key, digits=2, s=s, c=c):
            return f"{s[key]:.{digits}f} ({c[key]:.{digits}f})"

        lines.append(
            f"| {r['tags']:,} | {r['tag_rows']:,} | {r['layer_rows']:,} | {both('frames')} | "
            f"{both('snapshot')} | {both('totals')} | {both('write_files')} | "
            f"{both('history', 3)} | {both('load_snapshot')} | {both('diff')} | "
            f"{r['total_file_bytes'] / 2**20:.1f} | {r['total_file_bytes'] / r['tags']:.0f} |")
    big = results[-1]
    s = big["cpu_seconds"]
    lines += [
        "",
        f"Files of the {big['tags']:,}-tag snapshot: " + ", ".join(
            f"`{name}` {size / 2**20:.2f} MiB" for name, size in big["file_bytes"].items())
        + f" ({big['configs']:,} distinct configs stored once).",
        "",
        "Ratios of CPU seconds (same run): writing the files costs "
        f"{s['write_files'] / s['frames']:.2f}x building the frames; the whole snapshot "
        f"{s['snapshot'] / s['frames']:.2f}x; reading one back "
        f"{s['load_snapshot'] / s['frames']:.2f}x; listing the history "
        f"{s['history'] / s['frames']:.4f}x (manifests only).",
    ]
    if len(results) > 1:
        small = results[0]
        growth = (s["write_files"] / big["tags"]) / (small["cpu_seconds"]["write_files"]
                                                      / small["tags"])
        lines.append(f"From {small['tags']:,} to {big['tags']:,} tags the write CPU time per tag "
                     f"changes {growth:.2f}x (1.00 = linear).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10_000, 100_000], help="tag counts (default 10000,100000)")
    parser.add_argument("--tags-per-repo", type=int, default=50)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    run_one(200, 4, args.seed)  # warm up: imports (pyarrow) and first-call costs
    results = [run_one(n, max(1, n // args.tags_per_repo), args.seed) for n in args.sizes]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "history.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results, args)
    (args.out / "history.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
