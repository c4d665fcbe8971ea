"""``client.pull``: OCI image layouts checked by Debian's skopeo (an independent client) and
copied into a second registry; interrupted pulls; layout bookkeeping. Registries: anonymous."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import registry_insights as ri
from registry_insights.cli import main
from registry_insights.registry.layout import (
    REF_NAME,
    TEMP_SUFFIX,
    add_to_index,
    discard_leftovers,
    open_layout,
)
from registry_insights.testing.demo import FleetBuilder

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None and not os.environ.get("CI"),
                                  reason="skopeo is not installed (apt-get install skopeo)")


def push_images(client, repo):
    """v-oci (OCI image), v-docker (Docker schema 2), multi-oci (OCI index, amd64 + arm64
    sharing a layer; also ``latest``) and multi-docker (Docker manifest list)."""
    fleet = FleetBuilder(client, 11)
    shared = fleet.layer(150_000, f"{repo}-shared")
    amd = fleet.layer(120_000, f"{repo}-amd")
    arm = fleet.layer(110_000, f"{repo}-arm")
    app = fleet.layer(90_000, f"{repo}-app")
    created = "2026-03-01T10:00:00Z"
    return {
        "v-oci": fleet.build(repo, ["v-oci"], {"linux/amd64": [amd, shared]}, created, oci=True),
        "v-docker": fleet.build(repo, ["v-docker"], {"linux/amd64": [amd, app]}, created,
                                oci=False),
        "multi-oci": fleet.build(repo, ["multi-oci", "latest"],
                                 {"linux/amd64": [amd, shared, app],
                                  "linux/arm64": [arm, shared, app]}, created, oci=True),
        "multi-docker": fleet.build(repo, ["multi-docker"],
                                    {"linux/amd64": [amd, app], "linux/arm64": [arm, app]},
                                    created, oci=False),
    }


@pytest.fixture(scope="module")
def source(anonymous_registry):
    repo = "pull/app"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        digests = push_images(client, repo)
    return anonymous_registry, repo, digests


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def check_layout(root: Path) -> dict:
    """Every blob hashes to its name, no temporary file is left; return index.json."""
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for path in (root / "blobs" / "sha256").iterdir():
        assert not path.name.endswith(TEMP_SUFFIX), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    return json.loads((root / "index.json").read_text())


def skopeo(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([SKOPEO or "skopeo", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result


@needs_skopeo
def test_layouts_pass_skopeo_and_copy_to_a_second_registry(source, make_registry, tmp_path):
    handle, repo, digests = source
    target = make_registry("anonymous")
    layout = tmp_path / "layout"
    with ri.RegistryClient(handle.url, cache=None) as client:
        for tag in ("v-oci", "multi-oci", "latest"):
            assert client.pull(repo, tag, layout, progress=False) == layout
        index = check_layout(layout)
        assert [(m.get("annotations", {}).get(REF_NAME), m["digest"])
                for m in index["manifests"]] == [
            ("v-oci", digests["v-oci"]), ("multi-oci", digests["multi-oci"]),
            ("latest", digests["multi-oci"])]
        # the index, two platform manifests, two configs and four layers, shared by three
        # tags; v-oci adds a manifest and a config (its layers are already there)
        assert len(list((layout / "blobs" / "sha256").iterdir())) == 9 + 2
        # Docker media types: skopeo 1.9 finds index.json entries by tag only when they have
        # OCI media types, so these go in layouts of one image each (oci:DIR)
        for tag in ("v-docker", "multi-docker"):
            client.pull(repo, tag, tmp_path / tag, progress=False)
            check_layout(tmp_path / tag)
    inspected = json.loads(skopeo("inspect", f"oci:{layout}:v-oci").stdout)
    assert inspected["Digest"] == digests["v-oci"]
    assert inspected["Architecture"] == "amd64"
    raw = skopeo("inspect", "--raw", f"oci:{layout}:multi-oci").stdout
    assert hashlib.sha256(raw.encode()).hexdigest() == digests["multi-oci"][7:]
    copies = {"v-oci": f"oci:{layout}:v-oci", "multi-oci": f"oci:{layout}:multi-oci",
              "v-docker": f"oci:{tmp_path / 'v-docker'}",
              "multi-docker": f"oci:{tmp_path / 'multi-docker'}"}
    for tag, ref in copies.items():
        skopeo("copy", "--all", "--dest-tls-verify=false", ref,
               f"docker://{target.host}/copied/app:{tag}")
    with ri.RegistryClient(target.url, cache=None) as copy:
        for tag in copies:
            assert copy.manifest("copied/app", tag).digest == digests[tag]
        details = copy.tag_details("copied/app", "multi-oci")
        assert sorted(i.platform for i in details.images) == ["linux/amd64", "linux/arm64"]


@needs_skopeo
def test_one_platform_of_an_index(source, tmp_path):
    handle, repo, digests = source
    layout = tmp_path / "arm"
    with ri.RegistryClient(handle.url, cache=None) as client:
        top = client.manifest(repo, "multi-oci")
        arm = [d for d in top.manifests if d.platform.architecture == "arm64"][0]
        client.pull(repo, "multi-oci", layout, platform="linux/arm64", progress=False)
        with pytest.raises(ri.NotFound, match="linux/amd64, linux/arm64"):
            client.pull(repo, "multi-oci", tmp_path / "s390x", platform="linux/s390x",
                        progress=False)
        with pytest.raises(ri.NotFound, match="single linux/amd64 image, not linux/arm64"):
            client.pull(repo, "v-oci", tmp_path / "wrong", platform="linux/arm64",
                        progress=False)
        with pytest.raises(ri.InvalidReference, match="platform"):
            client.pull(repo, "multi-oci", tmp_path / "bad", platform="arm64", progress=False)
    index = check_layout(layout)
    assert len(index["manifests"]) == 1
    entry = index["manifests"][0]
    assert entry["digest"] == arm.digest
    assert entry["platform"] == {"architecture": "arm64", "os": "linux"}
    # the platform manifest, its config, its three layers: not the index, not amd64
    assert len(list((layout / "blobs" / "sha256").iterdir())) == 5
    inspected = json.loads(skopeo("inspect", f"oci:{layout}:multi-oci").stdout)
    assert inspected["Architecture"] == "arm64" and inspected["Digest"] == arm.digest


KILLER = textwrap.dedent("""
    import os, signal, sys
    from registry_insights.registry.client import RegistryClient

    url, repo, tag, directory, kill_at = sys.argv[1:6]
    original = RegistryClient.blob
    calls = []

    def blob(self, repository, digest, fileobj, chunk_size=1 << 20, **kwargs):
        calls.append(digest)
        if len(calls) < int(kill_at):
            return original(self, repository, digest, fileobj, chunk_size, **kwargs)

        class HalfThenDie:
            def write(self, data):
                fileobj.write(data[: len(data) // 2])
                fileobj.handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)

        return original(self, repository, digest, HalfThenDie(), chunk_size, **kwargs)

    RegistryClient.blob = blob
    with RegistryClient(url, cache=None, max_workers=1) as client:
        client.pull(repo, tag, directory, progress=False)
""")


def test_killed_pull_resumes_to_the_same_tree_as_a_clean_pull(source, tmp_path):
    handle, repo, _digests = source
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    with ri.RegistryClient(handle.url, cache=None) as client:
        client.pull(repo, "multi-oci", clean, progress=False)
        blobs_needed = client.request_counts["blob"]
    assert blobs_needed == 6  # two configs, four layers
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, handle.url, repo, "multi-oci", str(resumed), "4"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(ri.__file__).parent.parent)},
    )
    assert killed.returncode == -9, killed.stderr
    blob_dir = resumed / "blobs" / "sha256"
    partial = [p for p in blob_dir.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    complete = [p for p in blob_dir.iterdir() if not p.name.endswith(TEMP_SUFFIX)]
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    assert len(complete) == 3
    assert not (resumed / "index.json").exists()  # a half-done pull never looks done
    # one complete blob also got truncated (a crash of some other tool, a full disk)
    with open(complete[0], "r+b") as handle_:
        handle_.truncate(10)
    with ri.RegistryClient(handle.url, cache=None) as client:
        client.pull(repo, "multi-oci", resumed, progress=False)
        # present and intact: verified, not fetched; truncated and missing: fetched
        assert client.request_counts["blob"] == 1 + (6 - 3)
        client.request_counts.clear()
        client.pull(repo, "multi-oci", resumed, progress=False)
        assert client.request_counts["blob"] == 0
    assert tree(resumed) == tree(clean)
    check_layout(resumed)


def test_layout_bookkeeping(tmp_path):
    root = tmp_path / "layout"
    open_layout(root)
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": "sha256:" + "a" * 64, "size": 10}
    add_to_index(root, entry, "v1")
    add_to_index(root, {**entry, "digest": "sha256:" + "b" * 64}, "v2")
    add_to_index(root, {**entry, "digest": "sha256:" + "c" * 64}, "v1")  # replaces v1
    add_to_index(root, entry, None)
    add_to_index(root, entry, None)  # unnamed: one entry per digest
    index = json.loads((root / "index.json").read_text())
    assert [(m["digest"][7], m.get("annotations", {}).get(REF_NAME))
            for m in index["manifests"]] == [("b", "v2"), ("c", "v1"), ("a", None)]
    # leftovers of a dead pull go; a file a live pull holds (locked) stays
    stale = root / "blobs" / "sha256" / f".{'d' * 64}.x1{TEMP_SUFFIX}"
    live = root / "blobs" / "sha256" / f".{'e' * 64}.x2{TEMP_SUFFIX}"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    with open(live, "wb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert discard_leftovers(root) == [stale]
    assert live.exists() and not stale.exists()
    other = tmp_path / "not-a-layout"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an OCI image layout"):
        open_layout(other)


def test_pull_command(source, tmp_path, capsys):
    handle, repo, digests = source
    layout = tmp_path / "cli"
    assert main(["pull", handle.url, f"{repo}:multi-oci", str(layout), "--platform",
                 "linux/amd64", "--no-cache"]) == 0
    assert f"oci:{layout}:multi-oci" in capsys.readouterr().out
    index = check_layout(layout)
    assert index["manifests"][0]["platform"]["architecture"] == "amd64"
    assert main(["pull", handle.url, f"{repo}@{digests['v-oci']}", str(layout),
                 "--no-cache"]) == 0
    assert json.loads((layout / "index.json").read_text())["manifests"][-1] == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digests["v-oci"], "size": (layout / "blobs" / "sha256" /
                                             digests["v-oci"][7:]).stat().st_size}
    assert main(["pull", handle.url, "Bad:tag", str(layout), "--no-cache"]) == 2
    assert main(["pull", handle.url, f"{repo}:nope", str(layout), "--no-cache"]) == 1
    capsys.readouterr()


# -- issue 10 item 9: parallel pulls into one layout ----------------------------------------
PARALLEL_TAGS = [f"p{i}" for i in range(8)]


@pytest.fixture(scope="module")
def parallel_source(anonymous_registry):
    """Eight OCI tags sharing a base layer; every other one a two-platform index."""
    repo = "pull/parallel"
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 12)
        base = fleet.layer(300_000, "parallel-base")
        digests = {}
        for i, tag in enumerate(PARALLEL_TAGS):
            platforms = {"linux/amd64": [base, fleet.layer(40_000 + i, f"parallel-{i}")]}
            if i % 2:
                platforms["linux/arm64"] = [base, fleet.layer(30_000 + i, f"parallel-arm-{i}")]
            digests[tag] = fleet.build(repo, [tag], platforms, "2026-03-01T10:00:00Z", oci=True)
    return anonymous_registry, repo, digests


@needs_skopeo
def test_parallel_pulls_by_processes_and_threads_into_one_layout(parallel_source, tmp_path):
    """Four ``registry-insights pull`` processes and four threads pull eight tags into one
    layout at once; the threads pull again while the processes run (each pull sweeps
    leftovers and rewrites index.json). Every pull succeeds, index.json names every tag, no
    temporary file is left, and skopeo opens each tag."""
    from concurrent.futures import ThreadPoolExecutor

    handle, repo, digests = parallel_source
    env = {**os.environ, "PYTHONPATH": str(Path(ri.__file__).parent.parent)}
    by_process, by_thread = PARALLEL_TAGS[:4], PARALLEL_TAGS[4:]
    for attempt in range(2):
        layout = tmp_path / f"shared-{attempt}"
        processes = [subprocess.Popen(
            [sys.executable, "-m", "registry_insights.cli", "pull", handle.url,
             f"{repo}:{tag}", str(layout), "--no-cache"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for tag in by_process]

        def pull(tag: str, layout: Path = layout, processes: list = processes) -> int:
            pulls = 0
            with ri.RegistryClient(handle.url, cache=None, max_workers=4) as client:
                while pulls < 25 and (pulls == 0 or any(p.poll() is None for p in processes)):
                    client.pull(repo, tag, layout, progress=False)
                    pulls += 1
            return pulls

        with ThreadPoolExecutor(len(by_thread)) as pool:
            pulls = list(pool.map(pull, by_thread))  # re-raises a failed pull
        for tag, process in zip(by_process, processes):
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, f"{tag}: {err}"
            assert f"pulled {repo}:{tag} into {layout}" in out
        assert min(pulls) >= 1
        index = check_layout(layout)
        names = {m["annotations"][REF_NAME]: m["digest"] for m in index["manifests"]}
        assert names == digests
        assert len(index["manifests"]) == len(PARALLEL_TAGS)
        assert [p.name for p in layout.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []
    for tag in PARALLEL_TAGS:
        inspected = json.loads(skopeo("inspect", f"oci:{layout}:{tag}").stdout)
        assert inspected["Digest"] in (digests[tag], *[
            m["digest"] for m in json.loads((layout / "blobs" / "sha256" /
                                             digests[tag][7:]).read_text()).get("manifests", [])])


def test_a_temporary_file_swept_before_its_lock_is_replaced(tmp_path, monkeypatch):
    """The window the parallel test hits by chance, made certain: another pull's sweep of
    leftovers removes a temporary file between its creation and its lock."""
    from registry_insights.registry import layout

    root = tmp_path / "layout"
    open_layout(root)
    real_flock = fcntl.flock
    swept: list[list[Path]] = []

    def flock(fd, operation):
        target = os.readlink(f"/proc/self/fd/{fd if isinstance(fd, int) else fd.fileno()}")
        if operation == fcntl.LOCK_EX and target.endswith(TEMP_SUFFIX) and not swept:
            swept.append(discard_leftovers(root))  # not locked yet: taken for a leftover
        return real_flock(fd, operation)

    monkeypatch.setattr(layout.fcntl, "flock", flock)
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": "sha256:" + "a" * 64, "size": 10}
    add_to_index(root, entry, "v1")
    assert len(swept) == 1 and len(swept[0]) == 1
    assert swept[0][0].name.startswith(".index.json.")
    index = json.loads((root / "index.json").read_text())
    assert [m["annotations"][REF_NAME] for m in index["manifests"]] == ["v1"]
    assert [p.name for p in root.iterdir() if p.name.endswith(TEMP_SUFFIX)] == []


def test_demo_nested_index_platform_spellings_and_foreign_layers(demo_registry,
                                                                 anonymous_registry, tmp_path):
    """The demo's index listing an index, its ``linux/arm64/v8`` and ``linux/arm`` entries,
    and an OCI image with a non-distributable layer (its ``urls`` point elsewhere)."""
    from registry_insights.testing.demo import SUPPLY_REPOSITORY as repo

    with demo_registry.client(cache=None) as client:
        top = client.manifest(repo, "multi")
        inner = client.manifest(repo, top.manifests[0].digest)
        arm64 = next(d for d in inner.manifests if d.platform.architecture == "arm64")
        assert arm64.platform.variant == "v8"
        for asked in ("linux/arm64", "linux/arm64/v8", "linux/aarch64"):
            layout = tmp_path / asked.replace("/", "-")
            client.pull(repo, "multi", layout, platform=asked, progress=False)
            entry = check_layout(layout)["manifests"][0]
            assert entry["digest"] == arm64.digest
        armv7 = top.manifests[1]
        for asked in ("linux/arm", "linux/arm/v7"):
            layout = tmp_path / asked.replace("/", "-")
            client.pull(repo, "multi", layout, platform=asked, progress=False)
            assert check_layout(layout)["manifests"][0]["digest"] == armv7.digest
        with pytest.raises(ri.NotFound, match="it has: linux/amd64, linux/arm, linux/arm64/v8"):
            client.pull(repo, "multi", tmp_path / "none", platform="linux/s390x",
                        progress=False)
        # the whole nested index: both indexes, three images
        whole = tmp_path / "whole"
        client.pull(repo, "multi", whole, progress=False)
        check_layout(whole)
        names = {p.name for p in (whole / "blobs" / "sha256").iterdir()}
        assert {top.digest[7:], inner.digest[7:], arm64.digest[7:], armv7.digest[7:]} <= names
        # foreign layers are not fetched (the registry does not hold them), Docker and OCI
        layout = tmp_path / "windows"
        client.pull(repo, "windows", layout, platform="windows/amd64", progress=False)
        check_layout(layout)
    with ri.RegistryClient(anonymous_registry.url, cache=None) as client:
        fleet = FleetBuilder(client, 3)
        fleet.foreign_image("pull/foreign", "oci", [fleet.layer(5_000, "foreign-oci")],
                            "2026-02-01T00:00:00Z", foreign_size=1 << 20, oci=True)
        layout = tmp_path / "foreign-oci"
        client.pull("pull/foreign", "oci", layout, progress=False)
        check_layout(layout)
        manifest = client.manifest("pull/foreign", "oci")
        held = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
        assert manifest.layers[0].is_foreign and manifest.layers[0].digest[7:] not in held
        assert manifest.layers[1].digest[7:] in held
