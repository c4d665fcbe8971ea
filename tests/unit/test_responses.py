"""Unit tests of the pure helpers of the responses module: URL redaction, error mapping.

Responses are built by hand; nothing here touches the network.
"""

from __future__ import annotations

import json

import pytest
import requests

from registry_insights import errors
from registry_insights.registry.responses import check_response, redact_url

SECRET = "tok3n-s3cret-value"
HEX = "ab" * 32


def make_response(status: int, body: bytes | dict | None = None, *, method: str = "GET",
                  url: str = "https://registry.example.com/v2/team/app/manifests/latest",
                  reason: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    response._content = body if body is not None else b""
    response.url = url
    response.reason = reason
    response.request = requests.Request(method, url).prepare()
    return response


def oci_error(code: str, message: str, detail=None) -> dict:
    return {"errors": [{"code": code, "message": message, "detail": detail}]}


# -- redact_url -----------------------------------------------------------------------------------


def test_redact_removes_userinfo():
    out = redact_url(f"https://alice:{SECRET}@registry.example.com:5000/v2/_catalog?n=100")
    assert out == "https://registry.example.com:5000/v2/_catalog?n=100"
    assert "alice" not in out


@pytest.mark.parametrize("name", ["access_token", "password", "token", "refresh_token",
                                  "ACCESS_TOKEN", "client_secret"])
def test_redact_secret_query_values(name):
    url = f"https://auth.example.com/token?service=reg&{name}={SECRET}&scope=repository:a/b:pull"
    out = redact_url(url)
    assert SECRET not in out
    assert f"{name}=" in out
    assert "redacted" in out
    assert out.startswith("https://auth.example.com/token?service=reg&")
    assert out.endswith("&scope=repository:a/b:pull")


def test_redact_keeps_ordinary_urls():
    url = "https://registry.example.com/v2/team/app/tags/list?n=50&last=v1.2"
    assert redact_url(url) == url
    digest_url = f"http://127.0.0.1:5000/v2/a/blobs/sha256:{HEX}"
    assert redact_url(digest_url) == digest_url


def test_redact_drops_fragment_and_blank_values_survive():
    out = redact_url(f"https://h.example/v2/?password=&x=1#{SECRET}")
    assert SECRET not in out
    assert out.startswith("https://h.example/v2/?password=")
    assert out.endswith("&x=1")


def test_redact_empty():
    assert redact_url("") == ""


def test_redact_keeps_ipv6_brackets():
    assert redact_url("http://[::1]:5000/v2/") == "http://[::1]:5000/v2/"


# -- check_response: success ----------------------------------------------------------------------


def test_ok_returns_the_same_response():
    response = make_response(200, b"{}")
    assert check_response(response) is response


def test_custom_ok_statuses():
    accepted = make_response(202, b"", method="DELETE")
    assert check_response(accepted, ok=(202,)) is accepted
    with pytest.raises(errors.RegistryError):
        check_response(make_response(200, b"{}"), ok=(202,))


# -- check_response: OCI error bodies -------------------------------------------------------------


def test_404_manifest_unknown():
    url = "https://registry.example.com/v2/team/app/manifests/v9"
    response = make_response(404, oci_error("MANIFEST_UNKNOWN", "manifest unknown",
                                            {"Tag": "v9"}), url=url)
    with pytest.raises(errors.NotFound) as info:
        check_response(response)
    exc = info.value
    assert exc.code == "MANIFEST_UNKNOWN"
    assert exc.status == 404
    assert exc.method == "GET"
    assert exc.url == url
    assert exc.errors == [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                           "detail": {"Tag": "v9"}}]
    message = str(exc)
    assert f"GET {url}" in message
    assert "404" in message
    assert "MANIFEST_UNKNOWN" in message
    assert "manifest unknown" in message


@pytest.mark.parametrize("code", ["NAME_UNKNOWN", "BLOB_UNKNOWN"])
def test_other_unknown_codes_are_not_found(code):
    with pytest.raises(errors.NotFound) as info:
        check_response(make_response(404, oci_error(code, "unknown")))
    assert info.value.code == code


def test_405_is_unsupported():
    response = make_response(405, oci_error("UNSUPPORTED", "The operation is unsupported."),
                             method="DELETE", url=f"http://127.0.0.1:5000/v2/a/manifests/sha256:{HEX}")
    with pytest.raises(errors.Unsupported) as info:
        check_response(response, ok=(202,))
    assert info.value.status == 405
    assert info.value.code == "UNSUPPORTED"
    assert info.value.method == "DELETE"
    assert str(info.value).startswith("DELETE http://127.0.0.1:5000/v2/a/manifests/")


def test_405_without_body_is_unsupported():
    with pytest.raises(errors.Unsupported) as info:
        check_response(make_response(405, b"", reason="Method Not Allowed"))
    assert info.value.code is None
    assert "Method Not Allowed" in str(info.value)


def test_405_with_other_code_is_still_unsupported():
    with pytest.raises(errors.Unsupported):
        check_response(make_response(405, oci_error("DENIED", "nope")))


def test_401_is_unauthorized():
    body = oci_error("UNAUTHORIZED", "authentication required",
                     [{"Type": "repository", "Name": "a", "Action": "pull"}])
    with pytest.raises(errors.Unauthorized) as info:
        check_response(make_response(401, body))
    assert info.value.status == 401
    assert info.value.code == "UNAUTHORIZED"
    assert "authentication required" in str(info.value)


def test_401_without_body_is_unauthorized():
    with pytest.raises(errors.Unauthorized) as info:
        check_response(make_response(401, b""))
    assert info.value.code is None
    assert info.value.errors == []


def test_403_denied():
    with pytest.raises(errors.Denied) as info:
        check_response(make_response(403, oci_error("DENIED", "requested access to the resource "
                                                    "is denied")))
    assert info.value.status == 403
    assert info.value.code == "DENIED"
    assert "requested access to the resource is denied" in str(info.value)


def test_429_is_too_many_requests():
    body = oci_error("TOOMANYREQUESTS", "You have reached your pull rate limit.")
    with pytest.raises(errors.TooManyRequests) as info:
        check_response(make_response(429, body))
    assert info.value.status == 429
    assert info.value.code == "TOOMANYREQUESTS"
    assert "pull rate limit" in str(info.value)


def test_429_without_body_is_too_many_requests():
    with pytest.raises(errors.TooManyRequests):
        check_response(make_response(429, b"Too Many Requests"))


def test_several_errors_are_all_kept():
    body = {"errors": [{"code": "DENIED", "message": "first"},
                       {"code": "UNAUTHORIZED", "message": "second"}]}
    with pytest.raises(errors.Denied) as info:
        check_response(make_response(403, body))
    assert info.value.code == "DENIED"
    assert [e["code"] for e in info.value.errors] == ["DENIED", "UNAUTHORIZED"]
    assert "first" in str(info.value)
    assert "second" in str(info.value)


def test_unknown_code_falls_back_to_status_class():
    with pytest.raises(errors.NotFound) as info:
        check_response(make_response(404, oci_error("SOMETHING_NEW", "odd")))
    assert info.value.code == "SOMETHING_NEW"


def test_400_digest_invalid_is_plain_registry_error():
    body = oci_error("DIGEST_INVALID", "provided digest did not match uploaded content")
    with pytest.raises(errors.RegistryError) as info:
        check_response(make_response(400, body, method="DELETE"), ok=(202,))
    assert type(info.value) is errors.RegistryError
    assert info.value.code == "DIGEST_INVALID"
    assert info.value.status == 400


# -- check_response: bodies that are not OCI errors -----------------------------------------------


def test_html_500_shows_first_bytes():
    html = b"<html><head><title>500 Internal Server Error</title></head><body>" + b"z" * 400
    with pytest.raises(errors.RegistryError) as info:
        check_response(make_response(500, html))
    exc = info.value
    assert type(exc) is errors.RegistryError
    assert exc.status == 500
    assert exc.code is None
    assert exc.errors == []
    message = str(exc)
    assert "<html><head><title>500 Internal Server Error" in message
    assert "z" * 200 not in message
    assert "GET https://registry.example.com/v2/team/app/manifests/latest" in message


def test_json_without_errors_list():
    with pytest.raises(errors.RegistryError) as info:
        check_response(make_response(502, {"message": "bad gateway"}))
    assert info.value.code is None
    assert "bad gateway" in str(info.value)


def test_non_utf8_body():
    with pytest.raises(errors.RegistryError) as info:
        check_response(make_response(500, b"\xff\xfe\x00\x01 broken"))
    assert info.value.status == 500
    assert "broken" in str(info.value)


# -- no secrets in errors -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 405, 429, 500])
def test_errors_carry_no_secret_from_the_url(status):
    url = (f"https://robot:{SECRET}@registry.example.com/v2/team/app/manifests/latest"
           f"?access_token={SECRET}&password={SECRET}")
    with pytest.raises(errors.RegistryError) as info:
        check_response(make_response(status, oci_error("DENIED", "no"), url=url))
    exc = info.value
    assert SECRET not in str(exc)
    assert SECRET not in (exc.url or "")
    assert "robot" not in str(exc)
    assert "registry.example.com/v2/team/app/manifests/latest" in str(exc)


def test_request_url_used_when_response_url_missing():
    url = f"https://registry.example.com/v2/a/tags/list?access_token={SECRET}"
    response = make_response(404, oci_error("NAME_UNKNOWN", "repository name not known"), url=url)
    response.url = None
    with pytest.raises(errors.NotFound) as info:
        check_response(response)
    assert SECRET not in str(info.value)
    assert info.value.url.startswith("https://registry.example.com/v2/a/tags/list?access_token=")


@pytest.mark.parametrize(("text", "why"), [
    ("HTTPSConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url: /v2/ "
     "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
     "certificate verify failed: self-signed certificate (_ssl.c:1006)')))",
     "self-signed certificate"),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
     "certificate (_ssl.c:1006)", "unable to get local issuer certificate"),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)",
     "certificate verify failed"),
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", None),
])
def test_an_untrusted_certificate_is_told_from_other_tls_failures(text, why):
    import requests

    from registry_insights.registry.responses import network_reason, untrusted_certificate

    assert untrusted_certificate(Exception(text)) == why
    reason = network_reason(requests.exceptions.SSLError(text), 30)
    if why is None:
        assert reason.startswith("TLS handshake failed (is it plain http?")
    else:
        assert reason.startswith(f"its TLS certificate is not trusted ({why});")
