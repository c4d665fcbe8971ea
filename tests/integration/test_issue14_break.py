"""Adversarial probes of the issue 14 speed changes (transport lean path, light cache reads,
cold walks, the hand-written Manifest), against the real registry."""

from __future__ import annotations

import copy
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import threading

import pytest

import registry_insights as ri
from registry_insights.registry.models import Manifest
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, Request, RewritingProxy, client_for, refuse_first


@pytest.fixture(scope="module")
def fleet(anonymous_registry):
    with client_for(anonymous_registry.url, anonymous_registry) as client:
        return push_fleet(client, "brk", repositories=2, tags=3)


def _snapshot(client, repository):
    """{tag: (digest, config digest of each image)} read through ``client``."""
    out = {}
    for tag in client.tags(repository):
        details = client.tag_details(repository, tag)
        out[tag] = (details.digest, tuple(i.config_digest for i in details.images))
    return out


def _expected(fleet, repository):
    out = {}
    for image in fleet:
        if image.repository == repository:
            out.setdefault(image.tag, [image.digest, []])[1].append(image.config_digest)
    return {t: (d, tuple(sorted(c))) for t, (d, c) in out.items()}


def _sorted(snap):
    return {t: (d, tuple(sorted(c))) for t, (d, c) in snap.items()}


def _rows(cache_dir):
    dbs = [os.path.join(root, f) for root, _, files in os.walk(cache_dir) for f in files
           if f.endswith(".sqlite")]
    assert dbs, "no cache database written"
    return dbs


# -- cache: corrupt rows ---------------------------------------------------------------------
def test_corrupt_mutable_row_is_a_miss(anonymous_registry, fleet, tmp_path):
    repo = "brk/r0"
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
    broken = 0
    for db in _rows(tmp_path):
        with sqlite3.connect(db) as con:
            if con.execute("SELECT name FROM sqlite_master WHERE name='responses'").fetchone():
                broken += con.execute("UPDATE responses SET value = ?",
                                      (b"not an answer row",)).rowcount
    assert broken >= 3
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        assert sorted(client.tags(repo)) == sorted(_expected(fleet, repo))
        assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)


# -- transport: cookies, prefixes, hosts -----------------------------------------------------
def test_sticky_cookie_is_sent_back_on_the_lean_path(anonymous_registry, fleet):
    repo = "brk/r1"
    cookies = []
    with RewritingProxy(anonymous_registry.url) as proxy:
        def record(request):
            cookies.append((request.path, request.headers.get("Cookie")))

        def sticky(request, reply):
            reply.headers.append(("Set-Cookie", "lb=node-7; Path=/"))
            return reply
        proxy.rules.append(record)
        proxy.rewrites.append(sticky)
        with client_for(proxy.url, anonymous_registry) as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
    assert len(cookies) > 5
    assert cookies[0][1] is None
    assert [c for c in cookies[1:] if c[1] != "lb=node-7"] == []


def _prefixed(proxy, prefix="/reg"):
    def strip(request):
        if not request.path.startswith(prefix + "/"):
            return Reply(404, [("Content-Type", "text/plain")], b"outside the prefix")
        inner = Request(request.n, request.method, request.path[len(prefix):],
                        request.headers, request.body)
        return proxy.forward(inner)
    proxy.rules.append(strip)


def test_base_url_with_a_path_prefix(anonymous_registry, fleet, tmp_path):
    repo = "brk/r0"
    with RewritingProxy(anonymous_registry.url) as proxy:
        _prefixed(proxy)
        with client_for(proxy.url + "/reg", anonymous_registry, cache=tmp_path) as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert set(client.repositories()) >= {"brk/r0", "brk/r1"}
            sent = len(proxy.log)
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert len(proxy.log) == sent  # warm: all from the cache
    assert all(path.startswith("/reg/v2/") for _, path, _ in proxy.log)


def test_upper_case_host_and_ipv6_literal(anonymous_registry, fleet, tmp_path):
    repo = "brk/r1"
    upper = anonymous_registry.url.replace("127.0.0.1", "LocalHost") \
        if "127.0.0.1" in anonymous_registry.url else anonymous_registry.url.upper()
    with RewritingProxy(anonymous_registry.url) as proxy:
        with client_for(proxy.url.replace("127.0.0.1", "LOCALHOST"), anonymous_registry,
                        cache=tmp_path / "a") as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            sent = len(proxy.log)
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert len(proxy.log) == sent
    assert upper
    with RewritingProxy(anonymous_registry.url, host="::1") as proxy6:
        assert proxy6.url.startswith("http://[::1]:")
        with client_for(proxy6.url, anonymous_registry, cache=tmp_path / "b") as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            sent = len(proxy6.log)
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert len(proxy6.log) == sent


def test_link_with_odd_query_is_followed_verbatim(anonymous_registry, fleet):
    repo = "brk/r0"
    with RewritingProxy(anonymous_registry.url) as proxy:
        first = sorted(_expected(fleet, repo))[0]

        def page(request):
            if request.path == f"/v2/{repo}/tags/list":
                body = json.dumps({"name": repo, "tags": [first]}).encode()
                link = f'<{proxy.url}/v2/{repo}/tags/list?last={first}&n=50&q=a%2Fb~c>; ' \
                       'rel="next"'
                return Reply(200, [("Content-Type", "application/json"), ("Link", link)], body)
            return None
        proxy.rules.append(page)
        with client_for(proxy.url, anonymous_registry) as client:
            assert client.tags(repo) == sorted(_expected(fleet, repo))
    assert (f"/v2/{repo}/tags/list?last={first}&n=50&q=a%2Fb~c") in \
        [path for _, path, _ in proxy.log]


def test_429_with_retry_after_is_retried_on_the_lean_path(anonymous_registry, fleet):
    repo = "brk/r1"
    with RewritingProxy(anonymous_registry.url) as proxy:
        once = refuse_first("/manifests/", 429, [("Retry-After", "1"),
                                                  ("Content-Type", "text/plain")], b"slow down")
        proxy.rules.append(once)
        with client_for(proxy.url, anonymous_registry) as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert client.request_counts["retry"] == 1
    assert [s for _, p, s in proxy.log if p == once.refused[0]][:2] == [429, 200]


def test_unusual_names_allowed_by_the_spec(anonymous_registry, tmp_path):
    from registry_insights.testing.demo import FleetBuilder

    repo = "brk/a__b.c-d/e_f"
    names = ["_under", "UPPER.case-9", "a" * 128, "x--y..z"]
    with client_for(anonymous_registry.url, anonymous_registry) as pusher:
        builder = FleetBuilder(pusher, 3)
        base = builder.layer(5_000, "odd")
        builder.build(repo, names, {"linux/amd64": [base]}, "2025-01-01T00:00:00Z", oci=True)
        digest = builder.images[0].digest
    with RewritingProxy(anonymous_registry.url) as proxy:
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            assert client.tags(repo) == sorted(names)
            for name in names:
                assert client.tag_details(repo, name).digest == digest
            sent = len(proxy.log)
            for name in names:
                assert client.tag_details(repo, name).manifest.reference == name
            assert len(proxy.log) == sent


# -- cache: revalidation, old stores, concurrent clients -------------------------------------
def test_freshness_zero_revalidates_with_etag(anonymous_registry, fleet, tmp_path):
    repo = "brk/r0"
    with RewritingProxy(anonymous_registry.url) as proxy:
        with client_for(proxy.url, anonymous_registry, cache=tmp_path, freshness=0) as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            sent = len(proxy.log)
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
        second = proxy.log[sent:]
        tag_reads = [s for m, p, s in second if "/manifests/" in p and "sha256:" not in p]
        assert tag_reads and set(tag_reads) == {304}
        # and a default-freshness client then reads the renewed rows as fresh
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            sent = len(proxy.log)
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
            assert len(proxy.log) == sent


def test_cache_written_by_38ec187_is_read_warm(anonymous_registry, fleet, tmp_path):
    repo = "brk/r1"
    old = tmp_path / "old-code"
    old.mkdir()
    archive = subprocess.run(["git", "archive", "38ec187", "registry_insights"],
                             capture_output=True, check=True, cwd=os.getcwd())
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    with RewritingProxy(anonymous_registry.url) as proxy:
        code = ("import sys, registry_insights as ri\n"
                f"assert ri.__file__.startswith({str(old)!r}), ri.__file__\n"
                f"c = ri.RegistryClient({proxy.url!r}, cache={str(tmp_path / 'c')!r})\n"
                "inv = ri.fetch_inventory(c, ['brk/r1'], progress=False)\n"
                "print(len(inv.details))\n")
        env = dict(os.environ, PYTHONPATH=str(old))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120, cwd=old)
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.split()[-1]) == len(_expected(fleet, repo))
        sent = len(proxy.log)
        with client_for(proxy.url, anonymous_registry, cache=tmp_path / "c") as client:
            inv = ri.fetch_inventory(client, [repo], progress=False)
            got = {d.tag: d.digest for d in inv.details}
            assert got == {t: d for t, (d, _) in _expected(fleet, repo).items()}
        assert [p for _, p, _ in proxy.log[sent:] if "/manifests/" in p or "/blobs/" in p] == []


def test_cold_and_warm_clients_share_one_cache_concurrently(anonymous_registry, fleet,
                                                            tmp_path):
    want = {r: {t: d for t, (d, _) in _expected(fleet, r).items()}
            for r in ("brk/r0", "brk/r1")}
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as warm:
        ri.fetch_inventory(warm, ["brk/r0"], progress=False)
    results, failures = {}, []

    def walk(name):
        try:
            for _ in range(3):
                with client_for(anonymous_registry.url, anonymous_registry,
                                cache=tmp_path) as client:
                    inv = ri.fetch_inventory(client, ["brk/r0", "brk/r1"], progress=False)
                    got = {}
                    for d in inv.details:
                        got.setdefault(d.repository, {})[d.tag] = d.digest
                    results.setdefault(name, []).append(got)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))
    threads = [threading.Thread(target=walk, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert all(got == want for runs in results.values() for got in runs)


def test_delete_after_a_cold_walk_is_not_served_from_memory(make_registry, tmp_path):
    handle = make_registry("anonymous", delete_enabled=True)
    with client_for(handle.url, handle) as pusher:
        images = push_fleet(pusher, "del", repositories=1, tags=2, index_every=0)
    with client_for(handle.url, handle, cache=tmp_path) as client:
        inv = ri.fetch_inventory(client, ["del/r0"], progress=False)
        assert sorted(d.tag for d in inv.details) == sorted(i.tag for i in images)
        gone = images[0]
        client.delete(gone.repository, digest=gone.digest)
        inv = ri.fetch_inventory(client, ["del/r0"], progress=False)
        assert gone.digest not in {d.digest for d in inv.details}
        with pytest.raises(ri.NotFound):
            client.manifest(gone.repository, gone.tag)


# -- models ----------------------------------------------------------------------------------
def test_manifest_identity_pickle_copy(anonymous_registry, fleet):
    image = next(i for i in fleet if i.repository == "brk/r0")
    with client_for(anonymous_registry.url, anonymous_registry) as client:
        details = client.tag_details(image.repository, image.tag)
    m = details.manifest
    small = m.compact()
    assert small == m and hash(small) == hash(m) and small.raw == m.raw
    assert small.data == m.data and small.size == m.size == len(m.raw)
    for other in (pickle.loads(pickle.dumps(small)), copy.deepcopy(small), copy.copy(m),
                  pickle.loads(pickle.dumps(m))):
        assert other == m and other.raw == m.raw and other.digest == image.digest
    assert len({m, small, copy.deepcopy(m)}) == 1
    again = pickle.loads(pickle.dumps(details))
    assert again == details and again.manifest.raw == m.raw
    assert copy.deepcopy(details) == details
    assert "raw" not in repr(m) and repr(m).startswith("Manifest(repository='brk/r0'")
    with pytest.raises(AttributeError):
        m.digest = "sha256:" + "0" * 64
    empty = Manifest("r", "t", "sha256:" + "0" * 64, "application/json", b"{}")
    assert empty.compact() == empty and empty.compact().data == {}
    assert empty != Manifest("r", "t", "sha256:" + "0" * 64, "application/json", b"{ }")


def test_inventory_over_two_processes_equals_one(anonymous_registry, fleet):
    with client_for(anonymous_registry.url, anonymous_registry) as client:
        one = ri.fetch_inventory(client, ["brk/r0", "brk/r1"], progress=False)
        two = ri.fetch_inventory(client, ["brk/r0", "brk/r1"], progress=False,
                                 max_processes=2)
    key = lambda d: (d.repository, d.tag)  # noqa: E731
    assert sorted(one.details, key=key) == sorted(two.details, key=key)
    assert [d.manifest.raw for d in sorted(one.details, key=key)] == \
        [d.manifest.raw for d in sorted(two.details, key=key)]
    assert one.tags().equals(two.tags())


# -- light configs after a walk --------------------------------------------------------------
def _full_configs(client, repo):
    out = {}
    for tag in client.tags(repo):
        for image in client.tag_details(repo, tag).images:
            out[image.config_digest] = image.config.to_dict()
    return out


def test_light_configs_read_back_after_processes_and_close(anonymous_registry, fleet,
                                                           tmp_path):
    repo = "brk/r0"
    with client_for(anonymous_registry.url, anonymous_registry) as client:
        want = _full_configs(client, repo)
    assert want and all("rootfs" in c for c in want.values())
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        two = ri.fetch_inventory(client, [repo], progress=False, max_processes=2)
        got = {i.config_digest: i.config.to_dict() for d in two.details for i in d.images}
        assert got == want
        copied = copy.deepcopy(two.details[0].images[0].config)
        assert copied == two.details[0].images[0].config
        assert copied["architecture"] == want[copied.digest]["architecture"]
    # the client is closed: the configs are still readable (from the cache directory)
    again = {i.config_digest: i.config.to_dict() for d in two.details for i in d.images}
    assert again == want


def test_deepcopied_light_config_keeps_its_bytes(anonymous_registry, fleet, tmp_path):
    repo = "brk/r1"
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        inv = ri.fetch_inventory(client, [repo], progress=False)
        config = inv.details[0].images[0].config
        assert copy.deepcopy(config).to_dict() == config.to_dict()


# -- more transport: proxies from the environment, redirects ---------------------------------
def test_http_proxy_from_the_environment_carries_the_lean_requests(anonymous_registry, fleet,
                                                                   monkeypatch):
    repo = "brk/r0"
    with RewritingProxy(anonymous_registry.url) as forward:
        def absolute(request):  # a forward proxy gets absolute-form targets
            assert request.path.startswith(anonymous_registry.url + "/"), request.path
            inner = Request(request.n, request.method,
                            request.path[len(anonymous_registry.url):], request.headers,
                            request.body)
            return forward.forward(inner)
        forward.rules.append(absolute)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", forward.url)
        monkeypatch.setenv("http_proxy", forward.url)
        with client_for(anonymous_registry.url, anonymous_registry) as client:
            assert _sorted(_snapshot(client, repo)) == _expected(fleet, repo)
        paths = [p for _, p, _ in forward.log]
    assert any("/manifests/" in p for p in paths) and any("/blobs/" in p for p in paths)


def test_same_host_redirect_keeps_the_token(token_registry, tmp_path):
    with client_for(token_registry.url, token_registry) as pusher:
        images = push_fleet(pusher, "brkredir", repositories=1, tags=2, index_every=0)
    image = images[0]
    with RewritingProxy(token_registry.url) as proxy:
        def moved(request):
            if request.path.startswith("/v2/brkredir/r0/manifests/") \
                    and "sha256:" not in request.path and request.headers.get("Authorization"):
                return Reply(307, [("Location", f"/v2/{image.repository}/manifests/"
                                                f"{image.digest}")])
            if "/manifests/sha256:" in request.path:
                auths.append(request.headers.get("Authorization"))
            return None
        auths: list = []
        proxy.rules.append(moved)
        with client_for(proxy.url, token_registry, cache=tmp_path) as client:
            details = client.tag_details(image.repository, image.tag)
            assert details.digest == image.digest
    assert auths and all(a and a.startswith("Bearer ") for a in auths)


def test_config_blobs_redirected_to_storage_in_a_cached_walk(token_registry, tmp_path):
    import http.server

    with client_for(token_registry.url, token_registry) as pusher:
        images = push_fleet(pusher, "brkstore", repositories=1, tags=3, index_every=0)
        blobs = {i.config_digest: pusher.blob_bytes(i.repository, i.config_digest)
                 for i in images}
    seen, registry_cookies = [], []

    class Storage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            seen.append((self.path, self.headers.get("Authorization"),
                         self.headers.get("Cookie")))
            data = blobs.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if data else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.send_header("Set-Cookie", "storage=secret; Path=/")
            self.end_headers()
            self.wfile.write(data or b"")
    storage = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    try:
        with RewritingProxy(token_registry.url) as proxy:
            def redirect(request):
                registry_cookies.append(request.headers.get("Cookie"))
                if "/blobs/sha256:" in request.path and request.headers.get("Authorization"):
                    digest = request.path.rsplit("/", 1)[-1]
                    return Reply(307, [("Location", f"http://localhost:"
                                                    f"{storage.server_address[1]}/b/{digest}")])
                return None
            proxy.rules.append(redirect)
            with client_for(proxy.url, token_registry, cache=tmp_path) as client:
                inv = ri.fetch_inventory(client, ["brkstore/r0"], progress=False)
                got = {i.config_digest for d in inv.details for i in d.images}
                assert got == set(blobs)
                sent = (len(proxy.log), len(seen))
                inv = ri.fetch_inventory(client, ["brkstore/r0"], progress=False)
                assert (len(proxy.log), len(seen)) == sent
        assert len(seen) == len(blobs)
        assert all(auth is None for _, auth, _ in seen)
        # the storage host's cookie goes back to the storage host only
        assert {c for _, _, c in seen} <= {None, "storage=secret"}
        assert registry_cookies and set(registry_cookies) == {None}
    finally:
        storage.shutdown()
        storage.server_close()


def test_paged_tag_list_under_a_prefix_is_served_warm(anonymous_registry, fleet, tmp_path):
    repo = "brk/r1"
    with RewritingProxy(anonymous_registry.url) as proxy:
        def paged(request):  # Distribution 2.8 does not page tags: one tag a page here,
            # with the Link a registry that does not know the prefix sends
            if not request.path.startswith(f"/reg/v2/{repo}/tags/list"):
                return None
            whole = proxy.forward(Request(request.n, request.method, f"/v2/{repo}/tags/list",
                                          request.headers, request.body))
            tags = sorted(json.loads(whole.body)["tags"])
            last = request.path.partition("last=")[2].partition("&")[0]
            rest = [t for t in tags if t > last] if last else tags
            headers = [("Content-Type", "application/json")]
            if len(rest) > 1:
                headers.append(("Link", f'</v2/{repo}/tags/list?last={rest[0]}&n=1>; '
                                        'rel="next"'))
            return Reply(200, headers, json.dumps({"name": repo, "tags": rest[:1]}).encode())
        proxy.rules.append(paged)
        _prefixed(proxy)
        with client_for(proxy.url + "/reg/", anonymous_registry, cache=tmp_path) as client:
            assert client.tags(repo) == sorted(_expected(fleet, repo))
            pages = [p for _, p, _ in proxy.log if "/tags/list" in p]
            assert len(pages) == len(_expected(fleet, repo))  # one tag a page
            assert all(p.startswith(f"/reg/v2/{repo}/tags/list") for p in pages)
            sent = len(proxy.log)
            assert client.tags(repo) == sorted(_expected(fleet, repo))
            assert len(proxy.log) == sent
            assert client.tags(repo, fresh=True) == sorted(_expected(fleet, repo))
            assert len(proxy.log) == sent + len(pages)


# -- secrets in a Link's query stay out of the cache -----------------------------------------
def _cache_bytes(directory):
    blob = b""
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                blob += f.read()
    return blob


def _secret_link_walk(registry, fleet, directory, param):
    repo = "brk/r0"
    tags = sorted(_expected(fleet, repo))
    with RewritingProxy(registry.url) as proxy:
        def page(request):
            if request.path == f"/v2/{repo}/tags/list":
                link = f'</v2/{repo}/tags/list?last={tags[0]}&{param}=S3cr3tValue>; rel="next"'
                return Reply(200, [("Content-Type", "application/json"), ("Link", link)],
                             json.dumps({"name": repo, "tags": tags[:1]}).encode())
            if request.path.startswith(f"/v2/{repo}/tags/list?"):
                return Reply(200, [("Content-Type", "application/json")],
                             json.dumps({"name": repo, "tags": tags[1:]}).encode())
            return None
        proxy.rules.append(page)
        with client_for(proxy.url, registry, cache=directory) as client:
            assert client.tags(repo) == tags
            sent = len(proxy.log)
            assert client.tags(repo) == tags  # complete again: asked again, both pages
            assert len(proxy.log) == sent + 2  # (a page with a secret in it is never kept)
    return _cache_bytes(directory)


def _keys(directory):
    keys = []
    for db in _rows(directory):
        with sqlite3.connect(db) as con:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                keys += [k for (k,) in con.execute(f"SELECT key FROM {table}")]
    return keys


def test_access_token_in_a_link_stays_out_of_the_keys(anonymous_registry, fleet, tmp_path):
    _secret_link_walk(anonymous_registry, fleet, tmp_path, "access_token")
    keys = _keys(tmp_path)
    assert [k for k in keys if "S3cr3tValue" in k] == []
    assert [k for k in keys if k.startswith("GET tags brk/r0 ")] == []  # neither page kept


def test_access_token_in_a_link_stays_out_of_the_stored_answer(anonymous_registry, fleet,
                                                               tmp_path):
    stored = _secret_link_walk(anonymous_registry, fleet, tmp_path, "access_token")
    at = stored.find(b"S3cr3tValue")
    assert stored and at < 0, stored[max(0, at - 200):at + 20]


def test_upper_case_access_token_stays_out_of_the_keys(anonymous_registry, fleet, tmp_path):
    _secret_link_walk(anonymous_registry, fleet, tmp_path, "ACCESS_TOKEN")
    assert [k for k in _keys(tmp_path) if "S3cr3tValue" in k] == []


def test_token_param_stays_out_of_the_keys(anonymous_registry, fleet, tmp_path):
    _secret_link_walk(anonymous_registry, fleet, tmp_path, "token")
    assert [k for k in _keys(tmp_path) if "S3cr3tValue" in k] == []


# -- a stored manifest whose bytes do not verify; tokens across processes --------------------
def test_tampered_light_row_is_evicted_and_fetched_again(anonymous_registry, fleet, tmp_path):
    image = next(i for i in fleet if i.repository == "brk/r0" and i.tag == "v0")
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        good = client.tag_details(image.repository, image.tag)
        client.cache.flush()
        store = client.cache.answers
        keys = [k for k in store.keys() if k.startswith("GET manifest brk/r0 v0 ")]
        assert len(keys) == 1
        held = store[keys[0]]
        tampered = held.replace(b'"schemaVersion"', b'"schemaversion"')
        assert tampered != held and good.manifest.raw in held
        store[keys[0]] = tampered
    with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path) as client:
        again = client.tag_details(image.repository, image.tag)
        assert client.request_counts["manifest"] == 1  # the tampered answer asked again
        assert again.digest == good.digest and again.manifest.raw == good.manifest.raw
        assert client.tag_details(image.repository, image.tag).manifest.raw == \
            good.manifest.raw
        assert client.request_counts["manifest"] == 1


def test_two_processes_over_a_token_registry(token_registry, tmp_path):
    with client_for(token_registry.url, token_registry) as pusher:
        push_fleet(pusher, "brktok", repositories=2, tags=2)
    repos = ["brktok/r0", "brktok/r1"]
    with client_for(token_registry.url, token_registry, cache=tmp_path) as client:
        one = ri.fetch_inventory(client, repos, progress=False)
    with client_for(token_registry.url, token_registry) as client:
        two = ri.fetch_inventory(client, repos, progress=False, max_processes=2)
        assert client.request_counts["token"] >= 1
    key = lambda d: (d.repository, d.tag)  # noqa: E731
    assert sorted(one.details, key=key) == sorted(two.details, key=key)
    assert len(one.details) == 6 and not one.read_errors and not two.read_errors


def test_cookie_jar_growing_during_a_threaded_walk(anonymous_registry, fleet):
    """A load balancer that sets a new cookie on every answer while 8 threads send."""
    repos = ["brk/r0", "brk/r1"]
    with RewritingProxy(anonymous_registry.url) as proxy:
        def fresh_cookie(request, reply):
            reply.headers.append(("Set-Cookie", f"n{request.n}=1; Path=/v2/"))
            return reply
        proxy.rewrites.append(fresh_cookie)
        for _ in range(3):
            with client_for(proxy.url, anonymous_registry, max_workers=8) as client:
                inv = ri.fetch_inventory(client, repos, progress=False)
                assert not inv.read_errors
                assert len(inv.details) == sum(len(_expected(fleet, r)) for r in repos)


def test_head_and_long_retry_after_on_the_lean_path(anonymous_registry, fleet):
    repo = "brk/r0"
    latest = _expected(fleet, repo)["latest"][0]
    with RewritingProxy(anonymous_registry.url) as proxy:
        with client_for(proxy.url, anonymous_registry) as client:
            assert client.tags_of_digest(repo, latest) == ["latest", "v2"]
            heads = [p for m, p, _ in proxy.log if m == "HEAD"]
            assert sorted(heads) == sorted(f"/v2/{repo}/manifests/{t}"
                                           for t in _expected(fleet, repo))

            def busy(request):
                if "/manifests/" in request.path:
                    return Reply(503, [("Retry-After", "3600")], b"")
                return None
            proxy.rules.append(busy)
            with pytest.raises(ri.RateLimited, match="3600 s"):
                client.manifest(repo, "v0")
