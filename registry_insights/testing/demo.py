"""The built-in demo registry: a real CNCF Distribution registry on loopback, seeded with a
realistic synthetic fleet through the registry's own HTTP API.

The fleet (deterministic for a given seed): 14 repositories, about 330 tags over two years
(ending :data:`ANCHOR`), base layers shared across repositories, dependency layers shared within
a repository, a small app layer per build; Docker schema 2 and OCI media types; multi-arch
indexes (one with a buildkit-style attestation); several tags per digest (``latest``,
``stable``, ``sha-...``); a few reproducible builds dated 1970-01-01; nanosecond and offset
timestamps; one repository whose every tag was deleted (it stays in the catalog with
``"tags": null``); signed images with their cosign ``.sig`` tags, an SBOM behind a referrers
fallback tag, an index listing an index (``linux/arm64/v8`` and ``linux/arm`` spellings), a
Windows image with a 100 MiB foreign base layer (never stored) and Helm charts. Layers are
real gzip-compressed tar files of random bytes, so compressed sizes are honest. The stored
total stays under about 100 MB.

>>> with DemoRegistry() as demo:                 # doctest: +SKIP
...     client = demo.client()
...     tags = ri.tags_frame(client)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..progress import progress_bar
from ..registry import mediatypes as mt
from ..registry.client import RegistryClient
from ..registry.models import Platform
from ..registry.names import sha256_digest
from .server import RegistryServer

#: The newest ``created`` in the fleet; dates spread over the two years before it.
ANCHOR = datetime(2026, 11, 1, tzinfo=timezone.utc)
EMPTY_REPOSITORY = "sandbox/scratch"
#: Signed images, an SBOM, a nested index and a Windows image with a foreign layer.
SUPPLY_REPOSITORY = "supply/app"
#: Helm charts.
CHART_REPOSITORY = "charts/storefront"


@dataclass(frozen=True)
class SeededImage:
    """Ground truth of one (repository, tag, platform) the seeding wrote."""

    repository: str
    tag: str
    platform: str
    digest: str
    manifest_digest: str
    config_digest: str
    created: str
    layer_size: int


@dataclass
class _Layer:
    digest: str
    diff_id: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


class FleetBuilder:
    """Builds layers, configs, manifests and indexes and pushes them with a RegistryClient
    (also used by the tests to seed small fleets)."""

    def __init__(self, client: RegistryClient, seed: int):
        self.client = client
        self.rng = random.Random(seed)
        self.images: list[SeededImage] = []
        self.pushed: dict[str, set[str]] = {}
        self.home: dict[str, str] = {}

    # -- content -----------------------------------------------------------------------------
    def layer(self, size: int, name: str) -> _Layer:
        payload = self.rng.randbytes(size)
        tar_buf = io.BytesIO()
        with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo(f"opt/{name}.bin")
            info.size, info.mtime, info.mode = len(payload), 0, 0o644
            tar.addfile(info, io.BytesIO(payload))
        tar_bytes = tar_buf.getvalue()
        gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
        return _Layer(sha256_digest(gz), "sha256:" + hashlib.sha256(tar_bytes).hexdigest(), gz)

    def size(self, low: int, high: int) -> int:
        """A log-uniform size in bytes between low and high."""
        return int(round(low * (high / low) ** self.rng.random()))

    # -- pushing -----------------------------------------------------------------------------
    def push_blobs(self, repository: str, blobs: list[tuple[str, bytes]]) -> None:
        have = self.pushed.setdefault(repository, set())
        todo = {d: b for d, b in blobs if d not in have}

        def push(item):
            digest, data = item
            source = self.home.get(digest)
            if source and source != repository and self.client.mount_blob(repository, digest,
                                                                          source):
                return digest
            self.client.upload_blob(repository, data, digest)
            return digest

        self.client.map(push, list(todo.items()))
        for digest in todo:
            have.add(digest)
            self.home.setdefault(digest, repository)

    def image(self, repository: str, layers: list[_Layer], created: str, platform: str,
              oci: bool, labels: dict) -> tuple[bytes, str, int]:
        """Push config and layers; return (manifest bytes, config digest, layer bytes)."""
        os_, arch, *variant = platform.split("/")
        config = {
            "architecture": arch, "os": os_, "created": created,
            "config": {"Labels": labels, "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": f"layer {i}"}
                        for i in range(len(layers))],
        }
        if variant:
            config["variant"] = variant[0]
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        config_digest = sha256_digest(config_bytes)
        self.push_blobs(repository, [(config_digest, config_bytes)]
                        + [(layer.digest, layer.data) for layer in layers])
        layer_type = mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": layer_type, "digest": layer.digest, "size": layer.size}
                       for layer in layers],
        }
        raw = json.dumps(manifest, indent=3).encode()
        return raw, config_digest, sum(layer.size for layer in layers)

    def attestation(self, repository: str, subject: str) -> dict:
        """Push an in-toto attestation manifest; return its index entry."""
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1",
                                "subject": [{"digest": {"sha256": subject[7:]}}],
                                "predicateType": "https://spdx.dev/Document",
                                "predicate": {"spdxVersion": "SPDX-2.3",
                                              "packages": self.rng.randint(20, 400)}}).encode()
        config = b'{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers"}}'
        self.push_blobs(repository, [(sha256_digest(statement), statement),
                                     (sha256_digest(config), config)])
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256_digest(config),
                       "size": len(config)},
            "layers": [{"mediaType": mt.IN_TOTO, "digest": sha256_digest(statement),
                        "size": len(statement),
                        "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
        }).encode()
        digest = self.client.put_manifest(repository, sha256_digest(manifest), manifest,
                                          mt.OCI_MANIFEST)
        return {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(manifest),
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                "vnd.docker.reference.digest": subject}}

    # -- content of other kinds (signatures, charts, SBOMs, nested indexes, foreign layers) ---
    def _put(self, repository: str, reference: str | None, manifest: dict,
             media_type: str = mt.OCI_MANIFEST) -> tuple[str, int]:
        raw = json.dumps(manifest, indent=2).encode()
        digest = self.client.put_manifest(repository, reference or sha256_digest(raw), raw,
                                          media_type)
        return digest, len(raw)

    def _blob(self, repository: str, data: bytes, media_type: str, **extra) -> dict:
        digest = sha256_digest(data)
        self.push_blobs(repository, [(digest, data)])
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def signature(self, repository: str, subject: str) -> str:
        """Push a cosign-style signature of ``subject`` under ``sha256-<hex>.sig``: an OCI
        manifest with an image config dated ``0001-01-01T00:00:00Z`` (as cosign writes) and a
        simple-signing layer. Returns its digest."""
        payload = json.dumps({"critical": {"identity": {"docker-reference": repository},
                                           "image": {"docker-manifest-digest": subject},
                                           "type": "cosign container image signature"},
                              "optional": None}).encode()
        layer = self._blob(repository, payload, mt.COSIGN_SIMPLESIGNING, annotations={
            "dev.cosignproject.cosign/signature": self.rng.randbytes(48).hex()})
        config = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z",
                             "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                             "rootfs": {"type": "layers",
                                        "diff_ids": [layer["digest"]]},
                             "config": {}}).encode()
        digest, _size = self._put(repository, f"sha256-{subject[7:]}.sig", {
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": self._blob(repository, config, mt.OCI_CONFIG), "layers": [layer]})
        return digest

    def helm_chart(self, repository: str, name: str, version: str, created: str) -> str:
        """Push a Helm chart (``helm push``'s layout: Helm config, chart tarball, created
        annotation) under the tag ``version``; return its digest."""
        chart = self._blob(repository, gzip.compress(
            f"{name}-{version}: {self.rng.randbytes(16).hex()}".encode() * 40, mtime=0),
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
        config = json.dumps({"name": name, "version": version, "apiVersion": "v2"}).encode()
        digest, _size = self._put(repository, version, {
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": self._blob(repository, config, mt.HELM_CONFIG), "layers": [chart],
            "annotations": {mt.CREATED_ANNOTATION: created,
                            "org.opencontainers.image.title": name,
                            "org.opencontainers.image.version": version}})
        return digest

    def sbom(self, repository: str, subject: dict, created: str) -> str:
        """Push an ORAS-style SBOM of ``subject`` (a descriptor): ``artifactType``, the empty
        config, a ``subject``; and the referrers fallback tag ``sha256-<hex>`` (an index
        listing it), as a client does on a registry without the referrers API. Returns the
        SBOM's digest."""
        document = json.dumps({"spdxVersion": "SPDX-2.3", "name": subject["digest"],
                               "packages": [{"name": f"pkg{i}"} for i in range(
                                   self.rng.randint(5, 40))]}).encode()
        kind = "application/spdx+json"
        digest, size = self._put(repository, None, {
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": kind,
            "config": self._blob(repository, b"{}", mt.OCI_EMPTY),
            "layers": [self._blob(repository, document, kind)],
            "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
            "annotations": {mt.CREATED_ANNOTATION: created}})
        self._put(repository, f"sha256-{subject['digest'][7:]}", {
            "schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
                {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": size,
                 "artifactType": kind}]}, mt.OCI_INDEX)
        return digest

    def nested_index(self, repository: str, tags: list[str], inner: dict[str, list[_Layer]],
                     outer: dict[str, list[_Layer]], created: str) -> str:
        """Push an index listing an index (the ``inner`` platforms) and the ``outer``
        platforms' images directly; return the outer index's digest."""
        labels: dict = {}
        images: list[tuple[str, str, str, int, str]] = []

        def entries(platforms: dict[str, list[_Layer]]) -> list[dict]:
            out = []
            for platform, layers in platforms.items():
                raw, cfg, size = self.image(repository, layers, created, platform, True,
                                            labels)
                digest = self.client.put_manifest(repository, sha256_digest(raw), raw,
                                                  mt.OCI_MANIFEST)
                os_, arch, *variant = platform.split("/")
                plat = {"os": os_, "architecture": arch, **({"variant": variant[0]}
                                                            if variant else {})}
                out.append({"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(raw),
                            "platform": plat})
                images.append((platform, digest, cfg, size, created))
            return out

        inner_digest, inner_size = self._put(repository, None, {
            "schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries(inner)},
            mt.OCI_INDEX)
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": mt.OCI_INDEX, "digest": inner_digest, "size": inner_size},
            *entries(outer)]}, indent=2).encode()
        digest = sha256_digest(raw)
        for tag in tags:
            self.client.put_manifest(repository, tag, raw, mt.OCI_INDEX)
            for platform, kid, cfg, size, when in images:
                self.images.append(SeededImage(repository, tag,
                                               str(Platform.parse(platform).normalized()),
                                               digest, kid, cfg, when, size))
        return digest

    def foreign_image(self, repository: str, tag: str, layers: list[_Layer], created: str,
                      foreign_size: int, oci: bool = False) -> str:
        """Push a Windows image whose base layer is foreign (Docker
        ``foreign.diff.tar.gzip``, or OCI non-distributable with ``oci``): named by digest,
        size and ``urls``, never uploaded. Returns its digest."""
        foreign = {
            "mediaType": ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
                          if oci else mt.DOCKER_FOREIGN_LAYER),
            "digest": "sha256:" + hashlib.sha256(f"{repository}{tag}".encode()).hexdigest(),
            "size": foreign_size,
            "urls": [f"https://mcr.example.com/windows/{tag}.tar.gz"]}
        config = json.dumps({"architecture": "amd64", "os": "windows",
                             "os.version": "10.0.20348.2340", "created": created,
                             "rootfs": {"type": "layers", "diff_ids": [
                                 "sha256:" + "0" * 64, *(x.diff_id for x in layers)]}}).encode()
        self.push_blobs(repository, [(x.digest, x.data) for x in layers])
        layer_type = mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER
        digest, _size = self._put(repository, tag, {
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST,
            "config": self._blob(repository, config, mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG),
            "layers": [foreign, *({"mediaType": layer_type, "digest": x.digest,
                                   "size": x.size} for x in layers)]},
            mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST)
        self.images.append(SeededImage(repository, tag, "windows/amd64", digest, digest,
                                       sha256_digest(config), created,
                                       foreign_size + sum(x.size for x in layers)))
        return digest

    def build(self, repository: str, tags: list[str], platforms: dict[str, list[_Layer]],
              created: str, oci: bool, attest: bool = False) -> str:
        """Push one build (single image or index) under ``tags``; return the tag digest."""
        labels = {"org.opencontainers.image.source": f"https://git.example.com/{repository}"}
        if len(platforms) == 1:
            (platform, layers), = platforms.items()
            raw, cfg, size = self.image(repository, layers, created, platform, oci, labels)
            media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
            digest = sha256_digest(raw)
            for tag in tags:
                self.client.put_manifest(repository, tag, raw, media_type)
                self.images.append(SeededImage(repository, tag, platform, digest, digest, cfg,
                                               created, size))
            return digest
        entries, truth = [], []
        for platform, layers in platforms.items():
            raw, cfg, size = self.image(repository, layers, created, platform, oci, labels)
            media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
            digest = self.client.put_manifest(repository, sha256_digest(raw), raw, media_type)
            os_, arch, *variant = platform.split("/")
            plat = {"os": os_, "architecture": arch}
            if variant:
                plat["variant"] = variant[0]
            entries.append({"mediaType": media_type, "digest": digest, "size": len(raw),
                            "platform": plat})
            truth.append((platform, digest, cfg, size))
        if attest:
            entries.append(self.attestation(repository, entries[0]["digest"]))
        index_type = mt.OCI_INDEX if oci else mt.DOCKER_MANIFEST_LIST
        index = json.dumps({"schemaVersion": 2, "mediaType": index_type,
                            "manifests": entries}, indent=3).encode()
        index_digest = sha256_digest(index)
        for tag in tags:
            self.client.put_manifest(repository, tag, index, index_type)
            for platform, digest, cfg, size in truth:
                self.images.append(SeededImage(repository, tag, platform, index_digest, digest,
                                               cfg, created, size))
        return index_digest


def _timestamp(moment: datetime, style: int) -> str:
    """RFC 3339 in the styles real builders write: Z, nanoseconds, or a numeric offset."""
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}123Z"
    local = moment.astimezone(timezone(timedelta(hours=2)))
    return local.strftime("%Y-%m-%dT%H:%M:%S+02:00")


#: (repository, base, number of builds, multi-arch, OCI media types, attestation)
APPS = [
    ("payments/api", "alpine", 40, False, True, False),
    ("payments/worker", "alpine", 34, False, False, False),
    ("storefront/web", "debian", 38, True, True, True),
    ("storefront/search", "debian", 30, False, False, False),
    ("data/etl", "python", 36, False, True, False),
    ("data/notebooks", "python", 22, False, False, False),
    ("ml/trainer", "python", 26, True, False, False),
    ("tools/ci-runner", "debian", 28, False, True, False),
]


def seed(client: RegistryClient, seed: int = 7, progress: bool | None = None
         ) -> list[SeededImage]:
    """Push the demo fleet into the registry behind ``client``; return what was written.

    ``progress``: a bar by repository (default: on in a terminal or notebook only).

    Returns
    -------
    list of SeededImage
        One per (repository, tag, platform): digest the tag points to, platform manifest
        digest, config digest, ``created`` as written, layer bytes (compressed).
    """
    bar = progress_bar(len(APPS) + 3, "seeding", progress, unit="repository")
    try:
        return _seed(client, seed, bar)
    finally:
        bar.close()


def _seed(client: RegistryClient, seed: int, bar) -> list[SeededImage]:
    fleet = FleetBuilder(client, seed)
    rng = fleet.rng
    start = ANCHOR - timedelta(days=730)
    bases = {
        ("alpine", "amd64"): fleet.layer(fleet.size(2_500_000, 3_200_000), "alpine-amd64"),
        ("alpine", "arm64"): fleet.layer(fleet.size(2_300_000, 3_000_000), "alpine-arm64"),
        ("debian", "amd64"): fleet.layer(fleet.size(5_000_000, 6_500_000), "debian-amd64"),
        ("debian", "arm64"): fleet.layer(fleet.size(4_800_000, 6_000_000), "debian-arm64"),
    }
    python_rt = {arch: fleet.layer(fleet.size(3_000_000, 4_000_000), f"python-{arch}")
                 for arch in ("amd64", "arm64")}

    def stack(base: str, arch: str) -> list[_Layer]:
        if base == "python":
            return [bases[("debian", arch)], python_rt[arch]]
        return [bases[(base, arch)]]

    # base images
    old = _timestamp(start + timedelta(days=3), 0)
    fleet.build("base/alpine", ["3.20", "latest"],
                {f"linux/{a}": stack("alpine", a) for a in ("amd64", "arm64")},
                _timestamp(start + timedelta(days=20), 0), oci=True)
    fleet.build("base/alpine", ["3.19"], {"linux/amd64": stack("alpine", "amd64")}, old,
                oci=True)
    fleet.build("base/debian", ["bookworm", "12", "latest"],
                {"linux/amd64": stack("debian", "amd64")},
                _timestamp(start + timedelta(days=10), 2), oci=False)
    fleet.build("base/python", ["3.12", "latest"],
                {"linux/amd64": stack("python", "amd64")},
                _timestamp(start + timedelta(days=40), 1), oci=False)

    bar.update(1)
    for repository, base, builds, multiarch, oci, attest in APPS:
        first = start + timedelta(days=rng.randint(0, 200))
        step = (ANCHOR - first) / builds
        deps: dict[str, _Layer] = {}
        archs = ("amd64", "arm64") if multiarch else ("amd64",)
        reproducible = repository == "tools/ci-runner"
        digests = []
        for n in range(builds):
            moment = first + step * n + timedelta(minutes=rng.randint(0, 600))
            if n == builds - 1:
                moment = ANCHOR - timedelta(hours=rng.randint(1, 48))
            created = ("1970-01-01T00:00:00Z" if reproducible and n % 9 == 4
                       else _timestamp(moment, n % 3))
            if n % 8 == 0:
                deps = {a: fleet.layer(fleet.size(200_000, 1_000_000), f"{repository}-deps{n}-{a}")
                        for a in archs}
            platforms = {}
            for a in archs:
                app = fleet.layer(fleet.size(4_000, 300_000), f"{repository}-app{n}-{a}")
                platforms[f"linux/{a}"] = stack(base, a) + [deps[a], app]
            version = f"1.{n // 10}.{n % 10}"
            tags = [version]
            if rng.random() < 0.25:
                tags.append(f"sha-{hashlib.sha1(f'{repository}{n}'.encode()).hexdigest()[:7]}")
            digest = fleet.build(repository, tags, platforms, created, oci,
                                 attest=attest and n >= builds - 3)
            digests.append((tags, digest))
        # moving tags: latest = newest build, stable = the one before
        for alias, (_tags, _digest) in (("latest", digests[-1]), ("stable", digests[-2])):
            top = client.manifest(repository, _tags[0])
            client.put_manifest(repository, alias, top.raw, top.media_type)
            for image in [i for i in fleet.images
                          if i.repository == repository and i.tag == _tags[0]]:
                fleet.images.append(SeededImage(repository, alias, image.platform, image.digest,
                                                image.manifest_digest, image.config_digest,
                                                image.created, image.layer_size))
        bar.update(1)

    _seed_supply_chain(fleet, stack)
    bar.update(1)

    _seed_emptied_repository(fleet)
    bar.update(1)
    return fleet.images


def _seed_supply_chain(fleet: FleetBuilder, stack) -> None:
    """The supply chain: signed builds (cosign ``sha256-<hex>.sig`` tags), an SBOM behind the
    referrers fallback tag, an index listing an index (platforms spelt two ways), a Windows
    image whose base layer is foreign; and Helm charts, dated by their annotation."""
    client, rng = fleet.client, fleet.rng
    repo = SUPPLY_REPOSITORY
    for n in range(7):
        moment = ANCHOR - timedelta(days=9 * (7 - n), hours=rng.randint(0, 12))
        app = fleet.layer(fleet.size(4_000, 60_000), f"{repo}-app{n}")
        digest = fleet.build(repo, [f"2.{n}.0"], {"linux/amd64": stack("alpine", "amd64")
                                                  + [app]}, _timestamp(moment, 0), oci=True)
        fleet.signature(repo, digest)
    top = client.manifest(repo, "2.6.0")
    fleet.sbom(repo, {"mediaType": top.media_type, "digest": top.digest, "size": top.size},
               _timestamp(ANCHOR - timedelta(days=2), 0))
    fleet.nested_index(
        repo, ["multi"],
        inner={"linux/amd64": stack("alpine", "amd64") + [fleet.layer(20_000, "multi-amd")],
               "linux/arm64/v8": stack("alpine", "arm64") + [fleet.layer(20_000, "multi-arm")]},
        outer={"linux/arm": [fleet.layer(fleet.size(900_000, 1_200_000), "multi-armv7")]},
        created=_timestamp(ANCHOR - timedelta(days=30), 0))
    fleet.foreign_image(repo, "windows", [fleet.layer(50_000, "windows-app")],
                        _timestamp(ANCHOR - timedelta(days=20), 0), foreign_size=100 << 20)
    for n, version in enumerate(("0.1.0", "0.2.0", "0.3.0", "1.0.0")):
        fleet.helm_chart(CHART_REPOSITORY, "storefront", version,
                         _timestamp(ANCHOR - timedelta(days=200 - 60 * n), 0))


def _seed_emptied_repository(fleet: FleetBuilder) -> None:
    """A repository whose every tag was deleted: same bytes as a live image, so nothing extra
    stays on disk; it remains in the catalog with "tags": null."""
    client = fleet.client
    top = client.manifest("base/debian", "bookworm")
    for layer in top.layers + [top.config]:
        fleet.push_blobs(EMPTY_REPOSITORY, [(layer.digest, b"")])
    client.put_manifest(EMPTY_REPOSITORY, "tmp", top.raw, top.media_type)
    client.delete(EMPTY_REPOSITORY, digest=top.digest)


#: Repositories that get a new build in :func:`make_history`'s push step.
HISTORY_PUSHES = ("payments/api", "data/etl", "storefront/search")


@dataclass
class HistoryStep:
    """One moment of :func:`make_history`: what was done, the snapshot taken after it and the
    blob bytes the registry's disk held then (summed from the storage's ``data`` files)."""

    action: str
    snapshot: object
    disk_bytes: int
    deleted: list = field(default_factory=list)
    pushed: list = field(default_factory=list)


def make_history(demo: DemoRegistry, store, *, keep_last: int = 10,
                 start: datetime | None = None, step: timedelta = timedelta(days=30),
                 seed: int = 11) -> list[HistoryStep]:
    """Give the demo registry a short review history: three snapshots in ``store``.

    1. ``start``: a snapshot of the seeded fleet. Default :data:`ANCHOR` + 1 day, or earlier
       when that would put the last snapshot less than a day before now: the history is in
       the past, so a report taken now is the newest snapshot;
    2. ``start + step``: after a cleanup (``retention_plan(keep_last=keep_last)``, the tags
       deleted through the API) and the registry's garbage collection;
    3. ``start + 2 * step``: after a push of one new build to each of :data:`HISTORY_PUSHES`
       (the base layers of its ``latest``, new dependency and application layers; a new
       version tag, and ``latest`` moved onto it), built a few days before.

    Each snapshot records the disk (``storage=`` the demo's storage directory). It changes the
    demo registry for good (deletes, garbage collection, pushes): use a demo of its own.

    Returns
    -------
    list of HistoryStep
        ``action`` ("seeded", "cleanup", "push"), the ``snapshot``, ``disk_bytes``, the
        ``deleted`` (repository, tag) pairs and the ``pushed`` (repository, tag) pairs.
    """
    from ..analysis.retention import deletions, retention_plan
    from ..frames.inventory import fetch_inventory
    from ..report.history import snapshot

    if start is None:
        latest = datetime.now(timezone.utc) - 2 * step - timedelta(days=1)
        start = min(ANCHOR + timedelta(days=1), latest)
    storage = demo.server.storage_dir
    steps: list[HistoryStep] = []

    def record(action: str, client: RegistryClient, when: datetime, **extra) -> None:
        inv = fetch_inventory(client, progress=False)
        taken = snapshot(inv, store, taken_at=when, storage=storage)
        steps.append(HistoryStep(action, taken, demo.server.blob_bytes(), **extra))

    with demo.client(cache=None) as client:
        record("seeded", client, start)
        tags = steps[0].snapshot.tags
        plan = retention_plan(tags, keep_last=keep_last, now=start)
        results = client.delete_many(deletions(plan), progress=False)
        deleted = [(r.repository, r.tag) for r in results if r.status == "deleted"]
        demo.server.garbage_collect()
        record("cleanup", client, start + step, deleted=deleted)

        fleet = FleetBuilder(client, seed)
        pushed = []
        built = start + 2 * step - timedelta(days=3)
        for n, repository in enumerate(HISTORY_PUSHES):
            current, = client.details_many([(repository, "latest")], progress=False)
            platforms = {}
            for image in current.images:
                arch = image.platform.split("/")[1]
                # the same base layers, new dependencies and application
                base = [_existing_layer(client, repository, layer.digest)
                        for layer in image.layers[:-2]]
                platforms[image.platform] = base + [
                    fleet.layer(fleet.size(200_000, 900_000), f"{repository}-deps-new-{arch}"),
                    fleet.layer(fleet.size(4_000, 300_000), f"{repository}-app-new-{arch}")]
            version = f"2.0.{n}"
            fleet.build(repository, [version, "latest"], platforms,
                        _timestamp(built + timedelta(hours=n), 0),
                        oci=current.media_type in (mt.OCI_MANIFEST, mt.OCI_INDEX))
            pushed += [(repository, version), (repository, "latest")]
        record("push", client, start + 2 * step, pushed=pushed)
    return steps


def _existing_layer(client: RegistryClient, repository: str, digest: str) -> _Layer:
    """A layer already in the registry, read back (to build a new image on it)."""
    buffer = io.BytesIO()
    client.blob(repository, digest, buffer)
    data = buffer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()
    return _Layer(digest, diff_id, data)


class DemoRegistry:
    """A seeded demo registry (context manager): starts, seeds, stops and cleans up.

    Parameters
    ----------
    seed : int
        Seed of the fleet; the same seed writes the same digests.
    storage_dir : path, optional
        Keep the registry's storage there (default: a temporary directory, removed on stop).

    Attributes
    ----------
    server : RegistryServer
    url : str
    images : list of SeededImage
        What the seeding wrote.

    Raises
    ------
    RegistryBinaryNotFound
        When Debian's ``docker-registry`` is not installed (the message says how to install it).
    """

    def __init__(self, seed: int = 7, storage_dir=None):
        self.seed = seed
        self.server = RegistryServer(storage_dir)
        self.images: list[SeededImage] = []
        # the registry ends with this object or with the interpreter (a notebook kernel shut
        # down or restarted), not in a last cell that "Run All" reaches
        self._finalizer = weakref.finalize(self, self.server.close)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, **kwargs) -> RegistryClient:
        """A RegistryClient for the demo registry (keyword arguments go to the client)."""
        return RegistryClient(self.url, **kwargs)

    def start(self, progress: bool | None = None) -> DemoRegistry:
        """Start the registry, then seed it (``progress``: a bar while seeding)."""
        self.server.start()
        self.seed_fleet(progress)
        return self

    def seed_fleet(self, progress: bool | None = None) -> list[SeededImage]:
        """Push the fleet into the started registry (what :meth:`start` does after starting)."""
        with RegistryClient(self.url, cache=None) as client:
            self.images = seed(client, self.seed, progress=progress)
        return self.images

    def stop(self) -> None:
        """Stop the registry and remove its storage, configuration and log.

        Not needed at the end of a notebook or script: the registry also stops when this object
        is garbage collected or the interpreter (the kernel) ends; a killed kernel is covered
        by the server's watcher process (:meth:`RegistryServer.close
        <registry_insights.testing.server.RegistryServer.close>`).
        """
        self._finalizer()

    def __enter__(self) -> DemoRegistry:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
