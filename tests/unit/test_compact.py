"""What an inventory holds per tag: light configs (fields kept, bytes read back on use),
compact manifests, one descriptor object for equal layers, and all of it picklable."""

from __future__ import annotations

import json
import pickle

import pytest

from registry_insights.errors import InvalidResponse
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.models import EMPTY_CONFIG, Descriptor, ImageConfig, parse_manifest
from registry_insights.registry.walk import assemble

CONFIG = {"architecture": "arm64", "os": "linux", "variant": "v8",
          "created": "2024-01-02T03:04:05.123456789Z", "config": {"Labels": {"a": "b"}}}
RAW = json.dumps(CONFIG).encode()


def d(n: int) -> str:
    return f"sha256:{n:064x}"


def test_a_light_config_keeps_the_frame_fields_and_reads_the_rest_back():
    reads = []
    full = ImageConfig.parse(RAW, digest=d(1))
    light = full.light(lambda: reads.append(1) or RAW)
    assert light.raw is None and light.digest == d(1)
    assert (light["architecture"], light.get("os"), light.get("variant"), light["created"]) \
        == ("arm64", "linux", "v8", CONFIG["created"])
    assert reads == []  # the frame fields never read the bytes
    assert light["config"] == {"Labels": {"a": "b"}} and light.to_dict() == CONFIG
    assert len(reads) == 2
    assert light == full and dict(light.items()) == CONFIG
    assert not EMPTY_CONFIG and EMPTY_CONFIG.get("os") is None and len(EMPTY_CONFIG) == 0


def test_a_config_that_travelled_is_reattached_or_says_where_to_read_it():
    light = ImageConfig.parse(RAW, digest=d(1)).light(lambda: RAW)
    copy = pickle.loads(pickle.dumps(light))
    assert copy == light and copy.get("os") == "linux"
    with pytest.raises(LookupError, match=d(1)):
        copy.to_dict()
    copy.attach(lambda: RAW)
    assert copy.to_dict() == CONFIG


def test_config_bytes_that_are_not_json_are_refused_by_name():
    with pytest.raises(InvalidResponse, match="config x of team/app is not JSON"):
        ImageConfig.parse(b"<html>", "config x of team/app")
    assert ImageConfig.parse(b"[1, 2]").to_dict() == {}


def _image(n: int, base: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                       "config": {"mediaType": mt.OCI_CONFIG, "digest": d(100 + n),
                                  "size": len(RAW)},
                       "layers": [{"mediaType": mt.OCI_LAYER, "digest": base, "size": 10},
                                  {"mediaType": mt.OCI_LAYER, "digest": d(200 + n),
                                   "size": 5}]}, indent=3).encode()


def test_assembled_tags_hold_compact_manifests_and_share_equal_layers():
    base = d(7)
    configs = {d(100 + n): ImageConfig.parse(RAW, digest=d(100 + n)) for n in range(2)}
    shared: dict = {}
    tags = []
    for n in range(2):
        raw = _image(n, base)
        top = parse_manifest("team/app", f"v{n}", raw, None, d(300 + n))
        assert top.parsed is not None
        tags.append(assemble(lambda _r, desc: configs[desc.digest], "team/app", f"v{n}", top,
                             {}.__getitem__, shared))
    a, b = (t.images[0] for t in tags)
    assert a.layers[0] is b.layers[0]  # one object for the shared base layer
    assert a.layers[1] is not b.layers[1]
    assert (a.layer_size, a.platform, a.created) == (15, "linux/arm64", CONFIG["created"])
    kept = tags[0].manifest
    assert kept.parsed is None and kept.raw == _image(0, base)  # bytes, not a tree of dicts
    assert kept.size == len(_image(0, base)) and len(kept._stored) < kept.size / 2  # packed
    assert kept.config == Descriptor(mt.OCI_CONFIG, d(100), len(RAW))  # parsed on use
    assert kept == top_of(0, base) and hash(kept) == hash(top_of(0, base))
    copy = pickle.loads(pickle.dumps(tags[0]))
    assert copy == tags[0] and copy.manifest._stored == kept._stored  # travels packed


def top_of(n: int, base: str):
    raw = _image(n, base)
    return parse_manifest("team/app", f"v{n}", raw, None, d(300 + n))


def test_a_manifest_is_immutable_and_small_ones_stay_as_they_are():
    small = parse_manifest("a", "v1", b'{"schemaVersion": 2}', None, d(1))
    kept = small.compact()
    assert kept.parsed is None and kept._stored == b'{"schemaVersion": 2}'
    assert kept.compact() is kept and kept == small
    with pytest.raises(AttributeError):
        kept.digest = d(2)
    assert "schemaVersion" not in repr(kept) and d(1) in repr(kept)


def test_a_light_config_can_share_one_loader_given_its_repository():
    calls = []

    def read(repository, digest):
        calls.append((repository, digest))
        return RAW

    light = ImageConfig.parse(RAW, digest=d(1)).light(read, "team/app")
    assert light.to_dict() == CONFIG and calls == [("team/app", d(1))]
    copy = pickle.loads(pickle.dumps(light))
    copy.attach(read, "team/other")
    assert copy["config"] == CONFIG["config"] and calls[-1] == ("team/other", d(1))


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05+00:00"),
    ("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123456+00:00"),
    ("2024-01-02t03:04:05z", "2024-01-02T03:04:05+00:00"),  # the general way
    (" 2024-01-02T03:04:05Z ", "2024-01-02T03:04:05+00:00"),
    ("2024-01-02T05:04:05+02:00", "2024-01-02T03:04:05+00:00"),
    ("0001-01-01T00:00:00Z", None),  # out of the frames' range
    ("2024-13-02T03:04:05Z", None),
    ("not a time Z", None),
])
def test_timestamps_read_the_same_on_the_fast_and_the_general_way(text, expected):
    from registry_insights.registry.models import parse_timestamp

    parsed = parse_timestamp(text)
    assert (parsed.isoformat() if parsed else None) == expected
