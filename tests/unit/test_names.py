"""Unit tests of registry_insights.registry.names: the distribution grammar and registry URLs."""

from __future__ import annotations

import pytest

from registry_insights.errors import InvalidReference, RegistryInsightsError
from registry_insights.registry.names import (
    Reference,
    is_digest,
    normalize_registry,
    parse_reference,
    sha256_digest,
    validate_digest,
    validate_reference,
    validate_repository,
    validate_tag,
)

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"


def test_invalid_reference_is_a_value_error():
    assert issubclass(InvalidReference, ValueError)
    assert issubclass(InvalidReference, RegistryInsightsError)


# -- repositories ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "a/b", "a-b/c_d", "a__b", "a.b/c", "a--b", "library/ubuntu", "0/1/2", "a" * 255,
     "/".join(["ab"] * 85)],
)
def test_valid_repositories(name):
    assert validate_repository(name) == name


def test_255_characters_is_the_limit():
    assert len("/".join(["ab"] * 85)) == 254
    assert validate_repository("a" * 255) == "a" * 255


def test_upper_case_mentions_lower_case():
    with pytest.raises(InvalidReference) as info:
        validate_repository("Foo")
    message = str(info.value)
    assert "'Foo'" in message
    assert "lower case" in message


@pytest.mark.parametrize("name", ["a//b", "-a", "a/", "/a", "a-", "a___b", "a_", ".a", "a..b",
                                  "a b", "a:b", "a@b"])
def test_invalid_repositories_name_the_value(name):
    with pytest.raises(InvalidReference) as info:
        validate_repository(name)
    assert repr(name) in str(info.value)
    assert "lower case" not in str(info.value)


def test_empty_repository():
    with pytest.raises(InvalidReference, match="empty"):
        validate_repository("")


def test_non_string_repository():
    with pytest.raises(InvalidReference):
        validate_repository(None)  # type: ignore[arg-type]


def test_256_characters_is_too_long():
    with pytest.raises(InvalidReference) as info:
        validate_repository("b" * 256)
    message = str(info.value)
    assert "255" in message
    assert "b" * 40 in message


def test_repository_with_trailing_newline_is_invalid():
    with pytest.raises(InvalidReference):
        validate_repository("a/b\n")


# -- tags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A", "1", "x" * 128, "a-b_c.D",
                                 "_" * 128])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "x" * 129, "a:b", "a/b", "a b", "a@b", "é"])
def test_invalid_tags(tag):
    with pytest.raises(InvalidReference) as info:
        validate_tag(tag)
    assert repr(tag)[:60] in str(info.value)


def test_tag_with_trailing_newline_is_invalid():
    with pytest.raises(InvalidReference):
        validate_tag("latest\n")


# -- digests --------------------------------------------------------------------------------------


def test_valid_sha256_digest():
    assert validate_digest(DIGEST) == DIGEST


def test_other_algorithm_accepted_by_grammar():
    digest = "sha512:" + "ab" * 64
    assert validate_digest(digest) == digest


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + HEX.upper(),
        "sha256:" + HEX[:63],
        "sha256:" + HEX + "0",
        HEX,
        ":" + HEX,
        "sha256:",
        "",
        "sha256:" + HEX[:-1] + "g",
    ],
)
def test_invalid_digests(digest):
    with pytest.raises(InvalidReference) as info:
        validate_digest(digest)
    assert repr(digest) in str(info.value)


def test_digest_with_trailing_newline_is_invalid():
    with pytest.raises(InvalidReference):
        validate_digest(DIGEST + "\n")


def test_sha256_digest_of_bytes():
    assert sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert validate_digest(sha256_digest(b"abc")) == sha256_digest(b"abc")


def test_is_digest_and_validate_reference():
    assert is_digest(DIGEST)
    assert not is_digest("latest")
    assert validate_reference("latest") == "latest"
    assert validate_reference(DIGEST) == DIGEST
    with pytest.raises(InvalidReference):
        validate_reference("sha256:abc")
    with pytest.raises(InvalidReference):
        validate_reference(".bad")


# -- references -----------------------------------------------------------------------------------


def test_full_reference():
    ref = parse_reference(f"host:5000/repo/name:tag@{DIGEST}")
    assert ref == Reference(registry="host:5000", repository="repo/name", tag="tag", digest=DIGEST)
    assert ref.reference == DIGEST
    assert str(ref) == f"host:5000/repo/name:tag@{DIGEST}"


def test_localhost_is_a_registry():
    ref = parse_reference("localhost/x")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost", "x", None, None)
    assert ref.reference == "latest"


def test_first_component_without_dot_or_colon_is_a_path():
    ref = parse_reference("library/ubuntu")
    assert ref.registry is None
    assert ref.repository == "library/ubuntu"
    assert ref.tag is None
    assert str(ref) == "library/ubuntu"


def test_tag_without_registry():
    ref = parse_reference("ubuntu:22.04")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (None, "ubuntu", "22.04", None)
    assert ref.reference == "22.04"


def test_ip_and_port_registry():
    ref = parse_reference("127.0.0.1:5000/a")
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "a", None)


def test_dotted_host_with_tag():
    ref = parse_reference("registry.example.com/team/app:v1")
    assert (ref.registry, ref.repository, ref.tag) == ("registry.example.com", "team/app", "v1")


def test_digest_only():
    ref = parse_reference(f"repo@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (None, "repo", None, DIGEST)
    assert ref.reference == DIGEST
    assert str(ref) == f"repo@{DIGEST}"


def test_port_registry_without_tag_keeps_colon_out_of_tag():
    ref = parse_reference("host:5000/a/b")
    assert (ref.registry, ref.repository, ref.tag) == ("host:5000", "a/b", None)


@pytest.mark.parametrize(
    "text",
    ["", "Foo/bar", "repo:.bad", "repo:-x", "repo@sha256:abc", "repo@", f"Repo@{DIGEST}",
     "a:b:c", "host:5000/", "repo:", "a//b:tag"],
)
def test_invalid_references_raise(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)
    with pytest.raises(ValueError):
        parse_reference(text)


# -- registries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("registry.example.com", "https://registry.example.com"),
        ("registry.example.com:5443", "https://registry.example.com:5443"),
        ("ghcr.io/", "https://ghcr.io"),
        ("https://ghcr.io", "https://ghcr.io"),
        ("https://ghcr.io/v2", "https://ghcr.io"),
        ("  quay.io  ", "https://quay.io"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.0.0.1", "http://127.0.0.1"),
        ("127.1.2.3:80", "http://127.1.2.3:80"),
        ("localhost:5000", "http://localhost:5000"),
        ("localhost", "http://localhost"),
        ("[::1]:5000", "http://[::1]:5000"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://localhost:5000/", "http://localhost:5000"),
    ],
)
def test_normalize_registry(given, expected):
    assert normalize_registry(given) == expected


def test_ipv6_loopback_without_port_gets_http():
    assert normalize_registry("[::1]") == "http://[::1]"


def test_plain_http_to_remote_host_refused_unless_insecure():
    with pytest.raises(InvalidReference) as info:
        normalize_registry("http://example.com")
    assert "insecure=True" in str(info.value)
    assert "example.com" in str(info.value)
    assert normalize_registry("http://example.com", insecure=True) == "http://example.com"


def test_insecure_bare_host_gets_http():
    assert normalize_registry("example.com:5000", insecure=True) == "http://example.com:5000"


def test_https_stays_https_when_insecure():
    assert normalize_registry("https://example.com", insecure=True) == "https://example.com"


@pytest.mark.parametrize("given", ["ftp://x", "file:///etc/passwd", "ssh://host"])
def test_other_schemes_refused(given):
    with pytest.raises(InvalidReference, match="http or https"):
        normalize_registry(given)


@pytest.mark.parametrize("given,base", [
    ("https://example.com/reg", "https://example.com/reg"),
    ("https://example.com/reg/", "https://example.com/reg"),
    ("https://example.com/reg/v2/", "https://example.com/reg"),
    ("example.com/some/path", "https://example.com/some/path"),
    ("http://[::1]:5000/reg/v2", "http://[::1]:5000/reg"),
    ("https://example.com/v2/", "https://example.com"),
])
def test_base_path_is_kept(given, base):
    assert normalize_registry(given) == base


@pytest.mark.parametrize(
    "given", ["example.com/v2/x", "https://example.com/v2/team/app/tags/list",
              "https://example.com?x=1", "https://example.com/a/../b", "https://example.com/a b",
              "https://example.com/reg#frag"]
)
def test_api_urls_queries_and_odd_paths_refused(given):
    with pytest.raises(InvalidReference, match="the URL the API is served under"):
        normalize_registry(given)


@pytest.mark.parametrize("given", ["", "   ", None])
def test_empty_registry_refused(given):
    with pytest.raises(InvalidReference, match="empty"):
        normalize_registry(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "given",
    [
        "https://alice:hunter2secret@example.com",
        "http://alice:hunter2secret@127.0.0.1:5000",
        "alice:hunter2secret@example.com",
        "https://:hunter2secret@example.com",
        "https://alice:hunter2secret@example.com/some/path",
    ],
)
def test_credentials_in_url_refused_without_echoing_password(given):
    with pytest.raises(InvalidReference) as info:
        normalize_registry(given)
    assert "credentials" in str(info.value)
    assert "hunter2secret" not in str(info.value)


def test_credentials_in_non_http_url_not_echoed():
    with pytest.raises(InvalidReference) as info:
        normalize_registry("ftp://alice:hunter2secret@example.com")
    assert "hunter2secret" not in str(info.value)


@pytest.mark.parametrize("given", ["https://exa mple.com", "https://ex_ample.com", "https://:5000"])
def test_invalid_host_refused(given):
    with pytest.raises(InvalidReference):
        normalize_registry(given)


@pytest.mark.parametrize("given", ["evil.localhost", "evil.localhost:5000",
                                   "http://evil.localhost:5000", "localhost.example.com",
                                   "127.0.0.1.nip.io", "http://127.0.0.1.example.com"])
def test_names_that_resolve_through_dns_are_not_loopback(given):
    # issue 10 item 12: only localhost and literal loopback addresses get plain http
    if "://" in given:
        with pytest.raises(InvalidReference, match="plain http is allowed only for loopback"):
            normalize_registry(given)
    else:
        assert normalize_registry(given).startswith("https://")
    assert normalize_registry(given, insecure=True).startswith(
        "http://" if "://" not in given else given.split("://")[0] + "://")


def test_localhost_in_capitals_is_still_loopback():
    assert normalize_registry("LOCALHOST:5000") == "http://LOCALHOST:5000"


def test_the_client_refuses_plain_http_to_a_dns_name_under_localhost():
    import registry_insights as ri

    with pytest.raises(InvalidReference, match="insecure=True"):
        ri.RegistryClient("http://evil.localhost:5000", cache=None)
    with ri.RegistryClient("evil.localhost:5000", cache=None) as client:
        assert client.registry == "https://evil.localhost:5000"
