"""Parsing of ``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1, RFC 6750 section 3).

The registry answers ``GET /v2/`` without credentials with 401 and one or more challenges, e.g.
``Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"``
(Docker registry token authentication). Real headers vary: several challenges in one header or in
several headers, any case of the scheme, quoted or unquoted values, commas inside quoted values,
spaces after commas, empty values, ``error=`` parameters. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a lower-cased scheme and its parameters (names lower-cased)."""

    scheme: str
    params: dict = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def _skip(text: str, i: int, chars: str = " \t") -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Read a quoted-string starting at text[i] == '"'; return (value, index after it)."""
    out = []
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out), i  # unterminated: take the rest


def parse_challenges(headers: str | list[str] | tuple[str, ...]) -> list[Challenge]:
    """Parse one or several ``WWW-Authenticate`` header values into challenges, in order.

    Malformed pieces are skipped rather than raised: a registry's odd header must not stop a
    client that can still try the challenges it did understand.
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    result: list[Challenge] = []
    for text in values:
        i = 0
        current: Challenge | None = None
        while i < len(text):
            i = _skip(text, i, " \t,")
            m = _TOKEN.match(text, i)
            if not m:
                i += 1
                continue
            name, j = m.group(0), m.end()
            k = _skip(text, j)
            if k < len(text) and text[k] == "=" and current is not None:
                # auth-param: name = token / quoted-string (possibly empty)
                k = _skip(text, k + 1)
                if k < len(text) and text[k] == '"':
                    value, i = _quoted(text, k)
                else:
                    end = k
                    while end < len(text) and text[end] not in ", \t":
                        end += 1
                    value, i = text[k:end], end
                current.params[name.lower()] = value
                continue
            # a new challenge: scheme [token68]
            current = Challenge(scheme=name.lower(), params={})
            result.append(current)
            i = _skip(text, j)
            t = _TOKEN68.match(text, i)
            if t and not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=", t.group(0)):
                after = _skip(text, t.end())
                if after >= len(text) or text[after] == ",":
                    current.params["token68"] = t.group(0)
                    i = after
    return result


def choose_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge the client answers: bearer over basic; None when neither is offered."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None
