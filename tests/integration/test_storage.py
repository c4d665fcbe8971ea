"""Reading a Distribution registry's filesystem storage: the GC backlog it predicts equals what
``docker-registry garbage-collect`` (Debian's, CNCF Distribution 2.8) then frees, with
``--delete-untagged`` off and on; nothing is written."""

from __future__ import annotations

import os

import pytest

import registry_insights as ri
from registry_insights.analysis.disk import disk_summary, gc_backlog
from registry_insights.frames.disk import StorageError, read_storage
from tests.support.fleet import push_fleet

pytestmark = pytest.mark.integration


def _tree(root):
    """Every path under root with its size and mtime: proof that a read wrote nothing."""
    out = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(current, name)
            stat = os.lstat(path)
            out[path] = (stat.st_size, stat.st_mtime_ns)
    return out


def _garbage(client, server):
    """Backlog of every kind: a deleted tag, an overwritten tag, a deleted index (children
    stay untagged), an orphan blob and an unfinished upload."""
    push_fleet(client, "gc", repositories=2, tags=6, index_every=3)
    client.delete("gc/r0", tag="v0")                       # a deleted single-platform image
    client.delete("gc/r1", tag="v2", children=False)       # an index alone: children untagged
    moved = client.manifest("gc/r0", "v4")                  # overwrite v1: old digest untagged
    client.put_manifest("gc/r0", "v1", moved.raw, moved.media_type)
    client.upload_blob("gc/r1", b"orphan blob nobody references")


@pytest.mark.parametrize("delete_untagged", [False, True], ids=["plain", "delete-untagged"])
def test_anonymous_backlog_is_what_garbage_collect_frees(make_registry, delete_untagged):
    handle = make_registry("anonymous")
    server = handle.server
    with ri.RegistryClient(handle.url, cache=None) as client:
        _garbage(client, server)
        inv = ri.fetch_inventory(client, progress=False)
    stored = int(ri.storage_summary(inv.tags(attestations=True), inv.layers(attestations=True),
                                    inv.repositories).iloc[-1]["unique_bytes"])
    before_tree = _tree(server.storage_dir)
    storage = read_storage(server.storage_dir)
    assert _tree(server.storage_dir) == before_tree           # read-only
    assert storage.disk_bytes == server.blob_bytes()
    backlog = gc_backlog(storage, delete_untagged=delete_untagged)
    plain = gc_backlog(storage)
    assert list(backlog.columns) == ["digest", "size", "kind"]
    assert plain["size"].sum() > 0
    if delete_untagged:  # untagged manifests (the overwritten tag's old image) go too
        assert backlog["size"].sum() > plain["size"].sum()
        assert "manifest" in set(backlog["kind"])
    summary = disk_summary(storage, stored).iloc[0]
    assert summary["gc_backlog_bytes"] == plain["size"].sum()
    assert summary["difference_bytes"] == storage.disk_bytes - stored
    assert summary["untagged_manifests"] >= 3   # v1's old image, the index's two children

    before = server.blob_bytes()
    # garbage_collect stops the registry, collects, and starts it again
    server.garbage_collect(delete_untagged=delete_untagged)
    assert before - server.blob_bytes() == int(backlog["size"].sum())
    after = read_storage(server.storage_dir)
    assert set(after.blobs["digest"]) == set(storage.blobs["digest"]) - set(backlog["digest"])
    assert gc_backlog(after, delete_untagged=delete_untagged).empty


def test_storage_root_must_be_a_distribution_storage(tmp_path):
    with pytest.raises(StorageError, match="docker/registry/v2"):
        read_storage(tmp_path)
