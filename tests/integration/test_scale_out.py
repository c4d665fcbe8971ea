"""The walk spread over processes (max_processes) and over a Dask cluster gives the frames of
the single-process walk, with the same manifest and config requests."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

import registry_insights as ri
from tests.support.fleet import push_fleet

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(token_registry, tmp_path_factory):
    """4 repositories x 3 builds (+ latest), one two-platform index each, on the token
    registry; and the frames and request counts of the single-process walk."""
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=None) as pusher:
        seeded = push_fleet(pusher, "scaleout", repositories=4, tags=3, index_every=3)
    repos = sorted({i.repository for i in seeded})
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=None) as client:
        inv = ri.fetch_inventory(client, repos, progress=False)
        single = (inv.tags(), inv.layers(), dict(client.request_counts))
    return repos, seeded, single


def _same_frames(inv: ri.Inventory, single) -> None:
    tags, layers, _counts = single
    pd.testing.assert_frame_equal(inv.tags(), tags)
    pd.testing.assert_frame_equal(inv.layers(), layers)


def test_dask_local_cluster_walk_gives_the_single_process_frames(token_registry, fleet,
                                                                  tmp_path):
    distributed = pytest.importorskip("distributed")
    repos, seeded, single = fleet
    # two worker processes (about 2 s here): settings and details really travel pickled
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as dask_client, \
            ri.RegistryClient(token_registry.url, token_registry.username,
                              token_registry.password, cache=tmp_path / "cache") as client:
        inv = ri.fetch_inventory(client, repos, progress=False, executor=dask_client)
        _same_frames(inv, single)
        counts = dict(client.request_counts)
    assert len(inv.tags()) == len(seeded)
    # the same manifests and configs; the tag lists once (here); a probe per shard more
    for kind in ("manifest", "blob", "tags"):
        assert counts[kind] == single[2][kind], kind
    assert counts["ping"] == 1 + 2  # the parent (tag lists) and each of the 2 shards
    # the workers wrote the shared cache directory: a second walk there sends no manifest
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=tmp_path / "cache") as again:
        _same_frames(ri.fetch_inventory(again, repos, progress=False), single)
        assert again.request_counts["manifest"] == again.request_counts["blob"] == 0


def test_max_processes_walk_gives_the_single_process_frames(token_registry, fleet, tmp_path):
    repos, _seeded, single = fleet
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=tmp_path) as client:
        inv = ri.fetch_inventory(client, repos, progress=False, max_processes=2)
        _same_frames(inv, single)
        for kind in ("manifest", "blob", "tags"):
            assert client.request_counts[kind] == single[2][kind], kind


def test_settings_travel_without_showing_the_secret(token_registry):
    with ri.RegistryClient(token_registry.url, token_registry.username,
                           token_registry.password, cache=None, max_workers=3) as client:
        settings = client.settings()
    assert token_registry.password not in repr(settings)
    copy = pickle.loads(pickle.dumps(settings))
    with copy.connect() as again:
        assert again.credentials == client.credentials and again.max_workers == 3
        assert again.tags  # a working client
