"""Adversarial probes of session 5's changes (the answers table of the HTTP cache, the lean
adapter), against the real registry: caches written by the previous version (e487493) and
read by this one and back, deletes and revalidation over such caches, secrets in the SQLite
files, several storage origins, an environment proxy."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import registry_insights as ri
from tests.support.fleet import push_fleet
from tests.support.proxy import Reply, RewritingProxy, client_for, refuse_first


@pytest.fixture(scope="module")
def fleet(anonymous_registry):
    with client_for(anonymous_registry.url, anonymous_registry) as client:
        return push_fleet(client, "s5b", repositories=2, tags=3)


def _run_previous(where, code: str) -> str:
    header = ("import sys, registry_insights as ri\n"
              f"assert ri.__file__.startswith({str(where)!r}), ri.__file__\n")
    done = subprocess.run([sys.executable, "-c", header + code],
                          env=dict(os.environ, PYTHONPATH=str(where)), capture_output=True,
                          text=True, timeout=120, cwd=where)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _tables(cache_dir) -> dict[str, int]:
    """Rows per table over every SQLite file under ``cache_dir``; in ``responses``, the rows
    of this version (one line of JSON, then the body) are counted as ``answers``, the
    ``CachedResponse`` rows of earlier versions as ``responses``."""
    out: dict[str, int] = {}
    for db in Path(cache_dir).rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                if name == "responses":
                    for (value,) in con.execute("SELECT value FROM responses"):
                        kind = "answers" if bytes(value).startswith(b'{"status":') \
                            else "responses"
                        out[kind] = out.get(kind, 0) + 1
                    continue
                out[name] = out.get(name, 0) + con.execute(
                    f"SELECT count(*) FROM {name}").fetchone()[0]
    return out


def _want(fleet, repository):
    return {i.tag: i.digest for i in fleet if i.repository == repository}


def test_previous_cache_is_read_warm_then_revalidated_into_answers(
        anonymous_registry, fleet, previous_code, tmp_path):
    repo = "s5b/r0"
    cache = tmp_path / "c"
    with RewritingProxy(anonymous_registry.url) as proxy:
        out = _run_previous(previous_code, (
            f"c = ri.RegistryClient({proxy.url!r}, cache={str(cache)!r})\n"
            f"inv = ri.fetch_inventory(c, [{repo!r}], progress=False)\n"
            "c.close()\nprint(len(inv.details))\n"))
        assert int(out.split()[-1]) == len(_want(fleet, repo))
        before = _tables(cache)
        assert before.get("responses", 0) >= 4 and before.get("answers", 0) == 0
        sent = len(proxy.log)
        with client_for(proxy.url, anonymous_registry, cache=cache) as client:
            inv = ri.fetch_inventory(client, [repo], progress=False)
            assert {d.tag: d.digest for d in inv.details} == _want(fleet, repo)
        assert [p for _, p, _ in proxy.log[sent:] if "/manifests/" in p or "/blobs/" in p] \
            == []
        # expired: revalidated with the stored validators; the renewed rows are new rows
        sent = len(proxy.log)
        with client_for(proxy.url, anonymous_registry, cache=cache, freshness=0) as client:
            inv = ri.fetch_inventory(client, [repo], progress=False)
            assert {d.tag: d.digest for d in inv.details} == _want(fleet, repo)
        statuses = [s for _, p, s in proxy.log[sent:] if "/manifests/" in p]
        assert statuses and set(statuses) == {304}
        assert _tables(cache)["answers"] >= len(_want(fleet, repo))


def test_cache_of_this_version_does_not_break_the_previous_one(
        anonymous_registry, fleet, previous_code, tmp_path):
    repo = "s5b/r1"
    cache = tmp_path / "c"
    with client_for(anonymous_registry.url, anonymous_registry, cache=cache) as client:
        ri.fetch_inventory(client, [repo], progress=False)
    assert _tables(cache)["answers"] >= len(_want(fleet, repo))
    out = _run_previous(previous_code, (
        f"c = ri.RegistryClient({anonymous_registry.url!r}, cache={str(cache)!r})\n"
        f"inv = ri.fetch_inventory(c, [{repo!r}], progress=False)\n"
        "c.close()\n"
        "print(sorted((d.tag, d.digest) for d in inv.details))\n"))
    assert out.strip() == str(sorted(_want(fleet, repo).items()))
    # and back: this version still reads both tables
    with client_for(anonymous_registry.url, anonymous_registry, cache=cache) as client:
        inv = ri.fetch_inventory(client, [repo], progress=False)
        assert {d.tag: d.digest for d in inv.details} == _want(fleet, repo)


def test_delete_over_a_cache_of_the_previous_version(make_registry, previous_code, tmp_path):
    handle = make_registry("anonymous", delete_enabled=True)
    with client_for(handle.url, handle) as pusher:
        images = push_fleet(pusher, "del", repositories=1, tags=3, index_every=0)
    repo = "del/r0"
    cache = tmp_path / "c"
    _run_previous(previous_code, (
        f"c = ri.RegistryClient({handle.url!r}, cache={str(cache)!r})\n"
        f"ri.fetch_inventory(c, [{repo!r}], progress=False)\nc.close()\n"))
    assert _tables(cache).get("responses", 0) >= 3
    gone = next(i for i in images if i.tag == "v0")
    with client_for(handle.url, handle, cache=cache) as client:
        assert "v0" in client.tags(repo)  # served from the legacy rows
        client.delete(repo, tag="v0")
        assert "v0" not in client.tags(repo)
        with pytest.raises(ri.NotFound):
            client.manifest(repo, "v0")
        inv = ri.fetch_inventory(client, [repo], progress=False)
        assert "v0" not in {d.tag for d in inv.details}
        assert gone.digest not in {d.digest for d in inv.details}
    # a new client of the same cache agrees
    with client_for(handle.url, handle, cache=cache) as client:
        assert "v0" not in client.tags(repo)


# -- secrets ---------------------------------------------------------------------------------
def _raw_bytes(cache_dir) -> bytes:
    return b"".join(p.read_bytes() for p in Path(cache_dir).rglob("*") if p.is_file())


def test_no_secret_reaches_the_cache_files(basic_registry, tmp_path):
    with client_for(basic_registry.url, basic_registry) as pusher:
        push_fleet(pusher, "s5sec", repositories=1, tags=2, index_every=0)
    repo = "s5sec/r0"
    cookie = "session=c00kie-s3cret-value"
    with RewritingProxy(basic_registry.url) as proxy:
        def decorate(request, reply):
            reply.headers.append(("Set-Cookie", f"{cookie}; Path=/; HttpOnly"))
            reply.headers.append(("X-Api-Key", "apikey-s3cret"))
            reply.headers.append(("Authorization", "Bearer echoed-s3cret"))
            return reply
        proxy.rewrites.append(decorate)
        cache = tmp_path / "c"
        with client_for(proxy.url, basic_registry, cache=cache) as client:
            inv = ri.fetch_inventory(client, [repo], progress=False)
            assert len(inv.details) == 3
            client.cache.flush()
            # while the client is open: the WAL file may still hold the rows
            raw = _raw_bytes(cache)
            assert _tables(cache)["answers"] >= 3
    raw += _raw_bytes(cache)
    basic = base64.b64encode(
        f"{basic_registry.username}:{basic_registry.password}".encode())
    for secret in (basic_registry.password.encode(), basic, b"c00kie-s3cret-value",
                   b"apikey-s3cret", b"echoed-s3cret"):
        assert secret not in raw, secret


def test_no_token_reaches_the_cache_files(token_registry, tmp_path):
    with client_for(token_registry.url, token_registry) as pusher:
        push_fleet(pusher, "s5tok", repositories=1, tags=2, index_every=0)
    cache = tmp_path / "c"
    tokens = []
    with RewritingProxy(token_registry.url) as proxy:
        def spy(request):
            auth = request.headers.get("Authorization") or ""
            if auth.startswith("Bearer "):
                tokens.append(auth[7:])
        proxy.rules.append(spy)
        with client_for(proxy.url, token_registry, cache=cache) as client:
            ri.fetch_inventory(client, ["s5tok/r0"], progress=False)
            client.cache.flush()
            raw = _raw_bytes(cache)
    raw += _raw_bytes(cache)
    assert tokens
    for token in set(tokens):
        assert token.encode() not in raw
        assert token.split(".")[-1].encode() not in raw  # not even the signature


# -- odd answers stored and read back --------------------------------------------------------
def test_odd_headers_and_duplicate_links_survive_the_answers_table(anonymous_registry, fleet,
                                                                   tmp_path):
    repo = "s5b/r0"
    tags = sorted(_want(fleet, repo))
    with RewritingProxy(anonymous_registry.url) as proxy:
        def page(request):
            if request.path.startswith(f"/v2/{repo}/tags/list"):
                last = "last=" in request.path
                chunk = tags[1:] if last else tags[:1]
                body = json.dumps({"name": repo, "tags": chunk}).encode()
                headers = [("Content-Type", "application/json"),
                           ("X-Odd", "caf\u00e9 \u00ff \"quoted\" \\ back"),
                           ("X-Empty", "")]
                if not last:
                    headers += [("Link", f'</v2/{repo}/tags/list?last={tags[0]}&n=1>; '
                                 'rel="next"'),
                                ("Link", '<https://docs.example/x>; rel="help"')]
                return Reply(200, headers, body)
            return None
        proxy.rules.append(page)
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            assert client.tags(repo) == tags
        sent = len(proxy.log)
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            assert client.tags(repo) == tags
            hit = client._transport.cache.lookup(
                "GET", f"{proxy.url}/v2/{repo}/tags/list", None).hit
        assert len(proxy.log) == sent
    assert hit is not None and hit.from_cache
    assert hit.headers["X-Odd"] == "caf\u00e9 \u00ff \"quoted\" \\ back"
    assert hit.headers["X-Empty"] == ""
    assert f"last={tags[0]}" in hit.headers["Link"] and "rel=\"help\"" in hit.headers["Link"]


# -- transport: storage origins, proxies -----------------------------------------------------
def test_blobs_redirected_to_many_storage_origins(anonymous_registry, fleet):
    """Configs redirected to six storage origins (more than the adapter's four pools), with
    and without a cookie, from eight workers: every config read, counted once each."""
    repos = ["s5b/r0", "s5b/r1"]
    want = {(i.repository, i.tag): i.digest for i in fleet}
    storages = [RewritingProxy(anonymous_registry.url).start() for _ in range(6)]
    try:
        with RewritingProxy(anonymous_registry.url) as proxy:
            turn = iter(range(10_000))

            def redirect(request):
                if "/blobs/" in request.path and request.method == "GET":
                    n = next(turn)
                    headers = [("Location", storages[n % 6].url + request.path)]
                    if n % 2:
                        headers.append(("Set-Cookie", f"edge=n{n}; Path=/"))
                    return Reply(307, headers)
                return None
            proxy.rules.append(redirect)
            for _ in range(3):  # a new client each time: configs are not kept between
                with client_for(proxy.url, anonymous_registry, max_workers=8) as client:
                    inv = ri.fetch_inventory(client, repos, progress=False)
                    assert {(d.repository, d.tag): d.digest for d in inv.details} == want
                    configs = {i.config_digest for d in inv.details for i in d.images}
                    assert all(i.config is not None for d in inv.details for i in d.images)
                    assert client.request_counts["retry"] == 0
        served = [sum(1 for _, p, st in s.log if st == 200) for s in storages]
        assert len(configs) == 8 and sum(served) == 3 * len(configs)
        assert all(served), served  # every origin was used by each client
    finally:
        for s in storages:
            s.stop()


class _ForwardProxy(ThreadingHTTPServer):
    """A plain HTTP forward proxy (absolute-form request targets) that records them."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                outer.seen.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection", "host")}
                upstream = requests.request(self.command, self.path, headers=headers,
                                            data=body, allow_redirects=False, timeout=30,
                                            proxies={"http": None, "https": None})
                self.send_response(upstream.status_code)
                for k, v in upstream.headers.items():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                         "content-encoding", "keep-alive"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _any  # noqa: N815

        super().__init__(("127.0.0.1", 0), Handler)


def test_environment_proxy_carries_every_request(anonymous_registry, fleet, monkeypatch,
                                                 tmp_path):
    repo = "s5b/r0"
    forward = _ForwardProxy()
    thread = threading.Thread(target=forward.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY",
                     "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{forward.server_address[1]}")
        with client_for(anonymous_registry.url, anonymous_registry, cache=tmp_path,
                        max_workers=4) as client:
            inv = ri.fetch_inventory(client, [repo], progress=False)
            assert {d.tag: d.digest for d in inv.details} == _want(fleet, repo)
            sent = sum(client.request_counts.values())
    finally:
        forward.shutdown()
        forward.server_close()
    assert sent >= 5
    assert len(forward.seen) == sent
    assert all(p.startswith(anonymous_registry.url + "/v2/") for p in forward.seen)


# -- CLI -------------------------------------------------------------------------------------
def test_password_stdin_with_the_username_from_the_environment_and_one_worker(
        basic_registry, capsys, monkeypatch, tmp_path):
    import io

    from registry_insights.cli import main

    with client_for(basic_registry.url, basic_registry) as pusher:
        push_fleet(pusher, "s5cli", repositories=1, tags=2, index_every=0)
    monkeypatch.setenv("REGISTRY_INSIGHTS_USERNAME", basic_registry.username)
    monkeypatch.delenv("REGISTRY_INSIGHTS_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(basic_registry.password + "\n"))
    code = main(["report", basic_registry.url, "--password-stdin", "--workers", "1",
                 "--no-cache", "--repository", "s5cli/r0", "-o", str(tmp_path / "r")])
    assert code == 0, capsys.readouterr().err
    assert "v0" in (tmp_path / "r" / "tags.csv").read_text()
    assert basic_registry.password not in capsys.readouterr().err


# -- HTTPS: a CA bundle path, then verify=False, on one host ---------------------------------
@pytest.fixture(scope="module")
def tls_front(anonymous_registry, tmp_path_factory):
    """A TLS front (self-signed certificate for 127.0.0.1) of the anonymous registry."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    proxy = RewritingProxy(anonymous_registry.url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    proxy._server.socket = context.wrap_socket(proxy._server.socket, server_side=True)
    proxy.start()
    try:
        yield proxy.url.replace("http://", "https://"), cert, proxy
    finally:
        proxy.stop()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_ca_bundle_then_verify_false_on_one_host(tls_front, fleet, tmp_path):
    url, bundle, proxy = tls_front
    repo = "s5b/r0"
    with ri.RegistryClient(url, cache=tmp_path, verify=str(bundle)) as client:
        inv = ri.fetch_inventory(client, [repo], progress=False)
        assert {d.tag: d.digest for d in inv.details} == _want(fleet, repo)
    with ri.RegistryClient(url, cache=None, verify=False) as client:
        assert sorted(client.tags(repo)) == sorted(_want(fleet, repo))
    with ri.RegistryClient(url, cache=None, verify=str(bundle)) as client:
        assert sorted(client.tags(repo)) == sorted(_want(fleet, repo))


def test_previous_and_this_version_share_one_cache_at_once(anonymous_registry, fleet,
                                                           previous_code, tmp_path):
    repos = ["s5b/r0", "s5b/r1"]
    want = sorted({(i.repository, i.tag, i.digest) for i in fleet})
    cache = tmp_path / "c"
    code = ("import sys, registry_insights as ri\n"
            f"assert ri.__file__.startswith({str(previous_code)!r})\n"
            "for _ in range(4):\n"
            f"    c = ri.RegistryClient({anonymous_registry.url!r}, cache={str(cache)!r},"
            " freshness=0)\n"
            f"    inv = ri.fetch_inventory(c, {repos!r}, progress=False)\n"
            "    c.close()\n"
            "    print(sorted((d.repository, d.tag, d.digest) for d in inv.details))\n")
    old = subprocess.Popen([sys.executable, "-c", code], cwd=previous_code, text=True,
                           env=dict(os.environ, PYTHONPATH=str(previous_code)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for freshness in (0, 0, 60, 0):
            with client_for(anonymous_registry.url, anonymous_registry, cache=cache,
                            freshness=freshness) as client:
                inv = ri.fetch_inventory(client, repos, progress=False)
                assert sorted((d.repository, d.tag, d.digest) for d in inv.details) == want
    finally:
        out, err = old.communicate(timeout=120)
    assert old.returncode == 0, err[-3000:]
    assert out.splitlines() == [str(want)] * 4


def test_walk_over_two_processes_fills_the_answers_table_for_a_warm_walk(
        anonymous_registry, fleet, tmp_path):
    repos = ["s5b/r0", "s5b/r1"]
    want = {(i.repository, i.tag): i.digest for i in fleet}
    with RewritingProxy(anonymous_registry.url) as proxy:
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            inv = ri.fetch_inventory(client, repos, progress=False, max_processes=2)
            assert {(d.repository, d.tag): d.digest for d in inv.details} == want
        assert _tables(tmp_path)["answers"] >= len(want)
        sent = len(proxy.log)
        with client_for(proxy.url, anonymous_registry, cache=tmp_path) as client:
            inv = ri.fetch_inventory(client, repos, progress=False, max_processes=2)
            assert {(d.repository, d.tag): d.digest for d in inv.details} == want
        assert proxy.log[sent:] == []


def test_rate_limit_headers_of_retried_and_served_answers_are_kept(anonymous_registry, fleet):
    repo = "s5b/r1"
    with RewritingProxy(anonymous_registry.url) as proxy:
        once = refuse_first("/manifests/", 429, [("Retry-After", "0"),
                                                  ("X-RateLimit-Remaining", "0"),
                                                  ("Content-Type", "text/plain")], b"slow down")

        def label(request, reply):
            if "/tags/list" in request.path:
                reply.headers.append(("ratelimit-remaining", "41;w=60"))
            return reply
        proxy.rules.append(once)
        proxy.rewrites.append(label)
        with client_for(proxy.url, anonymous_registry) as client:
            client.tag_details(repo, "v0")
            assert client.request_counts["retry"] == 1
            assert client._transport.rate_limit == {"X-RateLimit-Remaining": "0"}
            assert sorted(client.tags(repo)) == sorted(_want(fleet, repo))
            assert client._transport.rate_limit == {"ratelimit-remaining": "41;w=60"}


def test_a_delete_by_the_previous_version_is_not_undone_by_this_version_s_rows(
        make_registry, previous_code, tmp_path):
    """Two versions on one cache file (two environments, one default cache): a delete made
    by e487493 drops, by key, what this version stored about the tag (its rows share the
    table e487493 invalidates), so this version does not list the tag again."""
    handle = make_registry("anonymous", delete_enabled=True)
    with client_for(handle.url, handle) as pusher:
        push_fleet(pusher, "dl", repositories=1, tags=3, index_every=0)
    repo, cache = "dl/r0", tmp_path / "c"
    with client_for(handle.url, handle, cache=cache) as client:
        assert "v0" in client.tags(repo)
        ri.fetch_inventory(client, [repo], progress=False)
    assert _tables(cache)["answers"] >= 4
    _run_previous(previous_code, (
        f"c = ri.RegistryClient({handle.url!r}, cache={str(cache)!r})\n"
        f"c.delete({repo!r}, tag='v0')\nassert 'v0' not in c.tags({repo!r})\nc.close()\n"))
    with client_for(handle.url, handle, cache=cache) as client:
        assert "v0" not in client.tags(repo)
        assert sorted(d.tag for d in ri.fetch_inventory(client, [repo], progress=False).details) \
            == ["latest", "v1", "v2"]


def test_an_untrusted_certificate_is_said_at_once_and_not_retried(tls_front, monkeypatch):
    """Retrying cannot make a certificate trusted: the first failure is the answer, and it
    says why (not "is it plain http?")."""
    from registry_insights.errors import RegistryError

    url, _bundle, proxy = tls_front
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with ri.RegistryClient(url, cache=None) as client:
        with pytest.raises(RegistryError) as caught:
            client.tags("s5b/r0")
        assert client.request_counts.get("retry", 0) == 0
    message = str(caught.value)
    assert "TLS certificate is not trusted (self-signed certificate)" in message
    assert "plain http" not in message and "REQUESTS_CA_BUNDLE" in message
