"""Adversarial probes of the issue 14 speed changes that need no server: the hand-written
Manifest, Token's cached grants, the disabled progress bar."""

from __future__ import annotations

import copy
import json
import pickle
import sys

import pytest

from registry_insights.progress import progress_bar
from registry_insights.registry import mediatypes as mt
from registry_insights.registry.auth.tokens import Token
from registry_insights.registry.models import (
    Manifest,
    manifest_digest,
    parse_manifest,
)
from tests.unit.test_models import SCHEMA1_SIGNED


def _signed():
    raw = SCHEMA1_SIGNED if isinstance(SCHEMA1_SIGNED, bytes) else SCHEMA1_SIGNED.encode()
    return raw, manifest_digest(raw)


def test_signed_schema1_compact_keeps_exact_bytes_and_payload_digest():
    raw, digest = _signed()
    assert digest.startswith("sha256:")  # the recorded signature is not a real one
    m = parse_manifest("lib/old", "v1", raw, "application/json", digest)
    assert m.media_type == mt.DOCKER_SCHEMA1_SIGNED and m.is_schema1
    for held in (m.compact(), pickle.loads(pickle.dumps(m.compact())), copy.deepcopy(m)):
        assert held.raw == raw and held.size == len(raw) and held == m
        assert manifest_digest(held.raw) == digest
        assert held.data == json.loads(raw) and held.layer_size is None


@pytest.mark.parametrize("raw", [b"{}", b'{"schemaVersion": 2}', b" " * 300 + b"{}",
                                 json.dumps({"layers": [{"size": 1}] * 50}).encode()])
def test_small_and_padded_manifests_compact_round_trip(raw):
    digest = "sha256:" + "ab" * 32
    m = parse_manifest("r", "t", raw, None, digest)
    small = m.compact()
    assert small.raw == raw and small.size == len(raw) and small == m
    assert small.compact() is small and small.parsed is None
    assert small.data == json.loads(raw)
    again = pickle.loads(pickle.dumps(small, protocol=0))
    assert again == small and again.raw == raw and hash(again) == hash(m)
    assert "repository='r'" in repr(small) and str(len(raw)) in repr(small)


def test_manifest_equality_is_exact():
    digest = "sha256:" + "cd" * 32
    a = Manifest("r", "t", digest, mt.OCI_MANIFEST, b'{"a": 1}' * 100)
    assert a != Manifest("r", "t", digest, mt.OCI_MANIFEST, b'{"a": 2}' * 100)
    assert a != Manifest("r", "u", digest, mt.OCI_MANIFEST, b'{"a": 1}' * 100)
    assert a.compact() == Manifest("r", "t", digest, mt.OCI_MANIFEST, b'{"a": 1}' * 100)
    assert (a == "x") is False and a.__eq__("x") is NotImplemented
    with pytest.raises(AttributeError):
        del a.raw
    assert not hasattr(a, "__dict__")


def test_opaque_token_grants_what_was_asked_after_a_copy():
    token = Token("opaque-value", 300.0, 1.0, scopes=("repository:a/b:pull",))
    assert token.grants("repository:a/b:pull")
    assert not token.grants("repository:c:pull")
    for other in (copy.copy(token),):
        assert other.grants("repository:a/b:pull")


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_opaque_token_grants_what_was_asked_after_pickle(how):
    token = Token("opaque-value", 300.0, 1.0, scopes=("repository:a/b:pull",))
    assert token.grants("repository:a/b:pull")  # caches the sentinel
    other = pickle.loads(pickle.dumps(token)) if how == "pickle" else copy.deepcopy(token)
    assert other == token
    assert other.grants("repository:a/b:pull")


def test_disabled_bar_does_not_import_tqdm_and_does_nothing():
    bar = progress_bar(10, "tags", False)
    with bar as same:
        same.update()
        same.update(5)
    bar.close()
    assert "tqdm" not in type(bar).__module__
    shown = progress_bar(3, "tags", True, file=sys.stderr)
    shown.update(3)
    assert shown.n == 3
    shown.close()
