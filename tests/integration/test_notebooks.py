"""The notebooks in notebooks/ run top to bottom (nbclient, a fresh kernel each): on the demo with
their defaults, and with parameters injected after the cell tagged ``parameters`` (as papermill
does; no code cell edited) pointing at a basic-auth registry, credentials from the environment or
a docker configuration. A kernel that started a registry leaves no process and no temporary
storage when it is shut down, restarted or killed."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import registry_insights as ri
from tests.support.fleet import push_fleet

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]

pytestmark = pytest.mark.integration


def kernel_environment(monkeypatch, tmp_path: Path) -> Path:
    """The kernel's environment: this checkout first on the path, temporary files and the user
    cache under ``tmp_path``; returns the kernel's temporary directory."""
    temp = tmp_path / "kernel-tmp"
    temp.mkdir()
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    for name in ("REGISTRY_INSIGHTS_USERNAME", "REGISTRY_INSIGHTS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    return temp


def run(path: Path, workdir: Path, parameters: dict | None = None) -> nbformat.NotebookNode:
    """Execute the notebook; ``parameters`` go into a new cell after the ``parameters`` cell."""
    notebook = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: one cell tagged 'parameters'"
    if parameters:
        source = "# injected parameters\n" + "".join(
            f"{name} = {value!r}\n" for name, value in parameters.items())
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["injected-parameters"]
        notebook.cells.insert(tagged[0] + 1, cell)
    workdir.mkdir(parents=True, exist_ok=True)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], errors
    return notebook


def text_of(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            else:
                parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def registry_processes(marker: str) -> list[int]:
    """PIDs of docker-registry processes whose command line mentions ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"docker-registry") and any(marker.encode() in a
                                                                for a in argv):
            found.append(int(pid))
    return found


def assert_cleaned(temp: Path, timeout: float = 15.0) -> None:
    """No registry process and nothing of ours left under the kernel's temporary directory."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(p.name for p in temp.glob("registry-insights-*"))
        running = registry_processes(str(temp))
        if not left and not running:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: {left}, registry processes {running}")
        time.sleep(0.2)


def heads(client) -> dict[tuple[str, str], str]:
    """Every tag of the registry and its digest, asked fresh."""
    return {(repo, tag): client.head_manifest(repo, tag).digest
            for repo in client.repositories() for tag in client.tags(repo)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_on_the_demo_and_the_kernel_cleans_up(path, tmp_path, monkeypatch):
    temp = kernel_environment(monkeypatch, tmp_path)
    notebook = run(path, tmp_path / "work")
    text = text_of(notebook)
    assert "auth: anonymous" in text and "now: 2026-11-01 00:00 UTC" in text  # the demo's date
    assert "14 repositories" in text
    if path.stem == "cleanup_review":
        assert "DELETE is False: nothing was deleted" in text
        assert "nothing to collect here: DELETE is False" in text
        assert "the plan deletes" in text and "the plan deletes 0 " not in text
    if path.stem == "inventory":
        assert (tmp_path / "work" / "out" / "tags.csv").stat().st_size > 10_000
    if path.stem == "capacity_review":
        assert (tmp_path / "work" / "out" / "report" / "report.html").exists()
        assert "capacity: 200.0 MiB" in text
    # the kernel was shut down by nbclient: the demo's registry and storage are gone with it
    assert_cleaned(temp)


@pytest.fixture
def small_registry(make_registry):
    """A basic-auth registry of the test's own with two repositories (v0..v6 and latest; every
    third tag a two-platform index)."""
    handle = make_registry("basic")
    client = ri.RegistryClient(handle.url, username=handle.username, password=handle.password,
                               cache=None)
    push_fleet(client, "nb", repositories=2, tags=7)
    try:
        yield handle, client
    finally:
        client.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_on_a_registry_with_credentials(path, small_registry, tmp_path,
                                                      monkeypatch):
    handle, client = small_registry
    temp = kernel_environment(monkeypatch, tmp_path)
    if path.stem == "inventory":  # credentials from a docker configuration
        config = tmp_path / "docker"
        config.mkdir()
        auth = base64.b64encode(f"{handle.username}:{handle.password}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {handle.host: {"auth": auth}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(config))
    else:  # credentials from the environment
        monkeypatch.setenv("REGISTRY_INSIGHTS_USERNAME", handle.username)
        monkeypatch.setenv("REGISTRY_INSIGHTS_PASSWORD", handle.password)
    before = heads(client)
    out = tmp_path / "out"
    parameters = {"REGISTRY": handle.url, "NOW": "2025-09-01", "OUTPUT": str(out)}
    if path.stem == "capacity_review":
        parameters["CAPACITY"] = "1MiB"
    notebook = run(path, tmp_path / "work", parameters)
    text = text_of(notebook)
    assert f"{handle.url} | auth: basic | identity: {handle.username}" in text
    assert "now: 2025-09-01 00:00 UTC" in text
    assert "2 repositories, 16 tags" in text
    assert handle.password not in json.dumps(notebook)  # never in an output
    assert heads(client) == before  # nothing deleted (DELETE = False in the cleanup notebook)
    assert_cleaned(temp)
    if path.stem == "inventory":
        tags_csv = (out / "tags.csv").read_text()
        assert tags_csv.count("\n") == 1 + 2 * (8 + 2)  # 8 tags, v2 and v5 on two platforms
        assert "nb/r1" in tags_csv and "demo" not in tags_csv
    if path.stem == "capacity_review":
        assert "capacity: 1.0 MiB" in text
        assert (out / "report" / "report.html").exists()
    if path.stem == "cleanup_review":
        assert "the plan deletes 4 of 16 tags in 2 repositories" in text
        assert "DELETE is False: nothing was deleted (4 tag(s) selected)" in text
        # the same notebook with DELETE = True deletes exactly the plan's tags
        deleted = text_of(run(path, tmp_path / "work2", {**parameters, "DELETE": True}))
        assert "4 deleted. The registry frees the space" in deleted
        assert "nothing to collect here: not the demo registry" in deleted
        gone = {(f"nb/r{r}", f"v{t}") for r in range(2) for t in range(2)}
        assert heads(client) == {k: v for k, v in before.items() if k not in gone}


def test_kernel_restart_and_kill_leave_no_registry_and_no_storage(tmp_path, monkeypatch):
    pytest.importorskip("ipykernel")
    temp = kernel_environment(monkeypatch, tmp_path)
    start = ("from registry_insights.testing.server import RegistryServer\n"
             "server = RegistryServer().start()\n"
             "print(server.pid, server.storage_dir)\n")
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path))
    try:
        for how in ("restart", "kill"):
            client = manager.client()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=60)
                reply = client.execute_interactive(start, timeout=60)
                assert reply["content"]["status"] == "ok"
            finally:
                client.stop_channels()
            assert registry_processes(str(temp)) and list(temp.glob("registry-insights-*"))
            if how == "restart":
                manager.restart_kernel(now=False)  # what JupyterLab's "Restart Kernel" does
            else:
                manager.shutdown_kernel(now=True)  # SIGKILL: no atexit in the kernel
            assert_cleaned(temp)
    finally:
        if manager.is_alive():
            manager.shutdown_kernel(now=True)


def test_there_are_three_notebooks():
    assert NAMES == ["capacity_review", "cleanup_review", "inventory"]
