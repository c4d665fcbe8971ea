"""In-memory bearer tokens, one per (realm, service, scope, identity), kept until they expire.

Docker registry token authentication ("Token Authentication Specification", distribution docs):
the token response carries ``token`` and/or ``access_token`` and ``expires_in`` seconds
(default 60 when absent) and optionally ``issued_at`` and ``refresh_token``. Tokens live only
in this process's memory: never written to disk, never logged, never shown in a repr.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: ``expires_in`` assumed when a token response has none (token authentication spec).
DEFAULT_EXPIRES_IN = 60.0
#: Renew this many seconds (or this fraction of the lifetime, whichever is smaller) early.
RENEW_EARLY_SECONDS = 10.0
RENEW_EARLY_FRACTION = 0.1


@dataclass(frozen=True)
class Token:
    """A bearer token and when (``time.monotonic()`` seconds) to stop using it."""

    value: str = field(repr=False)
    expires_in: float
    obtained: float
    scopes: tuple[str, ...] = ()
    refresh_token: str | None = field(default=None, repr=False)
    #: what the JWT's ``access`` claim grants, read once (a walk asks per request); None:
    #: not read yet, False: not a JWT
    _granted: dict | bool | None = field(default=None, repr=False, compare=False, hash=False,
                                         init=False)

    def grants(self, scope: str) -> bool:
        """Whether this token was granted ``scope`` (``type:name:actions``).

        Read from the JWT's ``access`` claim when the token is a JWT (not verified: used only
        to choose which token to send); an opaque token is assumed to grant what was asked.
        """
        if self._granted is None:
            found = granted_access(self.value)
            object.__setattr__(self, "_granted", False if found is None else found)
        granted = self._granted
        if granted is False:  # not a JWT (a marker that survives pickling and copies)
            return scope in self.scopes
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        have = granted.get((kind, name), set())
        return "*" in have or all(a in have for a in actions.split(",") if a)

    @property
    def renew_at(self) -> float:
        early = min(RENEW_EARLY_SECONDS, self.expires_in * RENEW_EARLY_FRACTION)
        return self.obtained + self.expires_in - early

    def is_fresh(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.renew_at

    def __repr__(self) -> str:
        return f"Token(scopes={self.scopes!r}, expires_in={self.expires_in!r}, value=<redacted>)"


def granted_access(value: str) -> dict[tuple[str, str], set[str]] | None:
    """``{(type, name): {actions}}`` from a JWT's ``access`` claim; None if not a JWT."""
    parts = value.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    access = payload.get("access") if isinstance(payload, dict) else None
    if not isinstance(access, list):
        return None
    out: dict[tuple[str, str], set[str]] = {}
    for entry in access:
        if isinstance(entry, dict):
            key = (str(entry.get("type")), str(entry.get("name")))
            out.setdefault(key, set()).update(str(a) for a in entry.get("actions") or [])
    return out


def token_from_response(data: dict, scopes: tuple[str, ...], obtained: float) -> Token:
    """Build a :class:`Token` from a token endpoint's JSON.

    Raises
    ------
    ValueError
        When the JSON has neither ``token`` nor ``access_token`` (the message shows the keys only).
    """
    value = data.get("token") or data.get("access_token")
    if not value or not isinstance(value, str):
        raise ValueError(
            f"token response has neither 'token' nor 'access_token' (keys: {sorted(data)})"
        )
    try:
        expires_in = float(data.get("expires_in") or DEFAULT_EXPIRES_IN)
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN
    if expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    refresh = data.get("refresh_token")
    return Token(value=value, expires_in=expires_in, obtained=obtained, scopes=scopes,
                 refresh_token=refresh if isinstance(refresh, str) else None)


class TokenCache:
    """Tokens per key, fetched once even when many threads ask at the same time (single flight).

    ``fetch(key)`` is called with the key's lock held, so concurrent callers for the same key wait
    for the one fetch instead of each fetching a token.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple, Token] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple, fetch: Callable[[tuple], Token]) -> Token:
        token = self._tokens.get(key)
        if token is not None and token.is_fresh():
            return token
        with self._lock(key):
            token = self._tokens.get(key)
            if token is not None and token.is_fresh():
                return token
            token = fetch(key)
            self._tokens[key] = token
            return token

    def peek(self, key: tuple) -> Token | None:
        """The fresh token for ``key`` if one is held, without fetching."""
        token = self._tokens.get(key)
        return token if token is not None and token.is_fresh() else None

    def drop(self, key: tuple, token: Token | None = None) -> None:
        """Forget the token for ``key`` (only if it is still ``token``, when given)."""
        with self._guard:
            if token is None or self._tokens.get(key) is token:
                self._tokens.pop(key, None)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"TokenCache({len(self._tokens)} tokens)"
