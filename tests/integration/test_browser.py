"""The TagBrowser in a real JupyterLab, driven in headless Chromium (Playwright with Debian's
``/usr/bin/chromium``; no browser is ever downloaded): filter, sort, select, preview, pull,
confirm, delete; then the registry is checked. A screenshot of the widget is saved with the
test's files; with ``REGISTRY_INSIGHTS_SCREENSHOTS=1`` it also replaces
``docs/tagbrowser-screenshot.png`` (the one the README shows).

Skipped, with the reason, only where Chromium is not installed (and never when ``CI`` is set).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

import registry_insights as ri
from registry_insights.testing.demo import FleetBuilder
from tests.support.fleet import push_fleet

ROOT = Path(__file__).parents[2]
CHROMIUM = os.environ.get("REGISTRY_INSIGHTS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "tagbrowser-screenshot.png"
APP = "team/app"  # a, b, c on one digest; old alone

pytestmark = pytest.mark.integration


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        reason = (f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium); "
                  "the browser test never downloads one")
        if _in_ci():
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jupyterlab")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on a free loopback port with a token, every file under ``tmp_path``."""
    port, token = _free_port(), secrets.token_hex(16)
    root = tmp_path / "lab"
    root.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MPLBACKEND": "Agg",
    })
    # nothing leaves the machine: no news, no update check, no PyPI extension manager
    config = {
        "ServerApp": {"terminals_enabled": False, "allow_root": os.geteuid() == 0,
                      "jpserver_extensions": {"jupyter_lsp": False}},
        "LabApp": {"news_url": None, "extension_manager": "readonly",
                   "check_for_updates_class":
                       "jupyterlab.handlers.announcements.NeverCheckForUpdate"},
    }
    (tmp_path / "jupyter-config").mkdir()
    for name in ("jupyter_server_config.json", "jupyter_lab_config.json"):
        (tmp_path / "jupyter-config" / name).write_text(json.dumps(config))
    notification = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = open(tmp_path / "jupyterlab.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (tmp_path / "jupyterlab.log").read_text()[-3000:]
                                       ) from None
                time.sleep(0.2)
        yield url, token, root
    finally:
        process.terminate()  # the server shuts its kernels down
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def registry(make_registry):
    """An anonymous registry of the test's own: team/app (a, b, c sharing a digest; old) and
    push_fleet's team/r0..r2 (v0..v5, latest; every third tag a two-platform index)."""
    handle = make_registry("anonymous")
    client = ri.RegistryClient(handle.url, cache=None)
    fleet = FleetBuilder(client, 3)
    base = fleet.layer(40_000, "app-base")
    shared = fleet.build(APP, ["a", "b", "c"],
                         {"linux/amd64": [base, fleet.layer(9_000, "app-abc")]},
                         "2025-06-01T00:00:00Z", oci=True)
    fleet.build(APP, ["old"], {"linux/amd64": [base, fleet.layer(12_000, "app-old")]},
                "2024-01-15T00:00:00Z", oci=False)
    push_fleet(client, "team", repositories=3, tags=6)
    try:
        yield handle, client, shared
    finally:
        client.close()


def heads(client, repository):
    return {t: client.head_manifest(repository, t).digest for t in client.tags(repository)}


def test_tagbrowser_in_jupyterlab_with_chromium(chromium, jupyterlab, registry, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, token, root = jupyterlab
    handle, client, shared = registry
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import registry_insights as ri\n"
        f"client = ri.RegistryClient({handle.url!r}, cache=None)\n"
        f"browser = ri.TagBrowser(client, now='2025-09-01', directory={str(root / 'layouts')!r})"
        "\nbrowser")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, root / "browser.ipynb")
    before = heads(client, APP)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            # generous: as the suite's first test it meets cold caches (JupyterLab's first
            # start, the first kernel); these are waits, not performance assertions
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/browser.ipynb?token={token}")
            # run the cell once the kernel is idle
            page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                "#jp-main-statusbar :text('Idle')").first).to_be_visible(
                timeout=120_000)
            page.keyboard.press("Shift+Enter")
            widget = page.locator(".ri-browser")
            expect(widget).to_be_visible(timeout=120_000)
            page.keyboard.press("Control+b")  # fold the file browser: the table gets the width
            cells = widget.locator(".ri-cell-tag")
            expect(widget.locator(".ri-page")).to_contain_text("of 25 shown")

            # filter: one repository, then tag text
            widget.locator(".ri-repository select").select_option(APP)
            expect(widget.locator(".ri-page")).to_contain_text("rows 1–4 of 4 shown")
            # sort by build date, oldest first; a second click turns it around
            widget.locator(".ri-head-created_at").click()
            expect(cells.first).to_have_text("old")
            widget.locator(".ri-head-created_at").click()
            expect(widget.locator(".ri-head-created_at")).to_have_text("Built (UTC) ▼")
            expect(cells.nth(3)).to_have_text("old")
            widget.locator(".ri-text input").fill("a")
            expect(widget.locator(".ri-page")).to_contain_text("of 1 shown")
            widget.locator(".ri-text input").fill("")
            expect(widget.locator(".ri-page")).to_contain_text("of 4 shown")

            # select b (row of the tag "b") and old: the summary follows
            tags = [t.strip() for t in cells.all_inner_texts()[:4]]
            for name in ("b", "old"):
                widget.locator(f".ri-row-{tags.index(name)} input").check()
            summary = widget.locator(".ri-summary")
            expect(summary).to_contain_text("2 tag(s) selected")
            expect(summary).to_contain_text("2 sibling tag(s) on these digests stay: "
                                            "team/app:a, team/app:c")

            # preview, then pull a copy (worker thread, progress bar)
            widget.locator(".ri-preview").click()
            output = widget.locator(".ri-output")
            expect(output).to_contain_text("Deleting 2 tag(s) deletes 1 manifest(s)")
            expect(output).to_contain_text("Garbage collection would then free")
            page.wait_for_timeout(300)
            shot = tmp_path / "tagbrowser.png"
            widget.screenshot(path=str(shot))
            widget.locator(".ri-pull").click()
            expect(output).to_contain_text("2 layout(s) under", timeout=60_000)
            expect(widget.locator(".ri-progress-label")).to_contain_text("pull: done")

            # delete needs the confirmation; then per-tag outcomes
            expect(widget.locator(".ri-delete")).to_be_disabled()
            widget.locator(".ri-confirm input").check()
            expect(widget.locator(".ri-delete")).to_be_enabled()
            widget.locator(".ri-delete").click()
            expect(output).to_contain_text("team/app:old: deleted: manifest", timeout=60_000)
            expect(output).to_contain_text("team/app:b: deleted (tag only)")
            expect(output).to_contain_text("team/app:a: kept")
            expect(output).to_contain_text("only when its garbage collection runs")
            expect(widget.locator(".ri-page")).to_contain_text("of 2 shown")
            expect(widget.locator(".ri-confirm input")).not_to_be_checked()
        finally:
            browser.close()

    after = heads(client, APP)
    assert after == {"a": shared, "c": shared}
    assert before["b"] == shared and "old" in before
    for tag in ("b", "old"):
        assert (root / "layouts" / APP / tag / "index.json").exists()
    assert shot.stat().st_size > 20_000
    if os.environ.get("REGISTRY_INSIGHTS_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)
