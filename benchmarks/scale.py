"""Benchmark: frames and storage analysis of a large synthetic inventory, no network.

Run ``python benchmarks/scale.py`` (100 000 tags across 2 000 repositories at the largest size,
measured at 10 000, 50 000 and 100 000 tags).

The inventory is what :func:`registry_insights.frames.inventory.fetch_inventory` would hold after a
walk: ``TagDetails`` built the way the client builds them, from
manifest bytes shaped like the ones registries send (Docker schema 2 and OCI manifests and
indexes, parsed with ``parse_manifest``) and image configs (env,
labels, history, ``rootfs.diff_ids``). The fleet is realistic in what the frames and the
analysis care about: a few base images whose layers every repository of that base shares,
dependency layers shared by a repository's builds until they change, one application layer per
build, ``latest`` and ``stable`` tags on a repository's newest builds (several tags per digest),
multi-arch indexes (amd64 and arm64, some with arm/v7 and an attestation) in about one
repository in six. One :class:`ImageConfig` (the config's bytes) per distinct config digest is
shared by every tag that reaches it, and every tag is assembled by the walk's own
:func:`~registry_insights.registry.walk.assemble`, so the inventory holds what a real walk
holds.

The documents' bytes are written from templates that give exactly what ``json.dumps`` gives
(checked at the start of every run), so a million tags build in a few minutes; digests are the
sha256 of those bytes, and a seed gives the same inventory every time.

Each size runs in a child process pinned to one core: it builds the inventory, then times
``Inventory.tags()``, ``Inventory.layers()`` and ``analysis.storage_summary(tags, layers,
repositories)`` (without tracemalloc), then runs them again under tracemalloc for the peak
Python allocation of frames and analysis (the inventory itself is allocated before tracing
starts and reported apart; pyarrow's buffers, where pandas 3 keeps the string columns, are not
traced, so read ``ru_maxrss`` for the frames' real size). ``ru_maxrss`` is the child's peak
resident memory, inventory included; the table also gives CPU seconds and the load average
before and after. Results go to ``benchmarks/results/scale.md`` and ``scale.json`` (``--name``
for other file names). A million tags: ``python benchmarks/scale.py --sizes 1000000 --tags
1000000 --repos 20000 --no-tracemalloc --name scale-1m`` (about 10 GiB resident; a size whose
process passes ``--max-rss-gib``, 16 by default, is stopped).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_common import source_version  # noqa: E402

from registry_insights.analysis import storage as analysis  # noqa: E402
from registry_insights.frames.inventory import Inventory  # noqa: E402
from registry_insights.registry import mediatypes as mt  # noqa: E402
from registry_insights.registry.models import (  # noqa: E402
    Descriptor,
    ImageConfig,
    Manifest,
    TagDetails,
    parse_manifest,
)
from registry_insights.registry.walk import assemble  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REGISTRY = "https://registry.example.com"
ANCHOR = datetime(2026, 11, 1, tzinfo=timezone.utc)
#: name -> number of layers of the base image
BASES = {"alpine": 1, "debian": 2, "ubuntu": 3, "python": 5, "node": 6, "distroless": 2}
ARM_V7 = "linux/arm/v7"


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()



# -- the documents' bytes -------------------------------------------------------------------------
# Written from templates: the same bytes ``json.dumps`` gives (``indent=3`` for manifests and
# indexes as some registries store them, compact with sorted keys for configs), without the
# pure-Python encoder ``indent`` falls back to (most of the build's time at a million tags).
# :func:`check_templates` compares them with ``json.dumps`` on every run.

def _manifest_bytes(media_type: str, config_type: str, config_digest: str, config_size: int,
                    layer_type: str, layers) -> bytes:
    """An image manifest, as ``json.dumps(manifest, indent=3)`` writes it."""
    entries = ",".join(
        f'\n      {{\n         "mediaType": "{layer_type}",\n         "digest": "{digest}",'
        f'\n         "size": {size}\n      }}' for digest, _diff, size in layers)
    return (f'{{\n   "schemaVersion": 2,\n   "mediaType": "{media_type}",\n   "config": {{'
            f'\n      "mediaType": "{config_type}",\n      "digest": "{config_digest}",'
            f'\n      "size": {config_size}\n   }},\n   "layers": [{entries}\n   ]\n}}'
            ).encode()


def _index_bytes(media_type: str, entries: list[dict]) -> bytes:
    """An index, as ``json.dumps(index, indent=3)`` writes it (entries: mediaType, digest,
    size, platform with os, architecture and maybe variant, maybe annotations)."""
    parts = []
    for e in entries:
        plat = e["platform"]
        text = (f'\n      {{\n         "mediaType": "{e["mediaType"]}",\n         "digest": '
                f'"{e["digest"]}",\n         "size": {e["size"]},\n         "platform": {{'
                f'\n            "os": "{plat["os"]}",\n            "architecture": '
                f'"{plat["architecture"]}"')
        if "variant" in plat:
            text += f',\n            "variant": "{plat["variant"]}"'
        text += "\n         }"
        if "annotations" in e:
            text += ",\n         \"annotations\": {" + ",".join(
                f'\n            "{k}": "{v}"' for k, v in e["annotations"].items()
            ) + "\n         }"
        parts.append(text + "\n      }")
    return (f'{{\n   "schemaVersion": 2,\n   "mediaType": "{media_type}",\n   "manifests": ['
            + ",".join(parts) + "\n   ]\n}").encode()


def _config_bytes(arch: str, os_: str, variant: str | None, created: str, version_env: str,
                  revision: str, source: str, layers) -> bytes:
    """An image config, as ``json.dumps(config, separators=(",", ":"), sort_keys=True)``
    writes it: platform, created, env, cmd, labels, history, ``rootfs.diff_ids``."""
    history = ",".join(f'{{"created":"{created}","created_by":"/bin/sh -c step {i}"}}'
                       for i in range(len(layers)))
    diff_ids = ",".join(f'"{diff}"' for _d, diff, _s in layers)
    return (f'{{"architecture":"{arch}","config":{{"Cmd":["/app/run"],"Env":["PATH=/usr/local/'
            f'sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","{version_env}"],"Labels":{{'
            f'"org.opencontainers.image.revision":"{revision}",'
            f'"org.opencontainers.image.source":"{source}"}},"WorkingDir":"/app"}},'
            f'"created":"{created}","history":[{history}],"os":"{os_}","rootfs":{{"diff_ids":'
            f'[{diff_ids}],"type":"layers"}}' + (f',"variant":"{variant}"' if variant else "")
            + "}").encode()


def check_templates() -> None:
    """Raise AssertionError unless the templates give exactly ``json.dumps``'s bytes."""
    layers = [("sha256:" + "a" * 64, "sha256:" + "b" * 64, 123),
              ("sha256:" + "c" * 64, "sha256:" + "d" * 64, 45_678)]
    created = "2026-01-02T03:04:05Z"
    for oci, variant in ((True, "v7"), (False, None)):
        config = {
            "architecture": "arm", "os": "linux", "created": created,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "APP_VERSION=1.7.0"],
                "Cmd": ["/app/run"], "WorkingDir": "/app",
                "Labels": {"org.opencontainers.image.source": "https://git.example.com/a/b",
                           "org.opencontainers.image.revision": "e" * 40},
            },
            "rootfs": {"type": "layers", "diff_ids": [diff for _d, diff, _s in layers]},
            "history": [{"created": created, "created_by": f"/bin/sh -c step {i}"}
                        for i in range(len(layers))],
        }
        if variant:
            config["variant"] = variant
        expected = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        assert _config_bytes("arm", "linux", variant, created, "APP_VERSION=1.7.0", "e" * 40,
                             "https://git.example.com/a/b", layers) == expected
        manifest = {
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "f" * 64,
                       "size": 987},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": d, "size": s}
                       for d, _diff, s in layers]}
        assert _manifest_bytes(manifest["mediaType"], mt.OCI_CONFIG, "sha256:" + "f" * 64,
                               987, mt.OCI_LAYER_GZIP, layers) == json.dumps(
            manifest, indent=3).encode()
        entries = [{"mediaType": mt.OCI_MANIFEST, "digest": d, "size": s,
                    "platform": {"os": "linux", "architecture": "arm"}}
                   for d, _diff, s in layers]
        if variant:
            entries[0]["platform"]["variant"] = variant
        entries[1]["annotations"] = {mt.REFERENCE_TYPE_ANNOTATION: "attestation-manifest",
                                     "vnd.docker.reference.digest": layers[0][0]}
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
        assert _index_bytes(mt.OCI_INDEX, entries) == json.dumps(index, indent=3).encode()


class SyntheticFleet:
    """Builds the TagDetails of a registry with ``tags`` tags over ``repositories``
    repositories (deterministic for a seed)."""

    def __init__(self, tags: int, repositories: int, seed: int = 6,
                 keep_config_bytes: bool = True):
        self.rng = random.Random(seed)
        self.n_tags = tags
        self.n_repos = repositories
        self.configs: dict[str, ImageConfig] = {}
        #: the configs' bytes, where a real walk has them in its HTTP cache (on disk); not
        #: kept when measuring the inventory's memory
        self.config_bytes: dict[str, bytes] | None = {} if keep_config_bytes else None
        #: one bound method shared by every light config, as the client shares its own
        self._loader = self._read_config
        self.shared: dict = {}  # as one walk shares equal layer descriptors
        self.base_layers: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
        for base, count in BASES.items():
            for plat in ("linux/amd64", "linux/arm64", ARM_V7):
                self.base_layers[(base, plat)] = [self._layer(2_000_000, 40_000_000)
                                                  for _ in range(count)]

    def _read_config(self, _repository: str, digest: str) -> bytes:
        """Where a real inventory reads a config's bytes from the HTTP cache."""
        if self.config_bytes is None:
            raise LookupError(f"config {digest}: this synthetic inventory keeps no config bytes")
        return self.config_bytes[digest]

    def _layer(self, low: int, high: int) -> tuple[str, str, int]:
        """(digest, diff_id, compressed size): a log-uniform size between low and high."""
        size = int(low * (high / low) ** self.rng.random())
        return "sha256:" + _hex(self.rng), "sha256:" + _hex(self.rng), size

    def _image(self, repo: str, plat: str, layers, created: str, oci: bool, build: int
               ) -> tuple[Manifest, ImageConfig, str, int]:
        os_, arch, *variant = plat.split("/")
        config_raw = _config_bytes(arch, os_, variant[0] if variant else None, created,
                                   f"APP_VERSION=1.{build}.0", _hex(self.rng)[:40],
                                   f"https://git.example.com/{repo}", layers)
        config_digest = _digest(config_raw)
        # as the client holds it (RegistryClient.config): light, one shared loader reading
        # the exact bytes back by (repository, digest)
        if self.config_bytes is not None:
            self.config_bytes[config_digest] = config_raw
        config = self.configs.get(config_digest)
        if config is None:
            config = self.configs[config_digest] = ImageConfig.parse(
                config_raw, digest=config_digest).light(self._loader, repo)
        media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
        raw = _manifest_bytes(media_type, mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                              config_digest, len(config_raw),
                              mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER, layers)
        digest = _digest(raw)
        return (parse_manifest(repo, digest, raw, media_type, digest), config,
                config_digest, len(config_raw))

    def _attestation(self, repo: str, subject: str) -> tuple[Descriptor, Manifest]:
        config_raw = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers"}}'
        raw = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": _digest(config_raw),
                       "size": len(config_raw)},
            "layers": [{"mediaType": mt.IN_TOTO, "digest": "sha256:" + _hex(self.rng),
                        "size": self.rng.randint(2_000, 90_000)}],
        }).encode()
        manifest = parse_manifest(repo, _digest(raw), raw, mt.OCI_MANIFEST, _digest(raw))
        descriptor = Descriptor.from_dict({
            "mediaType": mt.OCI_MANIFEST, "digest": manifest.digest, "size": len(raw),
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {mt.REFERENCE_TYPE_ANNOTATION: "attestation-manifest",
                            "vnd.docker.reference.digest": subject}})
        return descriptor, manifest

    def repository(self, r: int, n_tags: int) -> list[TagDetails]:
        rng = self.rng
        base = list(BASES)[r % len(BASES)]
        repo = f"team{r % 97:02d}/service-{r:05d}"
        multi = r % 6 == 2
        platforms = ["linux/amd64", "linux/arm64"] + ([ARM_V7] if r % 12 == 2 else [])
        platforms = platforms if multi else ["linux/amd64"]
        attest = multi and r % 4 == 0
        oci = r % 2 == 0
        extra = min(2, n_tags - 1)  # "latest" and "stable" on the newest builds
        builds = n_tags - extra
        deps = {p: [self._layer(500_000, 30_000_000) for _ in range(rng.randint(1, 3))]
                for p in platforms}
        out: list[TagDetails] = []
        start = ANCHOR - timedelta(days=730)
        for b in range(builds):
            if b and b % 10 == 0:  # dependencies change now and then
                deps = {p: [self._layer(500_000, 30_000_000) for _ in range(len(deps[p]))]
                        for p in platforms}
            created = (start + timedelta(days=730 * (b + 1) / builds, seconds=r)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            images, entries, others = [], [], []
            for plat in platforms:
                layers = self.base_layers[(base, plat)] + deps[plat] + [
                    self._layer(50_000, 20_000_000)]
                manifest, config, cfg_digest, cfg_size = self._image(repo, plat, layers,
                                                                     created, oci, b)
                os_, arch, *variant = plat.split("/")
                entry = {"mediaType": manifest.media_type, "digest": manifest.digest,
                         "size": manifest.size, "platform": {"os": os_, "architecture": arch}}
                if variant:
                    entry["platform"]["variant"] = variant[0]
                entries.append(entry)
                images.append((manifest, config, cfg_digest, cfg_size))
            if attest:
                descriptor, att = self._attestation(repo, entries[0]["digest"])
                entries.append({"mediaType": att.media_type, "digest": att.digest,
                                "size": att.size, "platform": {"os": "unknown",
                                                               "architecture": "unknown"},
                                "annotations": descriptor.annotations})
                others.append((att, descriptor))
            if multi:
                index_raw = _index_bytes(mt.OCI_INDEX if oci else mt.DOCKER_MANIFEST_LIST,
                                         entries)
                top = parse_manifest(repo, f"b{b}", index_raw, None, _digest(index_raw))
            else:
                top = images[0][0]
            tag_names = [f"1.{b}.0"]
            if extra and b == builds - 1:
                tag_names.append("latest")
            if extra == 2 and b == max(0, builds - 2):
                tag_names.append("stable")
            for tag in tag_names:
                out.append(self._tag(repo, tag, top, images, others))
        return out

    def _tag(self, repo: str, tag: str, top: Manifest, images, others) -> TagDetails:
        """As the walk assembles a tag (:func:`registry_insights.registry.walk.assemble`)."""
        children = {m.digest: m for m, *_rest in images} | {m.digest: m for m, _d in others}
        return assemble(lambda _repo, d: self.configs[d.digest], repo, tag, top,
                        children.__getitem__, self.shared)

    def inventory(self, progress=None) -> Inventory:
        """The inventory; ``progress(repositories done, tags done)`` is called after every
        tenth of the repositories when given."""
        per_repo = [self.n_tags // self.n_repos] * self.n_repos
        for i in range(self.n_tags % self.n_repos):
            per_repo[i] += 1
        details: list[TagDetails] = []
        step = max(1, self.n_repos // 10)
        for r, n in enumerate(per_repo):
            details.extend(self.repository(r, n))
            if progress is not None and (r + 1) % step == 0:
                progress(r + 1, len(details))
        repositories = sorted({d.repository for d in details})
        return Inventory(REGISTRY, repositories, details)


# -- one size, in a child process -----------------------------------------------------------------

def _rss_bytes() -> int:
    """Resident memory now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _analyse(inv: Inventory, say=lambda _text: None):
    """(wall seconds per step, CPU seconds per step, tags, layers, summary)."""
    timings, cpu = {}, {}

    def timed(name, function, *args):
        say(f"  {name} ...")
        started, cpu_started = time.perf_counter(), time.process_time()
        value = function(*args)
        timings[name] = time.perf_counter() - started
        cpu[name] = time.process_time() - cpu_started
        say(f"  {name}: {timings[name]:.1f} s, RSS {_rss_bytes() / 2**30:.1f} GiB")
        return value

    tags = timed("tags", inv.tags)
    layers = timed("layers", inv.layers)
    summary = timed("storage_summary", analysis.storage_summary, tags, layers,
                    inv.repositories)
    timings["total"] = sum(timings.values())
    cpu["total"] = sum(cpu.values())
    return timings, cpu, tags, layers, summary


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_one(tags: int, repositories: int, seed: int, trace: bool) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    check_templates()
    gc.collect()
    rss_before = _rss_bytes()
    if trace:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    fleet = SyntheticFleet(tags, repositories, seed, keep_config_bytes=False)
    inv = fleet.inventory(progress=lambda r, n: print(
        f"  built {r:,} repositories, {n:,} tags, {time.perf_counter() - started:.0f} s, "
        f"RSS {_rss_bytes() / 2**30:.1f} GiB", file=sys.stderr, flush=True))
    build_seconds = time.perf_counter() - started
    build_cpu = time.process_time() - cpu_started
    gc.collect()
    inventory_traced = None
    if trace:  # what the inventory (and the client's configs) hold, allocated while built
        inventory_traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    rss_inventory = _maxrss_bytes()
    inventory_rss = _rss_bytes() - rss_before
    timings, cpu, tag_frame, layer_frame, summary = _analyse(inv, _say)
    result = {
        "tags": len(inv.details), "repositories": len(inv.repositories),
        "tag_rows": len(tag_frame), "layer_rows": len(layer_frame),
        "summary_rows": len(summary),
        "distinct_layers": int(layer_frame["layer_digest"].nunique()),
        "unique_bytes": int(summary["unique_bytes"].iloc[-1]),
        "logical_bytes": int(summary["logical_bytes"].iloc[-1]),
        "inventory_build_seconds": build_seconds, "inventory_build_cpu_seconds": build_cpu,
        "seconds": timings, "cpu_seconds": cpu,
        "rss_after_inventory_bytes": rss_inventory,
        "inventory_rss_bytes": inventory_rss,
        "inventory_traced_bytes": inventory_traced,
    }
    del tag_frame, layer_frame, summary
    gc.collect()
    if trace:
        tracemalloc.start()
        _analyse(inv)
        result["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result["ru_maxrss_bytes"] = _maxrss_bytes()
    result["cpus"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return result


# -- report ---------------------------------------------------------------------------------------

def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 2**20:,.0f}"


def _cpu(mapping: dict, key: str) -> str:
    return f"{mapping[key]:.0f}" if key in mapping else "–"


def _load(r: dict) -> str:
    if "load_before" in r:
        return f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}"
    return f"{r.get('load', 0):.2f}"


def report(results: list[dict], args, when: datetime | None = None) -> str:
    sizes = ", ".join(f"{r['tags']:,}" for r in results)
    lines = [
        "# Scale benchmark: frames and storage_summary of a synthetic inventory",
        "",
        f"- Sizes: {sizes} tags, {args.tags // args.repos} tags per repository "
        f"({args.tags:,} tags across {args.repos:,} repositories at the largest default). "
        "One core (CPU affinity), Python "
        f"{platform.python_version()}, pandas {_pandas_version()}, "
        f"{when or datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"- registry_insights: {source_version(with_hash=False)}"
        + (f" ({args.label})." if args.label else "."),
        "- Times without tracemalloc; `tracemalloc peak` is a second pass of frames + "
        "analysis under tracemalloc (inventory excluded); `ru_maxrss` is the process peak, "
        "the inventory objects included.",
        "",
        "| tags | repos | tag rows | layer rows | tags() s | layers() s | storage_summary s | "
        "total s | µs per tag | tracemalloc peak MiB | ru_maxrss MiB | inventory RSS MiB | "
        "inventory B/tag (RSS) | inventory B/tag (traced) | build s | build CPU s | "
        "frames + summary CPU s | load (1 min) before / after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        "---:|",
    ]
    for r in results:
        s = r["seconds"]
        lines.append(
            f"| {r['tags']:,} | {r['repositories']:,} | {r['tag_rows']:,} | "
            f"{r['layer_rows']:,} | {s['tags']:.2f} | {s['layers']:.2f} | "
            f"{s['storage_summary']:.2f} | {s['total']:.2f} | "
            f"{s['total'] / r['tags'] * 1e6:.1f} | {_mb(r.get('tracemalloc_peak_bytes'))} | "
            f"{_mb(r['ru_maxrss_bytes'])} | {_mb(r['rss_after_inventory_bytes'])} | "
            f"{r['inventory_rss_bytes'] / r['tags']:,.0f} | "
            + (f"{r['inventory_traced_bytes'] / r['tags']:,.0f}"
               if r.get("inventory_traced_bytes") else "–")
            + f" | {r['inventory_build_seconds']:.0f} | {_cpu(r, 'inventory_build_cpu_seconds')}"
            f" | {_cpu(r.get('cpu_seconds', {}), 'total')} | {_load(r)} |")
    if len(results) >= 2:
        first, last = results[0], results[-1]
        growth = ((last["seconds"]["total"] / last["tags"])
                  / (first["seconds"]["total"] / first["tags"]))
        exponent = (math.log(last["seconds"]["total"] / first["seconds"]["total"])
                    / math.log(last["tags"] / first["tags"]))
        lines += ["", f"From {first['tags']:,} to {last['tags']:,} tags the time per tag grows "
                  f"{growth:.2f}x: time ~ tags^{exponent:.2f} (1.00 = linear, 2.00 = "
                  "quadratic)."]
    at_100k = [r for r in results if r["tags"] == 100_000]
    if at_100k:
        r = at_100k[0]
        fast = r["seconds"]["total"] < 30
        small = r["ru_maxrss_bytes"] < 2 * 2**30
        lines += ["", "## Targets (issue 6)", "", "| target | met | detail |", "|---|---|---|",
                  "| 100,000 tags: frames + storage_summary < 30 s on one core | "
                  f"{'yes' if fast else '**no**'} | {r['seconds']['total']:.1f} s |",
                  f"| 100,000 tags: < 2 GB peak | {'yes' if small else '**no**'} | "
                  f"ru_maxrss {_mb(r['ru_maxrss_bytes'])} MiB (inventory included), "
                  f"tracemalloc peak {_mb(r.get('tracemalloc_peak_bytes'))} MiB |"]
    million = [r for r in results if r["tags"] >= 1_000_000]
    if million:
        r = million[0]
        lines += ["", "## Target (issue 14)", "", f"{r['tags']:,} synthetic tags: frames and "
                  f"storage summary complete on this machine: frames + storage_summary "
                  f"{r['seconds']['total']:.1f} s ({r['cpu_seconds']['total']:.1f} s CPU), "
                  f"peak resident memory {r['ru_maxrss_bytes'] / 2**30:.2f} GiB, the "
                  "inventory included."]
    return "\n".join(lines) + "\n"


def _pandas_version() -> str:
    import pandas

    return pandas.__version__


def _child_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _run_child(command: list[str], max_rss: float) -> dict | None:
    """Run one size; its progress goes to stderr as it comes. Stopped (None) when its
    resident memory passes ``max_rss`` bytes or it fails."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    while True:
        try:
            out, _ = child.communicate(timeout=2)
            break
        except subprocess.TimeoutExpired:
            peak = max(peak, _child_rss(child.pid))
            if peak > max_rss:
                child.kill()
                child.communicate()
                print(f"  stopped: resident memory {peak / 2**30:.1f} GiB passed "
                      f"{max_rss / 2**30:.1f} GiB", file=sys.stderr)
                return None
    if child.returncode != 0:
        print(f"  failed with exit status {child.returncode}", file=sys.stderr)
        return None
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=100_000, help="tags at the largest size")
    parser.add_argument("--repos", type=int, default=2_000,
                        help="repositories at the largest size")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="comma separated tag counts (default: 10%%, 50%%, 100%% of --tags)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--no-tracemalloc", action="store_true")
    parser.add_argument("--label", default="",
                        help="recorded in the report, e.g. the commit measured")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--name", default="scale",
                        help="results file names: NAME.md and NAME.json (default: scale)")
    parser.add_argument("--max-rss-gib", type=float, default=16.0,
                        help="stop a size whose process grows past this resident memory")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one size
    parser.add_argument("--one-repos", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.one_repos, args.seed, not args.no_tracemalloc)))
        return 0
    sizes = args.sizes or [args.tags // 10, args.tags // 2, args.tags]
    results = []
    for size in sizes:
        repos = max(1, round(args.repos * size / args.tags))
        print(f"{size:,} tags across {repos:,} repositories ...", file=sys.stderr)
        command = [sys.executable, __file__, "--one", str(size), "--one-repos", str(repos),
                   "--seed", str(args.seed)] + (["--no-tracemalloc"] if args.no_tracemalloc
                                                else [])
        load_before = os.getloadavg()
        result = _run_child(command, args.max_rss_gib * 2**30)
        if result is None:
            return 1
        results.append(result)
        results[-1]["load"] = os.getloadavg()[0]
        results[-1]["load_before"] = list(load_before)
        results[-1]["load_after"] = list(os.getloadavg())
        print(f"  {results[-1]['seconds']['total']:.2f} s", file=sys.stderr)
    text = report(results, args)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(text, encoding="utf-8")
    (args.out / f"{args.name}.json").write_text(json.dumps(
        {"arguments": {k: v for k, v in vars(args).items() if not k.startswith("one")},
         "results": results}, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
