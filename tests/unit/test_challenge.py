"""Unit tests of the challenge module: WWW-Authenticate headers as registries send them."""

from __future__ import annotations

import pytest

from registry_insights.registry.auth.challenge import Challenge, choose_challenge, parse_challenges

DOCKER_HUB = (
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/ubuntu:pull"'
)
ECR = 'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"'


def only(header) -> Challenge:
    challenges = parse_challenges(header)
    assert len(challenges) == 1, challenges
    return challenges[0]


# -- single challenges seen in the wild ------------------------------------------------------------


def test_docker_hub_bearer():
    ch = only(DOCKER_HUB)
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.docker.io/token"
    assert ch.service == "registry.docker.io"
    assert ch.scope == "repository:library/ubuntu:pull"
    assert ch.error is None
    assert ch.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/ubuntu:pull",
    }


@pytest.mark.parametrize(
    ("header", "realm", "service"),
    [
        ('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/i:pull"',
         "https://ghcr.io/token", "ghcr.io"),
        ('Bearer realm="https://quay.io/v2/auth",service="quay.io"',
         "https://quay.io/v2/auth", "quay.io"),
        ('Bearer realm="https://harbor.example/service/token",service="harbor-registry"',
         "https://harbor.example/service/token", "harbor-registry"),
        ('Bearer realm="https://gitlab.com/jwt/auth",service="container_registry"',
         "https://gitlab.com/jwt/auth", "container_registry"),
        ('Basic realm="harbor"', "harbor", None),
        ('Basic realm="Registry Realm"', "Registry Realm", None),
        (ECR, "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/", "ecr.amazonaws.com"),
    ],
)
def test_registry_styles(header, realm, service):
    ch = only(header)
    assert ch.scheme == header.split(" ", 1)[0].lower()
    assert ch.realm == realm
    assert ch.service == service


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_scheme_any_case_is_lower_cased(scheme):
    ch = only(f'{scheme} realm="https://a/token",service="s"')
    assert ch.scheme == "bearer"
    assert ch.realm == "https://a/token"
    assert ch.service == "s"


def test_parameter_names_are_lower_cased():
    ch = only('Bearer Realm="https://a/token",SERVICE="s",Scope="repository:x:pull"')
    assert ch.params == {"realm": "https://a/token", "service": "s", "scope": "repository:x:pull"}


def test_unquoted_values():
    ch = only("Bearer realm=https://auth.example/token,service=registry.example,scope=registry:catalog:*")
    assert ch.realm == "https://auth.example/token"
    assert ch.service == "registry.example"
    assert ch.scope == "registry:catalog:*"


@pytest.mark.parametrize(
    "header",
    [
        'Bearer realm="https://a/token",service="",scope="x"',
        'Bearer realm="https://a/token",service=,scope="x"',
        'Bearer realm="https://a/token", service= , scope="x"',
    ],
)
def test_empty_values(header):
    ch = only(header)
    assert ch.realm == "https://a/token"
    assert "service" in ch.params
    assert ch.service == ""
    assert ch.scope == "x"


def test_empty_value_at_end_of_header():
    ch = only('Bearer realm="https://a/token",service=')
    assert ch.params == {"realm": "https://a/token", "service": ""}


def test_spaces_after_commas_and_around_equals():
    ch = only('Bearer realm = "https://a/token",   service="reg" ,\tscope="repository:a/b:pull"')
    assert ch.realm == "https://a/token"
    assert ch.service == "reg"
    assert ch.scope == "repository:a/b:pull"


def test_comma_inside_quoted_value():
    ch = only('Bearer realm="https://a/token",service="reg",scope="repository:a/b:pull,push"')
    assert ch.scope == "repository:a/b:pull,push"
    assert ch.service == "reg"
    assert set(ch.params) == {"realm", "service", "scope"}


def test_space_separated_scopes_in_quoted_value():
    ch = only('Bearer realm="r",scope="repository:a:pull repository:b:pull"')
    assert ch.scope == "repository:a:pull repository:b:pull"


def test_escaped_quotes_inside_quoted_value():
    ch = only(r'Basic realm="the \"main\" registry",service="a\\b"')
    assert ch.realm == 'the "main" registry'
    assert ch.service == "a\\b"


def test_insufficient_scope_error():
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push",error="insufficient_scope"'
    )
    ch = only(header)
    assert ch.error == "insufficient_scope"
    assert ch.scope == "repository:samalba/my-app:pull,push"


def test_unterminated_quote_takes_the_rest():
    ch = only('Basic realm="never closed')
    assert ch.scheme == "basic"
    assert ch.realm == "never closed"


# -- several challenges ---------------------------------------------------------------------------


def test_several_challenges_in_one_header():
    challenges = parse_challenges('Basic realm="a", Bearer realm="b",service="c"')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].params == {"realm": "a"}
    assert challenges[1].params == {"realm": "b", "service": "c"}


def test_several_headers_as_a_list():
    challenges = parse_challenges(['Basic realm="a"', 'Bearer realm="b",service="c"'])
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == "a"
    assert challenges[1].realm == "b"
    assert challenges[1].service == "c"


def test_several_headers_as_a_tuple_keep_order():
    challenges = parse_challenges(('Bearer realm="b"', 'Basic realm="a"'))
    assert [(c.scheme, c.realm) for c in challenges] == [("bearer", "b"), ("basic", "a")]


def test_token68_challenge_next_to_basic():
    challenges = parse_challenges('Negotiate abc==, Basic realm="x"')
    assert [c.scheme for c in challenges] == ["negotiate", "basic"]
    assert challenges[0].params == {"token68": "abc=="}
    assert challenges[1].params == {"realm": "x"}


def test_token68_after_basic():
    challenges = parse_challenges('Basic realm="x", Negotiate abc==')
    assert [c.scheme for c in challenges] == ["basic", "negotiate"]
    assert challenges[0].params == {"realm": "x"}
    assert challenges[1].params == {"token68": "abc=="}


def test_scheme_without_parameters():
    challenges = parse_challenges('Negotiate, Basic realm="x"')
    assert [c.scheme for c in challenges] == ["negotiate", "basic"]
    assert challenges[0].params == {}


def test_empty_header_and_empty_list():
    assert parse_challenges("") == []
    assert parse_challenges([]) == []


def test_parameters_do_not_leak_between_challenges():
    challenges = parse_challenges('Bearer realm="b",service="s", Basic realm="a"')
    assert challenges[1].service is None
    assert challenges[0].service == "s"


# -- choosing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        'Basic realm="a", Bearer realm="b",service="c"',
        'Bearer realm="b",service="c", Basic realm="a"',
        ['Basic realm="a"', 'Bearer realm="b",service="c"'],
        ['Negotiate abc==', 'Basic realm="a"', 'BEARER realm="b",service="c"'],
    ],
)
def test_bearer_chosen_over_basic_regardless_of_order(header):
    chosen = choose_challenge(parse_challenges(header))
    assert chosen is not None
    assert chosen.scheme == "bearer"
    assert chosen.realm == "b"
    assert chosen.service == "c"


def test_basic_chosen_when_no_bearer():
    chosen = choose_challenge(parse_challenges('Negotiate abc==, Basic realm="x"'))
    assert chosen is not None
    assert (chosen.scheme, chosen.realm) == ("basic", "x")


def test_first_bearer_wins_among_bearers():
    chosen = choose_challenge(parse_challenges('Bearer realm="one", Bearer realm="two"'))
    assert chosen is not None
    assert chosen.realm == "one"


@pytest.mark.parametrize(
    "header", ["Negotiate abc==", 'Digest realm="x",nonce="n"', 'NTLM, Mutual realm="m"', ""]
)
def test_none_when_only_unknown_schemes(header):
    assert choose_challenge(parse_challenges(header)) is None


def test_choose_from_empty_list():
    assert choose_challenge([]) is None
